"""The emlops project a program or a command runs in: where `Pulumi.yaml` is and its stack files.

Both the Pulumi program (which reads the shared registry's stack file, `infra/shared_registry.py`) and
the `emlops` commands (`emlops/stackfile.py`) find stacks this way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from emlops.program.config import ConfigError


@dataclass
class Project:
    """A checkout of the emlops project: where `Pulumi.yaml` is."""

    root: Path
    name: str
    stack_config_dir: Path

    def stack_path(self, stack: str) -> Path:
        return self.stack_config_dir / f"Pulumi.{stack}.yaml"

    def display_path(self, stack: str) -> str:
        try:
            return str(self.stack_path(stack).relative_to(self.root))
        except ValueError:
            return str(self.stack_path(stack))

    def stacks(self) -> list[str]:
        return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in self.stack_config_dir.glob("Pulumi.*.yaml"))


def find_project(start: Path | None = None) -> Project:
    """The emlops project containing `start` (default: the working directory, else this package's)."""
    candidates = []
    here = (start or Path.cwd()).resolve()
    candidates += [here, *here.parents]
    package_root = Path(__file__).resolve().parent.parent
    candidates += [package_root]
    for directory in candidates:
        manifest = directory / "Pulumi.yaml"
        if manifest.is_file():
            data = yaml.safe_load(manifest.read_text()) or {}
            if data.get("name") == "emlops":
                config_dir = directory / data.get("stackConfigDir", ".")
                return Project(root=directory, name=data["name"], stack_config_dir=config_dir)
    raise ConfigError("no emlops project found: run emlops from a checkout (the folder with Pulumi.yaml)")
