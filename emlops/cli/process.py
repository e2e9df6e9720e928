"""A CLI process that previews a stack is short-lived: what its imports allocated stays until it ends.

So the `emlops` command freezes it (`gc.freeze()`) before the program runs, and the collector's
collections, young and full, never scan the ~0.5 million objects of pulumi_aws, pydantic and the
catalogue again. While the program runs, full collections wait (emlops/offline/collector.py).

Only the `emlops` console process does this (`main()` says it is one): a command invoked in a longer-lived
process (a test session, a notebook) leaves that process's collector as it is.
"""

from __future__ import annotations

import gc

_console = False


def console_process() -> None:
    """This process is the `emlops` command itself (called by the console entry point)."""
    global _console
    _console = True


def one_preview_process() -> None:
    """In the `emlops` command's own process, freeze what the imports allocated. Elsewhere, nothing."""
    if not _console:
        return
    gc.collect()
    gc.freeze()
