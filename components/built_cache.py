"""Documents an SDK builds, kept by everything they were built from, so the same inputs are built once.

Building a retraining pipeline's definition imports the SageMaker SDK (~1.5 s and ~150 MB) and runs it
(~0.3 s per pipeline): more than half of a cold `emlops preview prod`, every time, for a string that only
changes when its inputs do. A build is deterministic (the tests hold it to byte-identical output), so its
result is kept under a key made of
- the inputs (every field of the spec, and the pipeline's name),
- the versions of the packages that build it (the SDK's distributions and botocore),
- the source of the modules that drive the SDK (a change to how emlops calls it is a new key).

Results are kept for the life of the process, and on disk only where the offline preview asks for it
(`use_directory`, from `EMLOPS_CACHE_DIR` or `~/.cache/emlops`): a `pulumi up` always builds afresh, so
what is deployed never comes from a file a previous run left. A file that cannot be read or written is a
miss, never an error: the build runs as if there were no cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Optional, Union

_MEMORY: dict[str, str] = {}
_directory: Optional[Path] = None


def use_directory(directory: Optional[Path]) -> None:
    """Keep results in `directory` too (None: in this process only)."""
    global _directory
    _directory = directory


def cached(kind: str, inputs: Mapping[str, Any], *, packages: Sequence[str], source: Union[Path, Sequence[Path]],
           build: Callable[[], str]) -> str:
    """`build()`, or what it returned before for the same `kind`, inputs, package versions and source (one
    module's, or several modules' that the build runs)."""
    key = _key(kind, inputs, packages, source)
    if key in _MEMORY:
        return _MEMORY[key]
    path = _directory / kind / f"{key}.json" if _directory is not None else None
    result = _read(path) if path is not None else None
    if result is None:
        result = build()
        if path is not None:
            _write(path, result)
    _MEMORY[key] = result
    return result


def forget() -> None:
    """Drop what this process kept (tests that time or observe a build)."""
    _MEMORY.clear()


def _key(kind: str, inputs: Mapping[str, Any], packages: Sequence[str], source: Union[Path, Sequence[Path]]) -> str:
    versions = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    sources = [source] if isinstance(source, Path) else list(source)
    digests = [hashlib.sha256(path.read_bytes()).hexdigest() for path in sources]
    material = json.dumps({"kind": kind, "inputs": inputs, "packages": versions,
                           "source": digests[0] if len(digests) == 1 else digests},
                          sort_keys=True, default=list)
    return hashlib.sha256(material.encode()).hexdigest()


def _read(path: Path) -> Optional[str]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))["document"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write(path: Path, document: str) -> None:
    """Atomically: a preview running beside this one reads the whole file or none of it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False,
                                         suffix=".tmp") as handle:
            json.dump({"document": document}, handle)
        os.replace(handle.name, path)
    except OSError:
        pass
