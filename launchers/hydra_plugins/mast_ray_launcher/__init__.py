"""Hydra launcher plugin that runs each multirun job as one Ray task (``hydra/launcher=mast_ray``).

Hydra finds it by scanning the ``hydra_plugins`` namespace package: ``config`` registers the
typed schema, ``mast_ray_launcher`` holds the ``Launcher``. Ray is imported only when a sweep is
launched (``_driver``/``_worker``), so every Hydra start-up stays fast.
"""
