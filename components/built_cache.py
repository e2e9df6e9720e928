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

In the `emlops` command's own preview process, a miss is built by the background worker
(`components/build_worker.py`): `cached` then returns an awaitable of the same string (an `Output.apply`
callback may return one; Pulumi awaits it), kept in memory and on disk when it is done, exactly as a build
in this process. Elsewhere (tests, notebooks, `pulumi up`) the build runs here, as before.

To start that worker before the program reaches its first miss, a preview needs to guess whether it will
miss: the directory keeps, per stack of a project, a manifest of the keys its last preview used
(`remember`); `probably_all_kept` says whether every one of them is on disk.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Optional, Union

_MEMORY: dict[str, str] = {}
_USED: list[str] = []
"""`<kind>/<key>` of every document this process asked for, in order (a preview's manifest is a slice)."""
_directory: Optional[Path] = None


def use_directory(directory: Optional[Path]) -> None:
    """Keep results in `directory` too (None: in this process only)."""
    global _directory
    _directory = directory


def cached(kind: str, inputs: Mapping[str, Any], *, packages: Sequence[str], source: Union[Path, Sequence[Path]],
           build: Callable[[], str]) -> Union[str, Awaitable[str]]:
    """`build()`, or what it returned before for the same `kind`, inputs, package versions and source (one
    module's, or several modules' that the build runs). A miss in the `emlops` command's preview process: an
    awaitable of it, built by the worker (`build` must then pickle: a module-level function and its args)."""
    key = _key(kind, inputs, packages, source)
    _USED.append(f"{kind}/{key}")
    return _lookup(key, kind, build, background=True)


def cached_now(kind: str, inputs: Mapping[str, Any], *, packages: Sequence[str],
               source: Union[Path, Sequence[Path]], build: Callable[[], str]) -> str:
    """`cached`, for a caller that needs the value at once (not in an `Output.apply`): a miss is built in this
    process, and the key is not in the stack's manifest (which lists what the worker would build)."""
    result = _lookup(_key(kind, inputs, packages, source), kind, build, background=False)
    assert isinstance(result, str)
    return result


def _lookup(key: str, kind: str, build: Callable[[], str], background: bool) -> Union[str, Awaitable[str]]:
    if key in _MEMORY:
        return _MEMORY[key]
    path = _directory / kind / f"{key}.json" if _directory is not None else None
    result = _read(path) if path is not None else None
    if isinstance(result, str):
        _MEMORY[key] = result
        return result
    from emlops.components import build_worker

    if background and build_worker.allowed():
        return _kept(key, path, build_worker.run(build))
    return _keep(key, path, build())


async def _kept(key: str, path: Optional[Path], built: Awaitable[str]) -> str:
    return _keep(key, path, await built)


def _keep(key: str, path: Optional[Path], result: str) -> str:
    if path is not None:
        _write(path, result)
    _MEMORY[key] = result
    return result


def used() -> int:
    """How many documents this process asked for so far (`remember(name, since=used())` after a preview)."""
    return len(_USED)


def remember(name: str, since: int) -> None:
    """Keep, as `name`'s manifest, the keys asked for since `since` (nothing without a directory)."""
    path = _manifest(name)
    if path is not None:
        keys = list(dict.fromkeys(_USED[since:]))
        if _read(path) != keys:
            _write(path, keys)


def probably_all_kept(name: str) -> bool:
    """Whether `name`'s last preview left a manifest whose every key is on disk (no manifest: no)."""
    path = _manifest(name)
    keys = _read(path) if path is not None else None
    if not isinstance(keys, list) or _directory is None:
        return False
    return all(isinstance(key, str) and (_directory / f"{key}.json").is_file() for key in keys)


def _manifest(name: str) -> Optional[Path]:
    """`name` (the project's directory and the stack) as a file name."""
    if _directory is None:
        return None
    return _directory / "manifests" / f"{hashlib.sha256(name.encode()).hexdigest()}.json"


def forget() -> None:
    """Drop what this process kept (tests that time or observe a build)."""
    _MEMORY.clear()
    _USED.clear()


def _key(kind: str, inputs: Mapping[str, Any], packages: Sequence[str], source: Union[Path, Sequence[Path]]) -> str:
    versions = {package: _version(package) for package in packages}
    sources = [source] if isinstance(source, Path) else list(source)
    digests = [hashlib.sha256(path.read_bytes()).hexdigest() for path in sources]
    material = json.dumps({"kind": kind, "inputs": inputs, "packages": versions,
                           "source": digests[0] if len(digests) == 1 else digests},
                          sort_keys=True, default=list)
    return hashlib.sha256(material.encode()).hexdigest()


@functools.cache
def _version(package: str) -> Optional[str]:
    """The installed version of `package` (None: not installed), read once per process: finding it reads the
    distribution's metadata from disk, ~12 ms for the packages of a prod preview's builds, every preview. The
    modules this process imported are those of the version it first read, so a version installed meanwhile
    would not be what builds."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))["document"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write(path: Path, document: Any) -> None:
    """Atomically: a preview running beside this one reads the whole file or none of it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False,
                                         suffix=".tmp") as handle:
            json.dump({"document": document}, handle)
        os.replace(handle.name, path)
    except OSError:
        pass
