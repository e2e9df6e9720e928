"""One background process that builds the pipeline definitions a CLI preview misses in its cache.

Importing the SageMaker SDK (~1.7 s) and building five definitions (~0.6 s) is almost half of a cold
`emlops preview prod`, and none of it needs the main process: a build takes a spec (a frozen dataclass of plain
values) and returns a string. On a machine with a second core it runs beside the program, which meanwhile
registers every other resource: a definition is the value of an `Output.apply` callback, and Pulumi awaits
an awaitable a callback returns (built_cache.py returns one when this worker builds).

- Only where `allow()` was called: the `emlops` command's own preview process (emlops/cli/process.py). Tests,
  notebooks and a real `pulumi up` build in their own process, as before.
- One worker (`ProcessPoolExecutor(max_workers=1)`), started by `spawn` (a forked copy of a process running
  Pulumi's gRPC threads is not safe, and macOS has no fork by default). Its initializer imports the SDK
  (`sagemaker_sdk.import_sdk`); every build it gets is a module-level `build_definition` bound to its spec
  (`functools.partial`), so it pickles. A child of `spawn` imports the parent's `__main__` again as
  `__mp_main__`: `python -m emlops` is not re-run (multiprocessing skips a package's `__main__`); the `emlops`
  console script is, which only imports `emlops.cli` (its `main()` runs under `if __name__ == "__main__"`),
  ~0.35 s in the worker, beside the SDK's import.
- `start()` may come before any miss (the preview starts it when its stack has pipelines and the cache
  probably misses): the worker then imports the SDK while the program runs. `stop()` kills it, without waiting
  for an import nobody needs any more.
- The worker only saves time, it never decides an outcome: if the build raises in the worker, the worker dies,
  or its result cannot come back, the same build runs again in this process (`run`), so the user sees
  exactly what an in-process build gives (its definition, or its error as one line); after a dead worker,
  every later build runs in this process.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Optional

from emlops.components import sagemaker_sdk

_allowed = False
_pool: Optional[ProcessPoolExecutor] = None
_region = "us-east-1"


def allow(allowed: bool = True) -> None:
    """Let misses be built in the worker (this process is the `emlops` command's own preview process)."""
    global _allowed
    _allowed = allowed


def allowed() -> bool:
    return _allowed


def running() -> bool:
    """Whether the worker was started (and not stopped) in this process."""
    return _pool is not None


def expect(region: str, start_now: bool) -> None:
    """The preview's stack is in `region` (the SDK reads it when imported, as the first in-process build would
    have: the worker imports it there); `start_now`: start the worker now, a miss is likely."""
    global _region
    _region = region
    if start_now:
        start()


def start() -> None:
    """Start the worker now (when allowed; once), so it imports the SDK before the first build reaches it."""
    global _pool
    if not _allowed or _pool is not None:
        return
    _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                initializer=sagemaker_sdk.import_sdk, initargs=(_region,))
    _pool.submit(_ready)  # a pool starts its process at the first submission


async def run(build: Callable[[], str]) -> str:
    """`build()` run by the worker (started if need be), or, if anything goes wrong there, in this process."""
    start()
    try:
        assert _pool is not None
        return await asyncio.wrap_future(_pool.submit(build))
    except Exception:  # raised by the build, a dead worker (BrokenProcessPool), a result that did not pickle
        return build()


def stop() -> None:
    """Kill the worker (the builds it was given are done, or no longer awaited): a worker still importing the
    SDK is not waited for. In-flight builds are cancelled."""
    global _pool
    pool, _pool = _pool, None
    if pool is None:
        return
    # Python 3.14 has `terminate_workers()`; before it, the pool's processes are only in `_processes`.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        process.kill()
    for process in processes:
        process.join()
    # With its process dead, the pool's manager thread ends at once; waiting for it here keeps it from closing
    # its wake-up pipe while the interpreter's exit writes to it (an "Exception ignored ... Bad file descriptor"
    # on the command's stderr, after its own one line).
    pool.shutdown(wait=True, cancel_futures=True)


def _ready() -> None:
    """The first task: returns once the initializer has imported the SDK."""
