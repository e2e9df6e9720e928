"""Reading the project's YAML files (`Pulumi.yaml`, `stacks/Pulumi.<stack>.yaml`) strictly, in one-line errors.

PyYAML's `safe_load` is lenient where a stack file must not be, so every YAML file of the project is read here:

- a key repeated in one mapping is an error at any depth (PyYAML keeps the last one silently, so a second
  `production: false` under `production: true` would win unnoticed; the Pulumi CLI refuses it too);
- aliases may reuse a block but not multiply it: all aliases of a file together may add at most
  `ALIAS_BUDGET_VALUES` values and `ALIAS_BUDGET_CHARS` characters to what the file spells out, counted
  while the file is read (before anything is built from it), and an alias to the block that holds it is refused;
  a 3 KB "billion laughs" file then fails in milliseconds instead of expanding to gigabytes;
- scalars resolve as YAML 1.2 (the Pulumi CLI's YAML): only `true`/`false` are booleans (`yes`, `on` stay
  strings), no sexagesimal numbers and no timestamps (a date stays the string it reads as);
- keys are strings, and only JSON's kinds of values are allowed (no `!!binary`, `!!set`, ... tags), because
  the config is handed to the program as JSON;
- a file that is not UTF-8, cannot be read, is a directory, is not a regular file or is larger than
  `MAX_FILE_BYTES` is one line naming it.

Every error is a `ConfigError` of one line: `<file>: [line N: ]<key path>: <what is wrong>`.

libyaml's parser (PyYAML's C extension) reads a file when PyYAML has it, ~6 times faster than PyYAML's own; where the
two could read a file differently, PyYAML's own reads it, so every file reads (or fails) exactly as with PyYAML.
"""

from __future__ import annotations

import copy
import os
import re
import stat
from pathlib import Path
from typing import Any, Callable, Optional

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from emlops.program.config import ConfigError
from emlops.program.config_errors import printable

MAX_FILE_BYTES = 4 * 1024 * 1024
ALIAS_BUDGET_VALUES = 10_000
ALIAS_BUDGET_CHARS = 1024 * 1024

# Documents already read in this process, by their text: a preview reads every stack file of the project (the
# account rule compares them) and a stack that uses a shared registry previews that stack too. Only documents
# that passed every check are kept, and each caller gets its own copy.
_DOCUMENTS: dict[str, Any] = {}
_DOCUMENTS_KEPT = 64

_TAG = "tag:yaml.org,2002:"
_JSON_TAGS = {f"{_TAG}{kind}" for kind in ("str", "int", "float", "bool", "null", "seq", "map")}
_MERGE = f"{_TAG}merge"

# YAML 1.2's core schema for the scalars PyYAML would read as YAML 1.1.
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$")
_FLOAT = re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)"
                    r"|\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")


class _Yaml12Resolver(yaml.resolver.Resolver):
    """PyYAML's resolvers with YAML 1.2's booleans, integers and floats, and no timestamps."""

    yaml_implicit_resolvers: dict = {}


for _first, _resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items():
    for _tag, _regexp in _resolvers:
        if _tag in (f"{_TAG}bool", f"{_TAG}int", f"{_TAG}float", f"{_TAG}timestamp"):
            continue
        _Yaml12Resolver.yaml_implicit_resolvers.setdefault(_first, []).append((_tag, _regexp))
_Yaml12Resolver.add_implicit_resolver(f"{_TAG}bool", _BOOL, list("tTfF"))
_Yaml12Resolver.add_implicit_resolver(f"{_TAG}int", _INT, list("-+0123456789"))
_Yaml12Resolver.add_implicit_resolver(f"{_TAG}float", _FLOAT, list("-+0123456789."))


