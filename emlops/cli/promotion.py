"""`emlops promote`: the challenger of a model's shadow test becomes the champion the next deploy serves (the
command: operations.py).

A shadow test names its challenger in the registry the model's own source uses (`ChallengerSourceConfig`), so
promoting changes the registry, never a resource; `pulumi up` then deploys the new champion:
- MLflow (`source.mlflow: models:/churn@champion`, `challenger.mlflow: models:/churn@challenger`): the source's
  alias moves to the version the challenger names, after the deploy's own resolver has checked that version can
  be served (its artifact in S3). The version is tagged with the promotion (`emlops.promoted_*`: from what, to
  which alias, in which stack, by whom, when, in place of which version), since MLflow keeps no history of
  aliases. The tracking server is `--mlflow-uri` or the stack's `registry.mlflow_tracking_uri`, reached with
  MLflow's own credentials (`MLFLOW_TRACKING_TOKEN`, `MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD`).
- SageMaker (`challenger.model_package_group`, the source's group): the newest package pending approval is
  approved the way `emlops approve` approves (in the registry's stack and account, its evaluation metrics shown,
  a report required unless `--no-report-reason` says why), so it becomes the group's newest Approved package,
  which is what the source deploys. A pending package older than the champion would not become that, and is
  refused.

A challenger that is already the champion is said and left alone (exit 0). `--dry-run` makes every look-up and
check, then says what it would change. Everything printed that comes from a registry goes through `clean`.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from datetime import timezone
from typing import Any, Callable, Optional

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from emlops.cli.approval import (PENDING, approval_description, check_reason, find_package, fmt_metric,
                                 newest_packages, package_label, review_package, set_approved, shown)
from emlops.cli.targets import (EXIT_INPUT, OperationError, Runtime, Target, _aws_error, _caller_arn, clean,
                                registry_target, resolve_model)

TAG_PREFIX = "emlops.promoted_"


def promote(stack: str, model: str, yes: bool, dry_run: bool, mlflow_uri: Optional[str],
            no_report_reason: Optional[str], console: Console, runtime: Runtime,
            confirm: Callable[[str], bool], warn: Callable[[str], None]) -> None:
    target, settings, platform = resolve_model(stack, model)
    if settings.shadow is None:
        raise OperationError(f"model {model!r} of stack {stack!r} has no shadow test (shadow.challenger), so no "
                             "challenger to promote", EXIT_INPUT)
    challenger = settings.shadow.challenger
    if challenger.mlflow is not None and no_report_reason is not None:
        raise OperationError(f"--no-report-reason is for a challenger in a model package group; {model}'s is "
                             f"{challenger.mlflow}", EXIT_INPUT)
    if challenger.model_package_group is not None and mlflow_uri is not None:
        raise OperationError(f"--mlflow-uri is for an MLflow challenger; {model}'s is the newest package pending "
                             f"approval in model package group {challenger.model_package_group!r}", EXIT_INPUT)
    reason = check_reason(no_report_reason)
    if not yes and not dry_run and not runtime.interactive():
        raise OperationError("no terminal to confirm the promotion on (stdin is not a TTY); review it in a terminal "
                             "or with --dry-run, or promote without asking with --yes", EXIT_INPUT)
    ask = (lambda prompt: True) if yes else confirm
    if challenger.mlflow is not None:
        # a stack file with an MLflow source and no registry.mlflow_tracking_uri is refused (rules.py)
        uri = str(mlflow_uri or platform.registry.mlflow_tracking_uri)
        promote_version(target, str(settings.source.mlflow), challenger.mlflow, uri, dry_run, console, runtime, ask,
                        warn)
    else:
        registry = registry_target(stack, platform, challenger.model_package_group)
        promote_package(target, registry, reason, dry_run, console, ask, warn)


# ---------------------------------------------------------------- MLflow: move the source's alias


@dataclass
class AliasMove:
    """What promoting an MLflow challenger changes: `source`'s alias, from version `old` (None: the alias names no
    version yet) to version `new`, the challenger's."""

    name: str
    alias: str
    old: Optional[Any]
    new: Any
    artifact: Optional[str]
    """Where the deploy finds the new version (None when there is nothing to promote)."""

    @property
    def versions(self) -> tuple[Optional[str], str]:
        return (None if self.old is None else str(self.old.version)), str(self.new.version)


