"""The ``mast_ray`` Launcher: validates its config at start-up, hands the sweep to ``_driver``."""

import logging
import math
import os
from collections.abc import Sequence
from typing import Any

from hydra.core.utils import JobReturn
from hydra.errors import CompactHydraException
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.mast_ray_launcher.config import MastRayLauncherConf
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


class LauncherConfigError(CompactHydraException):
    """A ``hydra.launcher.*`` value is invalid; the message names the key and what is allowed."""


def validate(conf: MastRayLauncherConf) -> None:
    """Cross-field checks, run once when Hydra instantiates the launcher."""
    if not conf.address:
        raise LauncherConfigError(
            "hydra.launcher.address must be 'local' (private Ray instance), 'auto', 'host:port' "
            "or 'ray://host:port' (existing cluster); an empty address would silently join "
            "whatever cluster is running"
        )
    for key in ("num_cpus", "num_gpus"):
        value = getattr(conf, key)
        if not math.isfinite(value) or value < 0:
            raise LauncherConfigError(f"hydra.launcher.{key}={value}: must be a number >= 0")
    if conf.num_gpus > 1 and not float(conf.num_gpus).is_integer():
        raise LauncherConfigError(
            f"hydra.launcher.num_gpus={conf.num_gpus}: Ray allows fractions only below 1 "
            "(e.g. 0.25 or 0.5); above 1 it must be a whole number"
        )
    if not isinstance(conf.max_retries, int) or conf.max_retries < 0:
        raise LauncherConfigError(
            f"hydra.launcher.max_retries={conf.max_retries}: must be >= 0 (0: never retry)"
        )
    if conf.max_concurrent is not None and conf.max_concurrent < 1:
        raise LauncherConfigError(
            f"hydra.launcher.max_concurrent={conf.max_concurrent}: must be >= 1 or null (no cap)"
        )


def _to_conf(kwargs: dict[str, Any]) -> MastRayLauncherConf:
    plain = {
        key: OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else value
        for key, value in kwargs.items()
    }
    return MastRayLauncherConf(**plain)


class MastRayLauncher(Launcher):
    """Runs every job of a Hydra multirun as one Ray task; see ``config.MastRayLauncherConf``."""

    def __init__(self, **kwargs: Any) -> None:
        self.conf = _to_conf(kwargs)
        validate(self.conf)
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self,
        *,
        hydra_context: HydraContext,
        task_function: TaskFunction,
        config: DictConfig,
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        assert self.config is not None, "setup() was not called"
        assert self.hydra_context is not None and self.task_function is not None
        # Read when ray is first imported: keep similar worker lines instead of folding them.
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        from hydra_plugins.mast_ray_launcher import _driver  # imports ray: only when launching

        return _driver.launch(
            conf=self.conf,
            config=self.config,
            hydra_context=self.hydra_context,
            task_function=self.task_function,
            job_overrides=job_overrides,
            initial_job_idx=initial_job_idx,
        )
