"""`emlops preview`: validate a stack's config, run its program under truthful mocks, return the plan."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from emlops.offline.build_start import cache_directory, manifest_name
from emlops.offline.engine import ORGANIZATION, RunResult, run_program
from emlops.offline.mocks import AwsIdentity, MockGap
from emlops.program.stackfile import Project, find_project, load_stack
from emlops.program.config import ConfigError
from emlops.program.mlflow_server import PROBE_TIMEOUT, client_limits, unreachable, without_credentials


if TYPE_CHECKING:
    from emlops.program.sources import Resolver
    from emlops.program.stackfile import StackConfig

# How long `--mlflow-uri` may take to answer before the preview gives up on it (seconds).
MLFLOW_TIMEOUT = PROBE_TIMEOUT


class PreviewError(Exception):
    """A preview that cannot be made: one line for the user, and the exit code to end with."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def preview_stack(stack: str, project: Optional[Project] = None, start: Optional[Path] = None,
                  mlflow_uri: Optional[str] = None, resolver: Optional["Resolver"] = None,
                  progress: Optional[Callable[[str, int], None]] = None, _seen: tuple[str, ...] = ()) -> RunResult:
    """Preview one stack of the project offline.

    The stack file is validated before the program starts, so a bad config registers nothing.
    Component argument errors found while the program runs are reported with the stack file too.
    MLflow references resolve against `mlflow_uri` when given (a server that does not answer within
    `MLFLOW_TIMEOUT` stops the preview at once); otherwise, like everything that
    needs AWS, they are written as explicit unknowns ("[unknown: models:/churn@champion]").
    A stack that uses a shared registry (`registry.shared_stack`) reads that stack's outputs through a
    stack reference: the shared stack is previewed first and its plan's outputs answer the reference,
    so bucket names and key ARNs in this plan are the ones the shared plan shows.
    `resolver` replaces the offline model-source resolver (tests use it to stand for AWS).
    Warnings of the stack's checks (a sibling stack file the account rule could not read) come first in the
    result's diagnostics. `progress(stack, resources registered so far)` is called as the program runs (the
    shared stack's preview included), for a terminal's progress display.
    """
    from emlops.components import build_worker, built_cache

    built_cache.use_directory(cache_directory())
    try:
        project = project or find_project(start)
        config = load_stack(project, stack)
    except ConfigError as exc:
        raise PreviewError(str(exc)) from None
    if _seen:  # the shared stack of another stack's preview
        return _run(project, stack, config, mlflow_uri, resolver, progress, _seen)
    if mlflow_uri is not None:
        check_mlflow_server(mlflow_uri)
    # In the `emlops` command's own process, a miss is built by the worker (build_start.py may have started
    # it already): in the stack's region.
    build_worker.expect(config.platform.region, start_now=False)
    since = built_cache.used()
    try:
        result = _run(project, stack, config, mlflow_uri, resolver, progress, _seen)
    finally:
        build_worker.stop()  # every build was awaited, or the preview failed: the worker is not waited for
    # what the next preview of this stack file reads (build_start.start_early)
    built_cache.remember(manifest_name(stack, project.stack_path(stack)), since)
    return result


def _run(project: Project, stack: str, config: "StackConfig", mlflow_uri: Optional[str],
         resolver: Optional["Resolver"], progress: Optional[Callable[[str, int], None]],
         seen: tuple[str, ...]) -> RunResult:
    from emlops.offline.resolver import OfflineResolver
    from emlops.program.sources import use_resolver

    identity = AwsIdentity(config.platform.account_id, config.platform.region)
    referenced = _referenced_outputs(project, stack, config.platform.registry.shared_stack, mlflow_uri, progress,
                                     seen)
    try:
        with client_limits(mlflow_uri):
            result = run_program(project.root, project.name, stack, config.values, config.secret_keys, identity,
                                 context=lambda: use_resolver(resolver or OfflineResolver(mlflow_uri)),
                                 stack_outputs=referenced,
                                 on_register=(lambda count: progress(stack, count)) if progress else None)
    except ConfigError as exc:
        raise PreviewError(str(exc)) from None
    except MockGap as exc:
        raise PreviewError(f"emlops preview {stack}: {exc}", exit_code=1) from None
    except ValueError as exc:
        # Components check their arguments before creating anything and raise ValueError.
        raise PreviewError(f"{config.source}: {exc}") from None
    result.diagnostics[:0] = config.warnings
    return result


def check_mlflow_server(uri: str, timeout: Optional[float] = None) -> None:
    """PreviewError (exit 2, one line) unless the MLflow server at an http(s) `uri` answers within `timeout`
    seconds (default `MLFLOW_TIMEOUT`; `emlops.program.mlflow_server.unreachable`); local stores pass as they are."""
    problem = unreachable(uri, MLFLOW_TIMEOUT if timeout is None else timeout)
    if problem is not None:
        raise PreviewError(f"--mlflow-uri {without_credentials(uri)}: cannot reach the MLflow server ({problem}); "
                           "start it, or preview without --mlflow-uri (models:/ sources then show as unknown)")


def _referenced_outputs(project: Project, stack: str, shared: Optional[str], mlflow_uri: Optional[str],
                        progress: Optional[Callable[[str, int], None]], seen: tuple[str, ...]) -> dict[str, dict]:
    """Outputs of the stacks `stack` references, by the name the program gives the reference."""
    if shared is None:
        return {}
    if shared in seen or shared == stack:
        chain = " -> ".join([*seen, stack, shared])
        raise PreviewError(f"{project.display_path(stack)}: emlops:platform.registry.shared_stack: stacks reference "
                           f"each other ({chain})")
    result = preview_stack(shared, project=project, mlflow_uri=mlflow_uri, progress=progress, _seen=(*seen, stack))
    return {f"{ORGANIZATION}/{project.name}/{shared}": result.plan.outputs}
