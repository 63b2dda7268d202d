"""The C++ GRU recurrence (`csrc/gru.cpp`) for CPU tensors, compiled on first use.

Why C++: on a CPU the Python recurrence pays per-op dispatch and one memory pass per gate op at
every step; the C++ loop keeps one matmul per step and fuses the rest (issue 12, `make bench`).
torch's JIT extension builder compiles it once per machine (≈1 min, cached under
`~/.cache/mast/torch_extensions/<content hash>`, or `MAST_EXTENSIONS_DIR`, shared by every later
process and checkout, with a file lock so parallel sweep workers build it once). Without a C++
compiler, or with `MAST_FUSED_GRU=0`, the Python recurrence in `agents.py` runs instead: same
maths, slower.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import sys
import warnings
from pathlib import Path

import torch

SOURCE = Path(__file__).parent / "csrc" / "gru.cpp"


@functools.cache
def _isa_flags() -> tuple[str, list[str]]:
    """AVX2 + FMA when this CPU has them (8 floats per vector op), else the compiler's default.
    The name carries the ISA so hosts of a cluster sharing a home directory never load a build
    made for another CPU."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        flags = []
    if "avx2" in flags and "fma" in flags:
        return "avx2", ["-mavx2", "-mfma"]
    return "base", []


def _build_dir(code: str, flags: list[str]) -> Path:
    """One build folder per (source text, flags, torch install, Python), holding its own copy
    of the source. torch's builder reruns ninja in every new process, and ninja rebuilds whenever
    its compile or link command changes: the source path, or the include and library paths of
    the torch that loads it. So two checkouts (a sweep worktree and a development tree), or two
    virtual environments with the same torch (a fresh clone's `make test`), sharing one folder
    would rebuild each other's module for a minute at every process start; keyed by content and
    by torch's install path, each environment builds once and every checkout shares it."""
    torch_home = str(Path(torch.__file__).parent)
    key = hashlib.sha256("\0".join([code, *flags, torch.__version__, torch_home,
                                     sys.version]).encode()).hexdigest()[:16]
    root = Path(os.environ.get("MAST_EXTENSIONS_DIR",
                               Path.home() / ".cache" / "mast" / "torch_extensions"))
    folder = root / key
    folder.mkdir(parents=True, exist_ok=True)
    src = folder / SOURCE.name
    if not src.exists() or src.read_text() != code:
        tmp = folder / f".{SOURCE.name}.{os.getpid()}"
        tmp.write_text(code)
        os.replace(tmp, src)  # atomic: a process building meanwhile never sees half a file
    return folder


@functools.cache
def extension():
    """The compiled module, or None (disabled, or no compiler: a warning says why)."""
    if os.environ.get("MAST_FUSED_GRU", "1") == "0":
        return None
    from torch.utils.cpp_extension import load

    if shutil.which("ninja") is None:  # the pip `ninja` of this venv, when the venv is not on PATH
        import ninja

        os.environ["PATH"] = f"{ninja.BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}"
    isa, isa_flags = _isa_flags()
    flags = ["-O3", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math", *isa_flags]
    try:
        folder = _build_dir(SOURCE.read_text(), flags)
        return load(name=f"mast_gru_{isa}", sources=[str(folder / SOURCE.name)],
                    build_directory=str(folder), extra_cflags=flags, verbose=False)
    except Exception as e:  # noqa: BLE001 — any build failure falls back to the Python loop
        warnings.warn(f"mast: C++ GRU not built ({type(e).__name__}: {str(e)[:200]}); "
                      "using the Python recurrence (same maths, slower)", stacklevel=2)
        return None


def in_use() -> str:
    """Which packed GRU recurrence this process ran, for the run manifest: `cpp-<isa>`, `python`
    (no build, disabled, or CUDA), both joined by `+`, or `none` (feed-forward agents, or
    per-agent weights, which unroll step by step through `AgentGRU.cell`)."""
    return "+".join(sorted(_used)) or "none"


def select(*tensors: torch.Tensor) -> bool:
    """Whether this unroll takes the C++ loop (`usable`), recorded for `in_use`."""
    cpp = usable(*tensors)
    _used.add(f"cpp-{_isa_flags()[0]}" if cpp else "python")
    return cpp


_used: set[str] = set()
_enabled = True


@contextlib.contextmanager
def disabled():
    """Within the block, the Python recurrence runs (`make bench`'s side-by-side comparison)."""
    global _enabled
    before, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = before


def usable(*tensors: torch.Tensor) -> bool:
    """The C++ path takes float32/float64 CPU tensors."""
    return _enabled and all(t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64)
               for t in tensors) and extension() is not None
