"""Operator commands on a deployed stack: `emlops retrain` and `emlops approve` (what they act on: targets.py).

They call AWS with boto3 and the credentials of the environment (no role is assumed here), in the
stack's region, and refuse to act when those credentials are for another account than the stack's.
Names follow the platform: a model's retraining pipeline is `<environment>-<model>-retraining`,
its model package group is `<model>`. Approving is the registry account's decision: for an environment
that uses the shared registry (`registry.shared_stack`), `emlops approve` acts on the shared stack, with
credentials for its account.

An approval shows the package's evaluation report (`ModelMetrics.ModelQuality.Statistics`, a JSON
file in S3) first. A missing or unreadable report is reported as a warning; approving anyway needs an
interactive confirmation: `--yes` does not approve a model whose metrics nobody has seen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from emlops.cli.targets import (
    EXIT_FAILURE,
    EXIT_INPUT,
    OperationError,
    Runtime,
    Target,
    _aws_error,
    _caller_arn,
    _not_found,
    resolve_target,
)
from emlops.components.retraining_args import pipeline_name

TERMINAL_STATUSES = ("Succeeded", "Failed", "Stopped")
PENDING = "PendingManualApproval"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


@dataclass
class ExecutionState:
    status: str
    failure_reason: str
    steps: list[dict[str, Any]]


def read_execution(sagemaker: Any, execution_arn: str) -> ExecutionState:
    """One poll: the execution's status and its steps (oldest first)."""
    described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
    return ExecutionState(described["PipelineExecutionStatus"], described.get("FailureReason") or "",
                          list_steps(sagemaker, execution_arn))


def list_steps(sagemaker: Any, execution_arn: str) -> list[dict[str, Any]]:
    """The execution's steps, oldest first."""
    steps: list[dict[str, Any]] = []
    for page in sagemaker.get_paginator("list_pipeline_execution_steps").paginate(
            PipelineExecutionArn=execution_arn, SortOrder="Ascending"):
        steps += page.get("PipelineExecutionSteps", [])
    return steps


def _failure_reason(state: ExecutionState) -> str:
    if state.failure_reason:
        return state.failure_reason
    for step in state.steps:
        if step.get("StepStatus") in ("Failed", "Stopped") and step.get("FailureReason"):
            return f"step {step['StepName']}: {step['FailureReason']}"
    return "no failure reason given"


def follow_execution(sagemaker: Any, execution_arn: str, label: str, console: Console, runtime: Runtime,
                     poll_seconds: float, timeout_seconds: float) -> ExecutionState:
    """Poll until a terminal status, printing each step's status change; OperationError on timeout."""
    started = runtime.clock()
    seen: dict[str, str] = {}
    with console.status(f"{escape(label)}: starting") as spinner:
        while True:
            state = read_execution(sagemaker, execution_arn)
            for step in state.steps:
                name, status = step["StepName"], step.get("StepStatus", "Unknown")
                if seen.get(name) != status:
                    seen[name] = status
                    reason = f" ({step['FailureReason']})" if status == "Failed" and step.get("FailureReason") else ""
                    console.print(f"  step {escape(name)}: {status}{escape(reason)}")
            elapsed = runtime.clock() - started
            if state.status in TERMINAL_STATUSES:
                return state
            if elapsed >= timeout_seconds:
                raise OperationError(f"{label} is still {state.status} after {_duration(elapsed)}; it keeps "
                                     f"running in SageMaker: {execution_arn}")
            done = sum(1 for s in state.steps if s.get("StepStatus") == "Succeeded")
            spinner.update(f"{escape(label)}: {state.status}, {done}/{len(state.steps)} steps done, "
                           f"{_duration(elapsed)}")
            runtime.sleep(poll_seconds)


