"""Letting a program's registrations and Outputs finish before Pulumi's own shutdown wait.

When a program's function returns, Pulumi's runtime waits for what it started (`wait_for_rpcs`): it waits
for the first of *all* pending Output tasks to finish, puts the others back and waits again, adding and
removing a done-callback on every pending task each time. A program whose resources depend on one another
in chains (a key, its bucket, the bucket's policy, a role's grant to it, ...) finishes in many small
waves, each of which costs a pass over thousands of pending tasks: 56 waves over 253,000 pending tasks for
a 495-resource stack, where a flat program of as many independent roles needs 9.

`settled(program)` makes the program's function return an awaitable that first waits for every task the
program started, each task once (`asyncio.gather`), until no new one appears; Pulumi's runtime awaits that
awaitable as part of the program (`run_in_stack`) and then finds nothing left to wait for. Failures are
left where they are (a failed Output stays in Pulumi's set, a failed registration in its RPC list), so
Pulumi's own wait reports them exactly as before. Nothing of Pulumi's runtime is changed; this runs only
under the offline engine.

A program that failed leaves tasks under way; `cancel_what_is_left` ends them before the engine closes its loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from inspect import isawaitable
from typing import Any, Optional

from pulumi.runtime.settings import SETTINGS, _get_rpc_manager


def forget_earlier_runs() -> None:
    """Drop the tasks a run that failed earlier in this process left in Pulumi's state (its loop is closed),
    as Pulumi's own `pulumi.runtime.mocks.test` wrapper does before each test."""
    _get_rpc_manager().clear()
    with SETTINGS.lock:
        SETTINGS.outputs.clear()


def settled(program: Callable[[], Any]) -> Callable[[], Awaitable[None]]:
    """`program`, then a wait for everything it started (see the module's docstring)."""
    def run() -> Awaitable[None]:
        result: Optional[Any] = program()

        async def then_settle() -> None:
            if isawaitable(result):
                await result
            await settle()
        return then_settle()
    return run


async def settle() -> None:
    """Wait, each once, for the pending registrations and Output tasks, until no new one appears."""
    manager = _get_rpc_manager()
    loop = asyncio.get_running_loop()
    while True:
        with SETTINGS.lock:
            pending = [task for task in (*manager.rpcs, *SETTINGS.outputs)
                       if not task.done() and task.get_loop() is loop]
        if not pending:
            return
        await asyncio.gather(*pending, return_exceptions=True)


def cancel_what_is_left(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel, and let finish, the tasks a failed program left running (as `asyncio.run` does before it closes
    its loop). Pulumi stops waiting at the first failed registration, so registrations and component outputs
    still under way at that moment would otherwise be destroyed pending, and asyncio writes each of them to
    stderr after the preview's one-line error. A program that succeeded leaves none."""
    while True:  # a task may start another as it is cancelled
        left = [task for task in asyncio.all_tasks(loop) if not task.done()]
        if not left:
            return
        for task in left:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
