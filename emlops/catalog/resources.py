"""The resource catalogue: one `ResourceType` entry per AWS, Kubernetes and Pulumi resource type emlops knows.

The offline mocks (ARNs, physical ids, auto-names, computed outputs), `emlops diff` (names,
replace-on-change, stateful), `emlops graph` (labels), the guardrails (stateful, taggable) and the
request validation (AWS create requests) all read it. Entries live in one module per service
(`resources_<service>.py`); every `ResourceType` defined at the top level of those modules is an entry.

    resource_type(token)   the entry; UnknownResourceType (naming where to add it) when there is none
    lookup(token)          the entry or None
    assumed(token)         the entry, or what emlops assumes of a type it has no entry for (`emlops diff`
                           reads plans written by other versions): its `name` replaces it (a Kubernetes
                           object's metadata.name and namespace), nothing else is known
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Optional

from emlops.catalog import (resources_eks, resources_iam, resources_kubernetes, resources_network,
                            resources_operations, resources_other, resources_pulumi, resources_sagemaker,
                            resources_storage)
from emlops.catalog.resource_type import KUBERNETES_REPLACES, Naming, ResourceType

_MODULES: tuple[ModuleType, ...] = (
    resources_sagemaker, resources_storage, resources_iam, resources_network, resources_eks,
    resources_operations, resources_kubernetes, resources_pulumi, resources_other,
)
_PACKAGE_DIR = Path(__file__).resolve().parent


class UnknownResourceType(KeyError):
    """A resource type with no catalogue entry."""

    def __init__(self, token: str):
        self.token = token
        self.hint = ("add a ResourceType for it (ARN format, physical id, naming, replace-on-change inputs, stateful, "
                     "taggable, graph label) to its service's module in emlops/catalog/ (resources_<service>.py)")
        super().__init__(f"{token} has no entry in the resource catalogue; {self.hint}")

    def __str__(self) -> str:  # KeyError's default repr-quotes the message
        return str(self.args[0])


def _index() -> tuple[dict[str, ResourceType], dict[str, str]]:
    entries: dict[str, ResourceType] = {}
    sources: dict[str, str] = {}
    for module in _MODULES:
        source = f"emlops/catalog/{Path(module.__file__).relative_to(_PACKAGE_DIR).as_posix()}"
        for entry in vars(module).values():
            if not isinstance(entry, ResourceType) or entries.get(entry.token) is entry:
                continue
            if entry.token in entries:
                raise RuntimeError(f"{entry.token} has two catalogue entries ({sources[entry.token]}, {source})")
            entries[entry.token], sources[entry.token] = entry, source
    return entries, sources


_ENTRIES, _SOURCES = _index()
CATALOGUE: Mapping[str, ResourceType] = MappingProxyType(_ENTRIES)

# Views other modules read often.
STATEFUL_TYPES: frozenset[str] = frozenset(t for t, e in CATALOGUE.items() if e.stateful)
TAGGABLE_TYPES: frozenset[str] = frozenset(t for t, e in CATALOGUE.items() if e.taggable)
GRAPH_LABELS: Mapping[str, str] = MappingProxyType({t: e.label for t, e in CATALOGUE.items() if e.label})


def lookup(token: str) -> Optional[ResourceType]:
    """The catalogue entry of TOKEN, or None."""
    return CATALOGUE.get(token)


def resource_type(token: str) -> ResourceType:
    """The catalogue entry of TOKEN; UnknownResourceType, naming where to add one, when there is none."""
    entry = CATALOGUE.get(token)
    if entry is None:
        raise UnknownResourceType(token)
    return entry


_KUBERNETES_ASSUMED = Naming("metadata.name")


def assumed(token: str) -> ResourceType:
    """The entry of TOKEN, or what is assumed of a type with none (its name replaces it; nothing else)."""
    entry = CATALOGUE.get(token)
    if entry is not None:
        return entry
    if token.startswith("kubernetes:"):
        return ResourceType(token, naming=_KUBERNETES_ASSUMED, replace_on_change=KUBERNETES_REPLACES)
    return ResourceType(token)


def source_of(token: str) -> str:
    """The module that holds TOKEN's entry (`emlops/catalog/resources_sagemaker.py`)."""
    resource_type(token)
    return _SOURCES[token]