class _StrictComposer(yaml.composer.Composer):
    """PyYAML's composer with an alias budget counted while the file is composed, from the events of either
    parser below."""

    def __init__(self) -> None:
        super().__init__()
        self.expanded_values = 0  # values the file holds once every alias is expanded
        self.expanded_chars = 0
        self.alias_values = 0  # ... of which aliases added
        self.alias_chars = 0
        self.sizes: dict[int, tuple[int, int]] = {}  # anchored node -> (values, characters) it expands to

    def compose_node(self, parent: Optional[Node], index: Any) -> Node:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = self.anchors.get(event.anchor)
            if node is not None:
                size = self.sizes.get(id(node))
                if size is None:
                    raise _Refused(event.start_mark, f"alias *{event.anchor} refers to the block that contains it; "
                                   "a stack file cannot hold a recursive structure")
                self.alias_values += size[0]
                self.alias_chars += size[1]
                self.expanded_values += size[0]
                self.expanded_chars += size[1]
                budget = (f"{ALIAS_BUDGET_VALUES} values" if self.alias_values > ALIAS_BUDGET_VALUES else
                          f"{ALIAS_BUDGET_CHARS // (1024 * 1024)} MiB of text" if self.alias_chars > ALIAS_BUDGET_CHARS
                          else None)
                if budget is not None:
                    raise _Refused(event.start_mark, f"alias *{event.anchor} makes the file's aliases repeat more "
                                   f"than {budget}; aliases may reuse a block, not multiply it")
            return super().compose_node(parent, index)
        event = self.peek_event()
        before = (self.expanded_values, self.expanded_chars)
        self.expanded_values += 1
        if isinstance(event, yaml.ScalarEvent):
            self.expanded_chars += len(event.value)
        node = super().compose_node(parent, index)
        if event.anchor is not None:
            self.sizes[id(node)] = (self.expanded_values - before[0], self.expanded_chars - before[1])
        return node


class _StrictLoader(_StrictComposer, yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser,
                    yaml.constructor.SafeConstructor, _Yaml12Resolver):
    """The strict reader in pure Python (PyYAML's scanner and parser): its syntax errors say most precisely what is
    wrong ("found character '\\t' that cannot start any token")."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _StrictComposer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        _Yaml12Resolver.__init__(self)


_FastStrictLoader: Optional[type] = None
if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _FastStrictLoader(_StrictComposer, CParser, yaml.constructor.SafeConstructor,  # type: ignore[no-redef]
                            _Yaml12Resolver):
        """The same reader with libyaml's scanner and parser (~6 times faster; prod's stack file in 2 ms instead of
        13): the composition, alias budget and resolution are the Python ones above, fed libyaml's events."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _StrictComposer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            _Yaml12Resolver.__init__(self)
            self.flow_depth = 0

        def compose_node(self, parent: Optional[Node], index: Any) -> Node:
            event = self.peek_event()
            if (self.flow_depth and isinstance(event, yaml.ScalarEvent) and not event.style  # plain: libyaml says ""
                    and "?" in event.value):
                raise _PyYamlDecides()  # PyYAML ends a plain value at a '?' inside [...] or {...}; libyaml does not
            flow = int(isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)) and bool(event.flow_style))
            self.flow_depth += flow
            try:
                return super().compose_node(parent, index)
            finally:
                self.flow_depth -= flow


# a tab, a byte-order mark, a comment right after a block scalar's header (`|#`, `>+2#`)
_PYYAML_DECIDES = re.compile(r"[\t\ufeff]|[|>][-+0-9]*#")


class _PyYamlDecides(Exception):
    """libyaml read something PyYAML may read differently: PyYAML's parser reads the file."""


class _Refused(Exception):
    """Something the strict reader refuses, at a position of the file."""

    def __init__(self, mark: Any, message: str, path: str = "") -> None:
        super().__init__(message)
        self.line = mark.line + 1 if mark is not None else None
        self.path = path


KeyPath = Callable[[list], str]