def look_up_move(registry: Any, model: str, source: str, challenger: str) -> AliasMove:
    """The champion and the challenger as MLflow names them now, with the challenger's artifact as the deploy's own
    resolver finds it (a version it could not serve is no champion). ModelSourceError, MlflowException."""
    from emlops.program.sources import ModelSource, parse_mlflow

    parsed = parse_mlflow(model, source)
    name, alias = parsed["name"], parsed["alias"]
    new = registry.version(model, challenger)
    named = registry.client.get_registered_model(name).aliases.get(alias)
    old = None if named is None else registry.client.get_model_version(name, str(named))
    move = AliasMove(name, alias, old, new, None)
    if move.versions[0] != move.versions[1]:
        move.artifact = registry.resolve(model, ModelSource(mlflow=f"models:/{name}/{new.version}")).artifact_uri
    return move


def promote_version(target: Target, source: str, challenger: str, uri: str, dry_run: bool, console: Console,
                    runtime: Runtime, confirm: Callable[[str], bool], warn: Callable[[str], None]) -> None:
    from mlflow.exceptions import MlflowException

    from emlops.program.mlflow_server import client_limits, global_tracking_uri, unreachable, without_credentials
    from emlops.program.sources import MlflowRegistry, ModelSourceError

    shown_uri = clean(without_credentials(uri))
    problem = unreachable(uri)
    if problem is not None:
        raise OperationError(f"cannot reach the MLflow server at {shown_uri} ({problem})")
    registry = MlflowRegistry(uri)
    with client_limits(uri), global_tracking_uri(uri):
        try:
            move = look_up_move(registry, target.model, source, challenger)
            old, new = move.versions
            metrics = {side: _run_metrics(registry.client, version, warn)
                       for side, version in (("champion", move.old), ("challenger", move.new))} if move.artifact else {}
        except ModelSourceError as exc:
            raise OperationError(clean(exc)) from None
        except MlflowException as exc:
            raise _failed(target.model, challenger, f"MLflow at {shown_uri} failed: {exc}") from None
        was = "none" if old is None else f"version {old}"
        console.print(f"Shadow test of {target.model} in stack {target.stack}: registered model "
                      f"{escape(repr(move.name))}, MLflow at {escape(shown_uri)}")
        console.print(f"Champion:   {escape(source)}, {escape(was)}")
        if move.artifact is None:
            console.print(f"Challenger: {escape(challenger)}, version {escape(new)}")
            console.print(f"{escape(challenger)} is version {escape(new)}, which {escape(source)} already names: "
                          "nothing to promote")
            return
        console.print(f"Challenger: {escape(challenger)}, version {escape(new)} ({shown(move.artifact)})")
        _print_metrics(metrics, old, new, console)
        change = f"move {source} from version {old} to version {new}" if old else f"set {source} to version {new}"
        if dry_run:
            console.print(f"Dry run: would {escape(change)} and tag version {escape(new)} as promoted; nothing changed")
            return
        if not confirm(f"{change[0].upper()}{change[1:]} (the champion of stack {target.stack})?"):
            raise OperationError(f"not promoted; {source} stays at {was}")
        by, at = _mlflow_user(), runtime.now().astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        tags = {"from": challenger, "to": source, "in_stack": target.stack, "by": by, "at": at,
                "in_place_of": old or "none"}
        try:
            registry.client.set_registered_model_alias(move.name, move.alias, new)
        except MlflowException as exc:
            raise _failed(target.model, source, f"MLflow at {shown_uri} failed to move the alias: {exc}") from None
        try:
            for key, value in tags.items():
                registry.client.set_model_version_tag(move.name, new, f"{TAG_PREFIX}{key}", value)
        except MlflowException as exc:
            raise _failed(target.model, source, f"is version {new} now, but MLflow at {shown_uri} failed to tag the "
                          f"version with the promotion: {exc}") from None
    console.print(f"Promoted {escape(challenger)}: {escape(source)} {escape(was)} → version {escape(new)}, "
                  f"by {shown(by)}")
    renew = (f"move the {challenger.split('@', 1)[1]} alias to a new version" if "@" in challenger
             else "name a new challenger in shadow.challenger")
    console.print(f"Next: `pulumi up -s {target.stack}` deploys version {escape(new)}; {escape(challenger)} names it "
                  f"too, so the shadow variant would serve the champion: {escape(renew)} (or drop shadow) before the "
                  "next deploy")


