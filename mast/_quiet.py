"""Keep third-party start-up chatter off the console.

JaxMARL prints "Importing submoduled environments… / not found. Skipping import." with `print`
whenever it is first imported, wherever that happens (env construction, map listing, unit types).
A meta-path finder runs that one module's import with stdout silenced, so every import site stays
an ordinary `import` and nothing is imported before it is needed. The silencing is at the file
descriptor: during that import something rebinds `sys.stdout`, so `redirect_stdout` is not enough.

gymnasium-robotics prints a notice about its Adroit hand environments to stderr on import (not
an error, and not about the MuJoCo tasks used here): its import gets stderr silenced the same way.

JAX warns "os.fork() was called … JAX is multithreaded" whenever a process that has touched JAX
starts a subprocess (the sweep driver validates maps with JaxMARL, then Ray starts its daemons).
Those children exec at once, which is safe, so the warning is filtered.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import sys
import warnings
from collections.abc import Iterator

QUIET_MODULES = {"jaxmarl": 1, "gymnasium_robotics": 2}  # module → file descriptor silenced


class _SilencedLoader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader, fd: int):
        self.inner, self.fd = inner, fd

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module) -> None:
        with fd_to_devnull(self.fd):
            self.inner.exec_module(module)


@contextlib.contextmanager
def fd_to_devnull(fd: int = 1) -> Iterator[None]:
    """File descriptor `fd` (1 stdout, 2 stderr) to /dev/null meanwhile (also what C extensions
    and stream rebinders write)."""
    stream = sys.stdout if fd == 1 else sys.stderr
    stream.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        stream.flush()
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def stdout_to_devnull() -> contextlib.AbstractContextManager[None]:
    return fd_to_devnull(1)


class _QuietFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name not in QUIET_MODULES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _SilencedLoader(spec.loader, QUIET_MODULES[name])
                return spec
        return None


def install() -> None:
    warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
    if not any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())