def dotted(parts: list) -> str:
    """`a.b[0].c`: how a key path is written, each key printable on one line."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            key = printable(part, quote=True)
            text += f".{key}" if text else key
    return text


def read_yaml(path: Path, source: str, key_path: KeyPath = dotted, kind: str = "file") -> Any:
    """The document in the YAML file at `path` (None when empty); ConfigError in one line naming `source`.

    `key_path` writes a key path (a list of keys and indexes) as errors show it; `kind` names what the file
    is in messages about the file itself ("stack file").
    """
    text = read_text(path, source, kind)
    if text in _DOCUMENTS:
        return copy.deepcopy(_DOCUMENTS[text])
    try:
        document = _document(text, key_path)
    except _Refused as exc:
        where = f"line {exc.line}: " if exc.line is not None else ""
        at = f"{exc.path}: " if exc.path else ""
        raise ConfigError(f"{source}: {where}{at}{exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}: not valid YAML: {where}{problem}") from None
    if document is None:
        return None
    if len(_DOCUMENTS) >= _DOCUMENTS_KEPT:
        _DOCUMENTS.clear()
    _DOCUMENTS[text] = document
    return copy.deepcopy(document)


def _document(text: str, key_path: KeyPath) -> Any:
    """The checked document of `text`, read by libyaml's parser when PyYAML has it (~6 times faster), else by
    PyYAML's own. A file libyaml's reading refuses, or one the two may read differently (a tab, a byte-order mark, a
    comment right after a block scalar's header, a '?' inside a plain value in [...] or {...}: libyaml accepts
    them), is read by PyYAML's parser, whose document or error is the one kept. So every file reads as it did with
    PyYAML alone, and errors keep PyYAML's more precise words ("found character '\\t' that cannot start any
    token")."""
    if _FastStrictLoader is not None and not _PYYAML_DECIDES.search(text):
        try:
            return _read_with(_FastStrictLoader, text, key_path)
        except (yaml.YAMLError, _Refused, _PyYamlDecides):
            pass  # a file refused is read again by PyYAML's parser: its reason is the one reported
    return _read_with(_StrictLoader, text, key_path)


def _read_with(loader_class: type, text: str, key_path: KeyPath) -> Any:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_node(node, [], set(), key_path)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_text(path: Path, source: str, kind: str = "file") -> str:
    """The UTF-8 text of the regular file at `path`; ConfigError in one line naming `source` if it is not one."""
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError(f"{source}: is a directory, not a {kind}")
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{source}: is not a regular file; a {kind} is a YAML file")
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{source}: cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{source}: is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; a {kind} is a few KB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{source}: not valid UTF-8: byte 0x{data[exc.start]:02x} on line {line}; save the file "
                          "as UTF-8") from None


def _check_node(node: Node, parts: list, seen: set[int], key_path: KeyPath) -> None:
    """Keys are strings and appear once per mapping; values are JSON's kinds. Each node is checked once, at the
    first place it appears (aliases share their anchor's node)."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if node.tag not in _JSON_TAGS:
        tag = "!!" + node.tag[len(_TAG):] if node.tag.startswith(_TAG) else node.tag
        raise _Refused(node.start_mark, f"YAML tag {printable(tag, quote=True)} is not supported; write a "
                       "plain value (a stack file holds strings, numbers, booleans, lists and mappings)",
                       key_path(parts))
    if isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _check_node(item, [*parts, index], seen, key_path)
    elif isinstance(node, MappingNode):
        lines: dict[str, int] = {}
        for key, value in node.value:
            if key.tag == _MERGE:
                _check_merge(value, parts, seen, key_path)
                continue
            if not isinstance(key, ScalarNode) or key.tag != f"{_TAG}str":
                shown = key.value if isinstance(key, ScalarNode) else "a list or mapping"
                raise _Refused(key.start_mark, f"key {printable(str(shown), quote=True)} is not a string; "
                               "quote it", key_path(parts))
            line = key.start_mark.line + 1
            if key.value in lines:
                raise _Refused(None, f"appears twice (lines {lines[key.value]} and {line}); keep one (YAML would "
                               "silently use the last)", key_path([*parts, key.value]))
            lines[key.value] = line
            _check_node(value, [*parts, key.value], seen, key_path)


def _check_merge(value: Node, parts: list, seen: set[int], key_path: KeyPath) -> None:
    """`<<: *defaults` (or a list of them) merges mappings into this one."""
    for item in value.value if isinstance(value, SequenceNode) else [value]:
        if not isinstance(item, MappingNode):
            raise _Refused(item.start_mark, "a merge key (<<) takes a mapping or a list of mappings",
                           key_path(parts))
        _check_node(item, parts, seen, key_path)
