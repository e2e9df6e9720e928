"""Check plan resources against AWS's own API definitions (botocore's service models).

The offline preview's mocks accept any input, so a typo or an out-of-range value would only surface at
`pulumi up`. Each supported resource's `inputs` (camelCase, as pulumi_aws v7 receives them) are
translated into the request of the resource's create API (the `create` of its entry in the resource
catalogue, `emlops.catalog.resources`), then checked the way the service would:
botocore's `ParamValidator` for types, required members and minimums, plus what it leaves out
(maximums, enums and regex patterns). Values the preview cannot know ("[unknown: ...]", "[secret]")
count as present but are not checked.

botocore is imported on first use: importing it costs ~0.13 s, which a preview must not pay.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from emlops.catalog.resource_type import CreateRequest
from emlops.catalog.resources import CATALOGUE

if TYPE_CHECKING:
    from botocore.model import OperationModel, Shape
    from botocore.session import Session
    from botocore.validate import ParamValidator


@dataclass(frozen=True)
class ApiRequest:
    """A create call, in the API's member names (PascalCase), ready for botocore."""

    service: str
    operation: str
    params: dict
    # Pulumi paths of inputs with no API member: reported by `validate_request`, never silently dropped.
    unmapped: tuple[str, ...] = ()


class UnsupportedResource(KeyError):
    """The resource type's catalogue entry has no create request (yet)."""

    def __str__(self) -> str:  # KeyError's default repr-quotes the message
        return str(self.args[0])


# Pulumi-only top-level inputs on every type: `region` (pulumi_aws v7) picks the API endpoint.
_GLOBAL_IGNORE = frozenset({"region"})

SUPPORTED_TYPES: frozenset[str] = frozenset(token for token, entry in CATALOGUE.items() if entry.create)


def is_placeholder(value: object) -> bool:
    """A plan value the offline preview cannot know: "[unknown: ...]", "[unknown]" or "[secret]"."""
    return isinstance(value, str) and (
        value in ("[secret]", "[unknown]") or value.startswith("[unknown:"))


def to_api_request(resource_type: str, inputs: dict) -> ApiRequest:
    """Translate a plan resource's `inputs` into the request of its create API."""
    entry = CATALOGUE.get(resource_type)
    mapping = entry.create if entry is not None else None
    if mapping is None:
        raise UnsupportedResource(
            f"{resource_type}: no mapping to an AWS create API (supported: {', '.join(sorted(SUPPORTED_TYPES))})")
    unmapped: list[str] = []
    inputs = {k: v for k, v in inputs.items() if k not in _GLOBAL_IGNORE}
    params = _translate(inputs, _operation(mapping.service, mapping.operation).input_shape,
                        mapping, "", "", unmapped)
    for member in sorted(mapping.provider_supplied):
        params.setdefault(member, "[unknown: filled in by the provider]")
    return ApiRequest(mapping.service, mapping.operation, params, tuple(unmapped))


def validate_request(request: ApiRequest) -> list[str]:
    """Every problem with the request as one line "<Operation>: <member path>: <problem>"; [] if valid."""
    problems = [f"{request.operation}: {path}: no such member in the API" for path in request.unmapped]
    shape = _operation(request.service, request.operation).input_shape
    errors = _validator().validate(request.params, shape)
    # `_errors` is private but has been botocore's structured error list for a decade; its report
    # text is for people, and we want our own one-line-per-problem format with member paths.
    problems += [f"{request.operation}: {_describe(*error)}" for error in errors._errors]
    return problems


@functools.lru_cache(maxsize=None)
def _operation(service: str, operation: str) -> OperationModel:
    return _session().get_service_model(service).operation_model(operation)


@functools.lru_cache(maxsize=1)
def _session() -> Session:
    import botocore.session

    return botocore.session.get_session()


# --- translation ---------------------------------------------------------------------------------

