"""Building a platform stage by stage: what is built so far registers while the rest is built.

A Pulumi resource registers once the event loop runs: its inputs are serialized, its registration is sent, its
outputs resolve. A program that builds the whole platform at once, as `MlPlatform(...)` does, holds every resource
of the stack, with its pending Outputs, futures and tasks, until the last one exists: 330 MB at the peak for a stack
of 100 models. `MlPlatform.build` (what the program calls, from its async entry point `pulumi.run`) lets the loop
run after each model's component instead: ~245 MB (243-256 MB measured, benchmarks/preview.py's cold rows).

The resources and their dependencies are the same either way (tests/test_platform_stepwise.py compares the plans).
That holds because no stage adds a child to a component built before a yield: a resource that depends on a
component depends on the children the component has when the resource registers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

TURNS = 20
"""How many times the loop runs after each step: 3 already bring the 100-model peak to 247 MB, 20 to 243 MB and leave
room for longer chains of Outputs; more turns change nothing (254 MB at 100)."""


async def stepwise(steps: Iterator[None]) -> None:
    """Take each step, then let the event loop run `TURNS` times."""
    for _ in steps:
        for _ in range(TURNS):
            await asyncio.sleep(0)  # asyncio's way to let every task that is ready take its next step