def retrain(target: Target, wait: bool, poll_seconds: float, timeout_minutes: float, console: Console,
            runtime: Runtime) -> None:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    name = pipeline_name(target.environment, target.model)
    display = runtime.now().strftime("emlops-%Y%m%d-%H%M%S")
    try:
        session = boto3.session.Session()
        _caller_arn(session, target)
        sagemaker = session.client("sagemaker", region_name=target.region)
        try:
            arn = sagemaker.start_pipeline_execution(PipelineName=name, PipelineExecutionDisplayName=display,
                                                     PipelineExecutionDescription="started with emlops retrain")[
                "PipelineExecutionArn"]
        except ClientError as exc:
            if _not_found(exc):
                raise OperationError(f"pipeline {name!r} does not exist in {target.where} yet; "
                                     "deploy the stack first") from None
            raise
        console.print(f"Started {name} execution {display}")
        console.print(f"  {arn}")
        if not wait:
            return
        try:
            state = follow_execution(sagemaker, arn, f"{name} execution {display}", console, runtime, poll_seconds,
                                     timeout_minutes * 60)
        except KeyboardInterrupt:
            raise OperationError(f"stopped following {name} execution {display}; it keeps running in "
                                 f"SageMaker: {arn}") from None
    except (ClientError, BotoCoreError) as exc:
        raise _aws_error(exc) from None
    if state.status != "Succeeded":
        raise OperationError(f"{name} execution {display} {state.status}: {_failure_reason(state)}")
    console.print(f"{name} execution {display} Succeeded")


def package_arn(target: Target, version: int) -> str:
    # SageMaker writes model package ARNs in lowercase.
    return (f"arn:{target.partition}:sagemaker:{target.region}:{target.account_id}:"
            f"model-package/{target.model.lower()}/{version}")


def find_package(sagemaker: Any, target: Target, version: Optional[int]) -> dict[str, Any]:
    """The package to approve: version N of the group, else the newest one pending approval."""
    from botocore.exceptions import ClientError

    group = target.model
    try:
        sagemaker.describe_model_package_group(ModelPackageGroupName=group)
    except ClientError as exc:
        if _not_found(exc):
            raise OperationError(f"model package group {group!r} does not exist in {target.where} yet; "
                                 "deploy the stack first") from None
        raise
    if version is not None:
        try:
            package = sagemaker.describe_model_package(ModelPackageName=package_arn(target, version))
        except ClientError as exc:
            if _not_found(exc):
                raise OperationError(f"model package group {group!r} has no version {version}") from None
            raise
        if package.get("ModelApprovalStatus") != PENDING:
            raise OperationError(f"model package {group}/{version} is {package.get('ModelApprovalStatus')}, "
                                 f"not {PENDING}; only packages waiting for approval can be approved")
        return package
    summaries = sagemaker.list_model_packages(ModelPackageGroupName=group, ModelApprovalStatus=PENDING,
                                              SortBy="CreationTime", SortOrder="Descending",
                                              MaxResults=1)["ModelPackageSummaryList"]
    if not summaries:
        raise OperationError(f"model package group {group!r} has no package waiting for approval")
    return sagemaker.describe_model_package(ModelPackageName=summaries[0]["ModelPackageArn"])


