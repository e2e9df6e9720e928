"""A CLI process that previews a stack is short-lived: what its imports allocated stays until it ends.

So the `emlops` command freezes it (`gc.freeze()`) before the program runs, and the collector's
collections, young and full, never scan the ~0.5 million objects of pulumi_aws, pydantic and the
catalogue again. While the program runs, full collections wait (emlops/offline/collector.py).

Its definitions are built beside the program: a pipeline definition that misses the definition cache is
built by one background process that imports the SageMaker SDK (components/build_worker.py), while this
one keeps registering resources; the preview starts it early when its stack has pipelines and its last
preview's definitions are not all on disk, and kills it when the preview ends.

Only the `emlops` console process does this (`main()` says it is one): a command invoked in a longer-lived
process (a test session, a notebook) leaves that process's collector as it is, and builds in that process.
"""

from __future__ import annotations

import gc
import os
from typing import Optional

_console = False
AT_ONCE = "EMLOPS_PREVIEWS_AT_ONCE"
"""How many previews run at once beside this one's process (`emlops preview --all` sets it for its children)."""


def console_process() -> None:
    """This process is the `emlops` command itself (called by the console entry point)."""
    global _console
    _console = True


def one_preview_process(stack: Optional[str] = None) -> None:
    """In the `emlops` command's own process, freeze what the imports allocated and let the definitions be
    built in the background worker (`background_builds`). Elsewhere, nothing."""
    if not _console:
        return
    background_builds(stack)
    gc.collect()
    gc.freeze()


def background_builds(stack: Optional[str]) -> None:
    """In the `emlops` command's own process, let definitions that miss the cache be built by the background
    worker, and start it now if `stack`'s preview will probably need it (before the preview's own imports, so
    the two overlap). Elsewhere, nothing."""
    if not _console or not spare_cores():
        return
    from emlops.components import build_worker
    from emlops.offline.build_start import start_early

    build_worker.allow()
    if stack is not None:
        start_early(stack)


def spare_cores() -> bool:
    """Whether each preview running at once can have a second core for its worker. Otherwise the worker only adds
    work (it imports what this process has already imported: ~1 s of CPU each), and the definitions are built
    in-process: `emlops preview --all` on 2 cores runs 2 previews at once, which keep both cores busy."""
    try:
        at_once = max(1, int(os.environ.get(AT_ONCE, "1")))
    except ValueError:
        at_once = 1
    return (os.cpu_count() or 1) >= 2 * at_once