def _failed(model: str, ref: str, problem: str) -> OperationError:
    """An MLflow failure as the deploy's resolver words one: one line, shortened, no credentials of a URL in it."""
    from emlops.program.sources import ModelSourceError

    return OperationError(clean(ModelSourceError(model, ref, problem)))


def _mlflow_user() -> str:
    """Who promotes: the MLflow user the server knows (`MLFLOW_TRACKING_USERNAME`), else the local user."""
    try:
        return os.environ.get("MLFLOW_TRACKING_USERNAME") or getpass.getuser()
    except (OSError, KeyError):  # no user name in the environment or the password database
        return "unknown"


def _run_metrics(client: Any, version: Any, warn: Callable[[str], None]) -> dict[str, float]:
    """The metrics of the run a model version was registered from: {} without a run, or (with a warning) when
    the run cannot be read."""
    from mlflow.exceptions import MlflowException

    if version is None or not version.run_id:
        return {}
    try:
        return dict(client.get_run(version.run_id).data.metrics)
    except MlflowException as exc:
        warn(clean(f"warning: the run of version {version.version} ({version.run_id}) cannot be read: {exc}"))
        return {}


def _print_metrics(metrics: dict[str, dict[str, float]], old: Optional[str], new: str, console: Console) -> None:
    """The metrics of both versions' runs side by side (nothing when neither has any)."""
    names = sorted(set(metrics["champion"]) | set(metrics["challenger"]))
    if not names:
        return
    table = Table(title="Run metrics", title_justify="left", show_edge=False)
    table.add_column("metric")
    table.add_column(f"champion (version {old})" if old else "champion", justify="right")
    table.add_column(f"challenger (version {new})", justify="right")
    for metric in names:
        table.add_row(shown(metric), *(shown(fmt_metric(metrics[side][metric])) if metric in metrics[side] else ""
                                       for side in ("champion", "challenger")))
    console.print(table)


# ---------------------------------------------------------------- SageMaker: approve the newest pending package


def promote_package(target: Target, registry: Target, reason: Optional[str], dry_run: bool, console: Console,
                    confirm: Callable[[str], bool], warn: Callable[[str], None]) -> None:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    group = registry.model
    try:
        session = boto3.session.Session()
        caller = _caller_arn(session, registry)
        sagemaker = session.client("sagemaker", region_name=registry.region)
        package = find_package(sagemaker, registry, None)
        label = package_label(package)
        champion = next(iter(newest_packages(sagemaker, group, "Approved", 1)), None)
        was = "none" if champion is None else package_label(champion)
        if champion is not None and champion["CreationTime"] > package["CreationTime"]:
            raise OperationError(f"{label}, the newest package pending approval, is older than the champion {was}; "
                                 f"stack {target.stack} deploys the newest Approved package, so approving {label} "
                                 "would not make it the champion")
        pending = [p for p in newest_packages(sagemaker, group, PENDING, 2) if p["ModelPackageArn"] != package[
            "ModelPackageArn"]]
        where = "" if registry.stack == target.stack else f" of stack {registry.stack}"
        console.print(f"Shadow test of {target.model} in stack {target.stack}: model package group {escape(group)}"
                      f"{where}, champion {escape(was)}")
        review_package(package, session.client("s3", region_name=registry.region), reason, console, warn)
        description = approval_description(f"promoted from the shadow test of stack {target.stack} with emlops by "
                                           f"{caller}", reason)
        if dry_run:
            console.print(f"Dry run: would approve {escape(label)} in stack {registry.stack}, the champion in place of "
                          f"{escape(was)}; nothing changed")
            return
        if not confirm(f"Promote {label} to champion (approve it in stack {registry.stack})?"):
            raise OperationError(f"not promoted; {label} stays {PENDING}")
        set_approved(sagemaker, package, description)
    except (ClientError, BotoCoreError) as exc:
        raise _aws_error(exc) from None
    console.print(f"Approved {escape(label)} as {escape(caller)}")
    console.print(f"Promoted {escape(label)}: champion {escape(was)} → {escape(label)}")
    deploy = f"Next: `pulumi up -s {target.stack}` deploys {escape(label)}"
    if pending:
        console.print(f"{deploy}; the shadow variant serves {escape(package_label(pending[0]))}, the newest package "
                      "still pending approval")
    else:
        console.print(f"{deploy}; no package of {escape(group)} is pending approval now, so the shadow test needs a "
                      "new challenger (a newly registered version) before the next deploy, or no shadow")
