"""plan.json: the contract every emlops tool reads (schema `emlops.plan/v1`).

The shape is fixed by ../shared/DESIGN.md; `write` produces byte-identical files for the same
commit and stack (keys of inputs and outputs sorted, two-space indent, trailing newline).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

SCHEMA = "emlops.plan/v1"


@dataclass
class PlanResource:
    """One registered resource (component resources included, `custom: false`)."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: Optional[str]
    dependencies: list[str]
    provider: Optional[str]
    inputs: dict[str, Any]
    protect: bool = False
    retain_on_delete: bool = False
    aliases: list[str] = field(default_factory=list)
    """URNs the resource had before a rename (its `aliases`, and those inherited from its parents'), as
    Pulumi's engine derives them; written only when there are some, as Pulumi's own state does."""

    def to_json(self) -> dict[str, Any]:
        data = {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "custom": self.custom,
            "parent": self.parent,
            "dependencies": self.dependencies,
            "provider": self.provider,
            "inputs": self.inputs,
            "protect": self.protect,
            "retainOnDelete": self.retain_on_delete,
        }
        return {**data, "aliases": self.aliases} if self.aliases else data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "PlanResource":
        return cls(
            urn=data["urn"], type=data["type"], name=data["name"], custom=data["custom"],
            parent=data["parent"], dependencies=list(data["dependencies"]), provider=data["provider"],
            inputs=data["inputs"], protect=data["protect"], retain_on_delete=data["retainOnDelete"],
            aliases=list(data.get("aliases", [])),
        )


@dataclass
class Plan:
    """What a stack would create: resources in registration order and the stack's outputs."""

    project: str
    stack: str
    resources: list[PlanResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "project": self.project,
            "stack": self.stack,
            "resources": [r.to_json() for r in self.resources],
            "outputs": self.outputs,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"

    def write(self, path: Path) -> None:
        Path(path).write_text(self.dumps(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "Plan":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("schema") != SCHEMA:
            raise ValueError(f"{path}: not an {SCHEMA} plan (schema is {data.get('schema')!r})")
        return cls(project=data["project"], stack=data["stack"],
                   resources=[PlanResource.from_json(r) for r in data["resources"]],
                   outputs=data["outputs"])

    # -- queries used by the CLI, the tests and later tools ----------------------------------------

    def by_type(self, type_: str) -> list[PlanResource]:
        return [r for r in self.resources if r.type == type_]

    def get(self, name: str, type_: Optional[str] = None) -> PlanResource:
        matches = [r for r in self.resources if r.name == name and (type_ is None or r.type == type_)]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}" + (f" of type {type_}" if type_ else ""))
        return matches[0]

    def children(self, urn: Optional[str]) -> list[PlanResource]:
        return [r for r in self.resources if r.parent == urn]

    def type_counts(self) -> Counter:
        return Counter(r.type for r in self.resources)