def read_report(s3: Any, uri: str) -> tuple[Optional[Any], Optional[str]]:
    """The JSON report at an s3:// URI, or None and why it could not be read."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not uri.startswith("s3://") or "/" not in uri[5:]:
        return None, f"{uri!r} is not an s3://bucket/key URI"
    bucket, key = uri[5:].split("/", 1)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except (ClientError, BotoCoreError) as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "") or type(exc).__name__
        return None, f"cannot read {uri}: {code}"
    try:
        return json.loads(body), None
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"{uri} is not valid JSON ({exc})"


def metric_rows(report: Any, prefix: str = "") -> list[tuple[str, str, str]]:
    """(metric, value, standard deviation) rows: `{"value": v, "standard_deviation": s}` objects and
    scalar leaves, by their dotted path; lists (curves) are left out."""
    rows: list[tuple[str, str, str]] = []
    if not isinstance(report, dict):
        return rows
    if "value" in report and not isinstance(report["value"], (dict, list)):
        std = report.get("standard_deviation")
        return [(prefix, _fmt(report["value"]), "" if std is None else _fmt(std))]
    for key, value in report.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            rows += metric_rows(value, path)
        elif not isinstance(value, list) and path != "version":
            rows.append((path, _fmt(value), ""))
    return rows


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def show_package(package: dict[str, Any], s3: Any, console: Console) -> Optional[str]:
    """Print the package, its evaluation metrics and metadata; return a warning if the metrics are missing."""
    label = f"{package.get('ModelPackageGroupName')}/{package.get('ModelPackageVersion')}"
    created = package.get("CreationTime")
    when = f", created {created.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC" if isinstance(created, datetime) else ""
    console.print(f"Model package {escape(label)} ({package.get('ModelApprovalStatus')}{when})")
    console.print(f"  {package['ModelPackageArn']}")
    if package.get("ModelPackageDescription"):
        console.print(f"  {escape(package['ModelPackageDescription'])}")
    warning = None
    uri = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")
    if not uri:
        warning = f"model package {label} has no evaluation report (ModelMetrics.ModelQuality.Statistics)"
    else:
        report, problem = read_report(s3, uri)
        rows = metric_rows(report) if problem is None else []
        if problem is None and not rows:
            problem = f"{uri} holds no metrics"
        if problem:
            warning = f"evaluation report of {label}: {problem}"
        else:
            table = Table(title=f"Evaluation metrics ({escape(uri)})", title_justify="left", show_edge=False)
            table.add_column("metric")
            table.add_column("value", justify="right")
            table.add_column("std dev", justify="right")
            for row in rows:
                table.add_row(*(escape(cell) for cell in row))
            console.print(table)
    metadata = package.get("CustomerMetadataProperties") or {}
    if metadata:
        table = Table(title="Metadata", title_justify="left", show_edge=False)
        table.add_column("key")
        table.add_column("value", overflow="fold")
        for key, value in sorted(metadata.items()):
            table.add_row(escape(key), escape(value))
        console.print(table)
    return warning


def approve(target: Target, version: Optional[int], yes: bool, console: Console,
            confirm: Callable[[str], bool], warn: Callable[[str], None]) -> None:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        session = boto3.session.Session()
        caller = _caller_arn(session, target)
        sagemaker = session.client("sagemaker", region_name=target.region)
        package = find_package(sagemaker, target, version)
        label = f"{target.model}/{package.get('ModelPackageVersion')}"
        warning = show_package(package, session.client("s3", region_name=target.region), console)
        if warning:
            warn(f"warning: {warning}")
            if yes:
                raise OperationError(f"not approving {label} under --yes without its evaluation metrics; "
                                     "rerun without --yes to confirm")
        if not yes and not confirm(f"Approve {label} in stack {target.stack}?"):
            raise OperationError(f"not approved; {label} stays {PENDING}")
        sagemaker.update_model_package(ModelPackageArn=package["ModelPackageArn"], ModelApprovalStatus="Approved",
                                       ApprovalDescription=f"approved with emlops by {caller}")
    except (ClientError, BotoCoreError) as exc:
        raise _aws_error(exc) from None
    console.print(f"Approved {label} as {escape(caller)}")


def register(app: typer.Typer, runtime: Optional[Runtime] = None) -> None:
    """Add `retrain` and `approve` to APP (tests pass a Runtime whose sleep does not wait)."""
    runtime = runtime or Runtime()

    def run(command: str, action: Callable[[], None]) -> None:
        try:
            action()
        except OperationError as exc:
            typer.echo(f"emlops {command}: {exc}" if exc.prefixed else str(exc), err=True)
            raise typer.Exit(exc.exit_code)

    @app.command("retrain")
    def retrain_command(
        stack: str = typer.Argument(..., help="Stack name: reads stacks/Pulumi.<stack>.yaml."),
        model: str = typer.Argument(..., help="One of the stack's models."),
        wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the execution until it ends."),
        poll_seconds: int = typer.Option(30, "--poll-seconds", min=1, help="Seconds between status checks."),
        timeout_minutes: int = typer.Option(180, "--timeout-minutes", min=1,
                                              help="Stop following (the execution keeps running) after this long."),
    ) -> None:
        """Start MODEL's retraining pipeline in STACK's account and follow it to the end."""
        console = Console(highlight=False, soft_wrap=True)
        run("retrain", lambda: retrain(resolve_target(stack, model), wait, poll_seconds, timeout_minutes,
                                       console, runtime))

    @app.command("approve")
    def approve_command(
        stack: str = typer.Argument(..., help="Stack name: reads stacks/Pulumi.<stack>.yaml."),
        model: str = typer.Argument(..., help="One of the stack's models (its model package group), or a group of "
                                              "the registry stack; for a stack using the shared registry, approves "
                                              "in the shared stack."),
        version: Optional[int] = typer.Option(None, "--version", min=1,
                                              help="Approve this version. Default: the newest one pending approval."),
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    ) -> None:
        """Show a model package's evaluation metrics and approve it for deployment."""
        console = Console(highlight=False, soft_wrap=True)
        run("approve", lambda: approve(resolve_target(stack, model, registry=True), version, yes, console,
                                       lambda prompt: typer.confirm(prompt, default=False),
                                       lambda line: typer.echo(f"emlops approve: {line}", err=True)))

