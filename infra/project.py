"""The emlops project a program or a command runs in: where `Pulumi.yaml` is and its stack files.

Both the Pulumi program (which reads the shared registry's stack file, `infra/shared_registry.py`) and
the `emlops` commands (`infra/stackfile.py`) find and read stack files this way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emlops.program.config import ConfigError
from emlops.program.yaml_files import dotted, read_yaml


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

    def read_stack(self, stack: str) -> Any:
        """The document of `stacks/Pulumi.<stack>.yaml`, read strictly (`yaml_files`); ConfigError in one line
        naming the file (and the key: `emlops:platform.tags.owner`, as the config errors write it)."""
        return read_yaml(self.stack_path(stack), self.display_path(stack), stack_key_path, kind="stack file")

    def stacks(self) -> list[str]:
        return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in self.stack_config_dir.glob("Pulumi.*.yaml"))


def stack_key_path(parts: list) -> str:
    """A key path of a stack file as errors write it: the keys under `config` (`emlops:platform.tags.owner`)."""
    return dotted(parts[1:] if len(parts) > 1 and parts[0] == "config" else parts)


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
            data = read_yaml(manifest, str(manifest), kind="Pulumi project file")
            if isinstance(data, dict) and data.get("name") == "emlops":
                config_dir = directory / data.get("stackConfigDir", ".")
                return Project(root=directory, name=data["name"], stack_config_dir=config_dir)
    raise ConfigError("no emlops project found: run emlops from a checkout (the folder with Pulumi.yaml)")
