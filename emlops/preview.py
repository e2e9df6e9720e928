"""`emlops preview`: validate a stack's config, run its program under truthful mocks, return the plan."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from emlops.engine import RunResult, run_program
from emlops.mocks import AwsIdentity, MockGap
from emlops.stackfile import Project, find_project, load_stack
from infra.config import ConfigError


class PreviewError(Exception):
    """A preview that cannot be made: one line for the user, and the exit code to end with."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def preview_stack(stack: str, project: Optional[Project] = None, start: Optional[Path] = None,
                  mlflow_uri: Optional[str] = None) -> RunResult:
    """Preview one stack of the project offline.

    The stack file is validated before the program starts, so a bad config registers nothing.
    Component argument errors found while the program runs are reported with the stack file too.
    MLflow references resolve against `mlflow_uri` when given; otherwise, like everything that
    needs AWS, they are written as explicit unknowns ("[unknown: models:/churn@champion]").
    """
    from components.model_source import OfflineResolver, use_resolver

    try:
        project = project or find_project(start)
        config = load_stack(project, stack)
    except ConfigError as exc:
        raise PreviewError(str(exc)) from None
    identity = AwsIdentity(config.platform.account_id, config.platform.region)
    try:
        return run_program(project.root, project.name, stack, config.values, config.secret_keys, identity,
                           context=lambda: use_resolver(OfflineResolver(mlflow_uri)))
    except ConfigError as exc:
        raise PreviewError(str(exc)) from None
    except MockGap as exc:
        raise PreviewError(f"emlops preview {stack}: {exc}", exit_code=1) from None
    except ValueError as exc:
        # Components check their arguments before creating anything and raise ValueError.
        raise PreviewError(f"{config.source}: {exc}") from None
