"""Values built from Outputs with as few Outputs as the value needs.

Pulumi's own helpers lift every leaf: `Output.concat("arn:", partition, ":s3:::", bucket)` makes an Output of
each of the four parts and more for each Output among them, and `Output.json_dumps(document)` makes one for
every string of a policy document, although only a few of them (ARNs of resources not yet created) are
Outputs. Each of those Outputs is a task that Pulumi's runtime schedules, tracks and waits on, and at a
hundred models that is most of a preview's time and memory.

The helpers here apply once per Output the value actually holds and return a plain value when it holds
none. The result is the same value, with the same dependencies (the union of the Outputs' resources), the
same secrecy and the same unknown-ness in a real preview as Pulumi's helpers would give.
"""

from __future__ import annotations

import json
from typing import Any, Callable, TypeVar

import pulumi

T = TypeVar("T")


def resolved(value: Any, build: Callable[[Any], T]) -> pulumi.Input[T]:
    """`build(value)` with every Output nested in `value` (dicts, lists, tuples) replaced by its value: a plain
    result when `value` holds no Output, else an Output that applies once per distinct Output."""
    outputs: dict[int, pulumi.Output[Any]] = {}
    _collect(value, outputs)
    if not outputs:
        return build(value)
    pending = list(outputs.values())

    def step(index: int, values: dict[int, Any]) -> pulumi.Input[T]:
        if index == len(pending):
            # A value an Output resolved to may hold Outputs of its own (an apply that returned a list of them).
            return resolved(_substitute(value, values), build)
        output = pending[index]
        return output.apply(lambda known: step(index + 1, {**values, id(output): known}))

    return step(0, {})


def concat(*parts: pulumi.Input[str]) -> pulumi.Input[str]:
    """The parts joined: a plain string when every part is one (policies sized before a deploy), else an Output."""
    return resolved(list(parts), "".join)


def json_document(document: Any) -> pulumi.Input[str]:
    """`json.dumps(document)` (Pulumi's `Output.json_dumps` writes the same) once its Outputs are known."""
    return resolved(document, json.dumps)


def _collect(value: Any, outputs: dict[int, pulumi.Output[Any]]) -> None:
    if isinstance(value, pulumi.Output):
        outputs.setdefault(id(value), value)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, outputs)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect(item, outputs)


def _substitute(value: Any, values: dict[int, Any]) -> Any:
    if isinstance(value, pulumi.Output):
        return values[id(value)]
    if isinstance(value, dict):
        return {key: _substitute(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, values) for item in value]
    if isinstance(value, tuple):
        return tuple(_substitute(item, values) for item in value)
    return value
