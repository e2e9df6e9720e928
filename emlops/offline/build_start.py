"""Where previews keep the definitions the SageMaker SDK built, and whether a preview will build any: decided
from the stack file's text before the program's imports, so the build worker (components/build_worker.py)
imports the SDK while this process imports pulumi_aws and runs the program.

A preview "probably misses" when its stack file declares a pipeline (a model's `retraining.enabled`,
`batch_transforms`, `data_pipelines`) and the keys the last preview of the same stack file used (built_cache.py's
manifest) are not all on disk. A guess that turns out wrong costs little either way: a
worker started for nothing is killed when the preview ends; a miss nobody predicted starts the worker then.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Optional


def cache_directory() -> Optional[Path]:
    """Where previews keep the pipeline definitions the SageMaker SDK built (`components/built_cache.py`):
    `EMLOPS_CACHE_DIR` (set but empty: nowhere, each process builds its own), else `$XDG_CACHE_HOME/emlops`,
    else `~/.cache/emlops`."""
    if "EMLOPS_CACHE_DIR" in os.environ:
        return Path(os.environ["EMLOPS_CACHE_DIR"]) if os.environ["EMLOPS_CACHE_DIR"] else None
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "emlops"
    try:
        return Path.home() / ".cache" / "emlops"
    except RuntimeError:  # no home directory to be found
        return None


def manifest_name(stack: str, stack_file: Path) -> str:
    """The name of the manifest of `stack`'s previews: by the stack file's content, so that a copy of the project
    (a CI checkout, a worktree, a test's scratch project) finds what a preview of the same file kept, and an
    edited stack file is a stack previewed for the first time."""
    try:
        content = hashlib.sha256(stack_file.read_bytes()).hexdigest()
    except OSError:
        content = str(stack_file.resolve())
    return f"{stack}:{content}"


def start_early(stack: str) -> None:
    """Start the build worker now if `stack`'s preview will probably build a definition (only where the worker
    is allowed: the `emlops` command's own process). A project or stack file that cannot be read starts
    nothing: the preview reports it."""
    from emlops.components import build_worker, built_cache
    from emlops.program.config import ConfigError
    from emlops.program.project import find_project
    from emlops.program.yaml_files import read_yaml

    if not build_worker.allowed():
        return
    try:
        project = find_project()
        path = project.stack_path(stack)
        document = read_yaml(path, str(path), kind="stack file")
    except (ConfigError, OSError, ValueError):
        return
    config = document.get("config") if isinstance(document, dict) else None
    platform = config.get("emlops:platform") if isinstance(config, dict) else None
    if not isinstance(platform, dict) or not declares_pipelines(platform):
        return
    built_cache.use_directory(cache_directory())
    if not built_cache.probably_all_kept(manifest_name(stack, path)):
        build_worker.expect(str(platform.get("region")), start_now=True)


def declares_pipelines(platform: dict[str, Any]) -> bool:
    """Whether a stack file's `emlops:platform` declares a SageMaker pipeline whose definition the SDK builds."""
    models = platform.get("models") if isinstance(platform.get("models"), list) else []
    retraining = [model.get("retraining") for model in models if isinstance(model, dict)]
    return bool(platform.get("batch_transforms") or platform.get("data_pipelines")
                or any(isinstance(r, dict) and r.get("enabled") is True for r in retraining))