def _translate(value: Any, shape: Shape, mapping: CreateRequest, path: str, table_path: str,
               unmapped: list[str]) -> Any:
    """Walk the value and the API shape together, renaming members and converting Pulumi idioms."""
    if value is None or is_placeholder(value):
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return _translate_structure(value, shape, mapping, path, table_path, unmapped)
    if kind == "list" and isinstance(value, dict) and _is_tag_list(shape):
        # Pulumi tags are a map; the API takes [{"Key": ..., "Value": ...}]
        return [{"Key": k, "Value": v} for k, v in value.items()]
    if kind == "list" and isinstance(value, dict) and shape.member.type_name == "structure":
        # the provider models some one-element API lists (e.g. MonitoringOutputs) as a single block
        return [_translate(value, shape.member, mapping, f"{path}[0]", table_path, unmapped)]
    if kind == "structure" and isinstance(value, list):  # many blocks where one belongs: a type error later
        return [_translate(item, shape, mapping, f"{path}[{i}]", table_path, unmapped) for i, item in enumerate(value)]
    if kind == "list" and isinstance(value, list):
        return [_translate(item, shape.member, mapping, f"{path}[{i}]", table_path, unmapped)
                for i, item in enumerate(value)]
    if kind == "map" and isinstance(value, dict):
        return {k: _translate(v, shape.value, mapping, f"{path}.{k}", f"{table_path}.{k}", unmapped)
                for k, v in value.items()}
    if kind in ("integer", "long") and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _translate_structure(value: dict, shape: Shape, mapping: CreateRequest, path: str, table_path: str,
                         unmapped: list[str]) -> dict:
    members = {name.lower(): name for name in shape.members}
    out: dict[str, Any] = {}
    for key, item in value.items():
        key_path, key_table = (f"{path}.{key}" if path else key), (f"{table_path}.{key}" if table_path else key)
        if item is None or key_table in mapping.ignore:
            continue
        member = mapping.renames.get(key_table) or members.get(key.lower())
        if member is None and key.endswith("s"):
            # The bridge pluralises list-typed names (`s3DataSources`, `includeInferenceResponseIns`);
            # where the API has one structure, the bridge's list holds (at most) that one block.
            member = members.get(key[:-1].lower())
            if member and shape.members[member].type_name == "structure" and isinstance(item, list) and len(item) == 1:
                item = item[0]
        if member is None or member not in shape.members:
            unmapped.append(key_path)
            continue
        if key_table in mapping.json_documents and shape.members[member].type_name == "string":
            out[member] = json.dumps(_snake_case(item), sort_keys=True)
            continue
        out[member] = _translate(item, shape.members[member], mapping, key_path, key_table, unmapped)
    return out


# maps whose keys are the document's data, not its members
_DATA_MAPS = ("customDetails", "metadata")


def _snake_case(value: Any) -> Any:
    """A provider structure as its JSON document spells it: `intendedUses` -> `intended_uses`."""
    if isinstance(value, list):
        return [_snake_case(item) for item in value]
    if not isinstance(value, dict):
        return value
    return {re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower(): item if key in _DATA_MAPS else _snake_case(item)
            for key, item in value.items()}


def _is_tag_list(shape: Shape) -> bool:
    member = shape.member
    return member.type_name == "structure" and set(member.members) == {"Key", "Value"}


# --- validation ----------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _validator() -> ParamValidator:
    """botocore's ParamValidator, extended with the checks it leaves out: max, enum and pattern."""
    from botocore.validate import ParamValidator

    class _Validator(ParamValidator):
        def _shape_has_constraints(self, shape: Shape) -> bool:
            return True  # botocore only type-checks list items it thinks unconstrained; enums count

        def _validate(self, params: Any, shape: Shape, errors: Any, name: str) -> None:
            if is_placeholder(params):
                return  # present (so `required` holds) but unknowable offline
            kind = shape.type_name
            expected = self.SCALAR_TYPES.get(kind) or self.CONTAINER_TYPES.get(kind)
            if expected and (not isinstance(params, expected) or (isinstance(params, bool) and kind != "boolean")):
                errors.report(name, "invalid type", param=params, expected=kind)
                return
            super()._validate(params, shape, errors, name)
            _check_extra(params, shape, errors, name)

    return _Validator()


def _check_extra(value: Any, shape: Shape, errors: Any, name: str) -> None:
    meta = shape.metadata
    size = len(value) if isinstance(value, (str, list, tuple, dict)) else value
    if "max" in meta and isinstance(size, (int, float)) and size > meta["max"]:
        kind = "value" if shape.type_name in ("integer", "long", "float", "double") else "length"
        errors.report(name, "above max", param=size, kind=kind, max_allowed=meta["max"])
    if not isinstance(value, str):
        return
    if getattr(shape, "enum", None) and value not in shape.enum:
        errors.report(name, "not in enum", param=value, enum=shape.enum)
    pattern = meta.get("pattern")
    compiled = _compiled(pattern) if pattern is not None else None
    if compiled is not None and not compiled.fullmatch(value):
        errors.report(name, "no pattern match", param=value, pattern=pattern)


