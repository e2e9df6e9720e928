"""One-line messages for stack configuration errors: pydantic's errors in the words of a YAML file.

`infra.config` validates `emlops:platform` with pydantic; `describe` turns a validation error into
`emlops:platform.<key path>: <what is allowed>`, with the allowed keys (and a "did you mean") for an unknown
key and a field's own `errorMessage` for a pattern mismatch, found by walking the validated model (the
root) along the error's location.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from pydantic import BaseModel

from emlops.components.settings import AtKey, field_extra, model_at


CONFIG_NAMESPACE = "emlops"
CONFIG_KEY = "platform"
FULL_KEY = f"{CONFIG_NAMESPACE}:{CONFIG_KEY}"


def printable(text: str, quote: bool = False) -> str:
    """`text` as one printable line: control characters, line and paragraph separators written as Python
    escapes (`\\n`, `\\x1b`, `\\u2028`). With `quote`, text that needs escaping is written as a quoted
    Python string instead (`'a\\nb'`), so a key path shows where such a key begins and ends."""
    if text.isprintable():
        return text
    if quote:
        return repr(text)
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def describe(error: dict[str, Any], root: type[BaseModel]) -> str:
    """One line for a pydantic error of `root` (the model of `emlops:platform`), printable whatever the stack
    file's keys and values hold."""
    return printable(_describe(error, root))


def key_path(loc: tuple) -> str:
    """`emlops:platform.<key>[<index>]...`: a pydantic location as the stack file's key path, each key printable."""
    return FULL_KEY + "".join(f"[{p}]" if isinstance(p, int) else f".{printable(str(p), quote=True)}" for p in loc)


def _describe(error: dict[str, Any], root: type[BaseModel]) -> str:
    loc = tuple(error["loc"])
    path = key_path(loc)
    kind = error["type"]
    if kind == "missing":
        return f"{path}: field required"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(root, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"{path}: unknown key; {hint}allowed keys: {', '.join(allowed)}"
    custom = field_extra(root, loc).get("errorMessage")
    got = f", got {error['input']!r}" if "input" in error and not isinstance(error["input"], dict) else ""
    if kind == "string_pattern_mismatch" and custom:
        return f"{path}: {custom}{got}"
    if kind in _SIZE_MESSAGES and isinstance(error.get("input"), list):
        return f"{path}: {_SIZE_MESSAGES[kind].format(**error.get('ctx', {}))}{got}"
    if kind in _PLAIN_MESSAGES:
        return f"{path}: {_PLAIN_MESSAGES[kind]}{got}"
    message = str(error["msg"])
    if kind == "value_error":
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, AtKey):
            return f"{path}.{printable(cause.path)}: {cause}"
        return f"{path}: {message.removeprefix('Value error, ')}"
    message = re.sub(r"^Input should be", "must be", message)
    message = re.sub(r"^String should", "must", message)
    message = message[:1].lower() + message[1:]
    return f"{path}: {message}{got}"


# Pydantic's wording for type errors, in the words of a YAML file.
_PLAIN_MESSAGES = {
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "string_type": "must be a string",
    "model_type": "must be a mapping of settings",
    "dict_type": "must be a mapping",
    "list_type": "must be a list",
}
# Pydantic's wording for size limits, rewritten with the limit it reports in ctx.
_SIZE_MESSAGES = {
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} item(s)",
}


def _allowed_keys(root: type[BaseModel], loc: tuple) -> list[str]:
    model = model_at(root, loc)
    return [field.alias or name for name, field in model.model_fields.items()] if model else []
