"""Builds for tests/test_build_worker.py, in a module of their own: the build worker (a spawned process) imports
the module of each build it gets, and this one imports nothing but the standard library."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path


def raises(folder: str) -> str:
    """Notes the process it runs in (a file named by its pid), then fails as a bad spec would."""
    (Path(folder) / str(os.getpid())).touch()
    raise ValueError("retraining: comparison '~' is not one of >=, >, <=, <")


def dies_in_a_worker(folder: str) -> str:
    """Kills the process it runs in if that is a worker; in the main process, returns where it was built."""
    if multiprocessing.parent_process() is not None:
        (Path(folder) / str(os.getpid())).touch()
        os._exit(3)
    return f"built in {os.getpid()}"


def where() -> str:
    return f"built in {os.getpid()}"