def _describe(reason: str, name: str, extra: dict) -> str:
    """One botocore (or our) validation error as "<member path>: <problem>"."""
    path = name.lstrip(".")
    if reason == "missing required field":
        return f"{path + '.' if path else ''}{extra['required_name']}: missing required member"
    if reason == "unknown field":
        return f"{path + '.' if path else ''}{extra['unknown_param']}: no such member in the API"
    if reason == "invalid type":
        expected = extra.get("expected") or ", ".join(extra["valid_types"])
        return f"{path}: expected {expected}, got {type(extra['param']).__name__} {extra['param']!r}"
    if reason == "invalid range":
        return f"{path}: value {extra['param']} is below the minimum {extra['min_allowed']}"
    if reason == "invalid length":
        return f"{path}: length {extra['param']} is below the minimum {extra['min_allowed']}"
    if reason == "above max":
        return f"{path}: {extra['kind']} {extra['param']} is above the maximum {extra['max_allowed']}"
    if reason == "not in enum":
        enum = extra["enum"]
        options = enum if len(enum) <= 10 else difflib.get_close_matches(extra["param"], enum, n=3, cutoff=0)
        allowed = ", ".join(repr(option) for option in options)
        return (f"{path}: {extra['param']!r} is not one of {allowed}" if len(enum) <= 10
                else f"{path}: {extra['param']!r} is not an allowed value (closest: {allowed})")
    if reason == "no pattern match":
        return f"{path}: {extra['param']!r} does not match pattern {extra['pattern']}"
    from botocore.validate import ValidationErrors

    return f"{path}: {ValidationErrors()._format_error((reason, name, extra))}"


# --- Java regexes --------------------------------------------------------------------------------

# Java's POSIX classes are ASCII-only unless UNICODE_CHARACTER_CLASS is set (AWS never sets it).
_POSIX = {"Alnum": "a-zA-Z0-9", "Alpha": "a-zA-Z", "Digit": "0-9", "Lower": "a-z", "Upper": "A-Z",
          "Print": "\\x20-\\x7e", "Graph": "\\x21-\\x7e", "Space": " \\t\\n\\x0b\\f\\r",
          "Punct": "!-/:-@\\[-`{-~", "XDigit": "0-9a-fA-F"}
# Java spells code points above U+FFFF as UTF-16 surrogate pairs; Python's `re` takes code points.
_SURROGATE_RANGE = "\\uD800\\uDC00-\\uDBFF\\uDFFF"
_PROPERTY = re.compile(r"\\p\{(\w+)\}")


@functools.lru_cache(maxsize=None)
def _compiled(pattern: str) -> Optional[re.Pattern[str]]:
    """The AWS (Java) pattern as a Python regex, or None when it cannot be expressed: not checked."""
    try:
        return re.compile(_python_regex(pattern))
    except (re.error, KeyError):
        return None


def _python_regex(pattern: str) -> str:
    """Rewrite the Java-only parts AWS uses: `\\p{L}`-style classes and surrogate-pair ranges."""
    pattern = pattern.replace(_SURROGATE_RANGE, "\\U00010000-\\U0010FFFF")
    out, in_class, i = [], False, 0
    while i < len(pattern):
        match = _PROPERTY.match(pattern, i)
        if match:
            ranges = _POSIX.get(match[1]) or _category_ranges(match[1])
            out.append(ranges if in_class else f"[{ranges}]")
            i = match.end()
            continue
        char = pattern[i:i + 2] if pattern[i] == "\\" else pattern[i]
        in_class = char == "[" if not in_class else char != "]"
        out.append(char)
        i += len(char)
    return "".join(out)


@functools.lru_cache(maxsize=None)
def _category_ranges(category: str) -> str:
    """A Unicode general category (`L`, `Zs`, ...) as character-class ranges."""
    if len(category) > 2 or category[0] not in "LMNPSZC":
        raise KeyError(category)  # e.g. Java's \\p{IsAlphabetic}: leave the pattern unchecked
    return "".join(f"\\U{start:08x}" + (f"-\\U{end:08x}" if end > start else "")
                   for start, end, cat in _category_runs() if cat.startswith(category))


@functools.lru_cache(maxsize=1)
def _category_runs() -> tuple[tuple[int, int, str], ...]:
    """Runs of code points with the same general category, from `unicodedata`, scanned once.

    Only planes 0-3 and 14 are scanned: planes 4-13 hold no assigned characters and 15-16 are
    private use (category Co), so the scan takes ~50 ms instead of ~200 ms.
    """
    runs: list[tuple[int, int, str]] = []
    for start, stop in ((0, 0x40000), (0xE0000, 0xE1000)):
        for cat, group in itertools.groupby(map(unicodedata.category, map(chr, range(start, stop)))):
            length = sum(1 for _ in group)
            runs.append((start, start + length - 1, cat))
            start += length
    return tuple(runs)
