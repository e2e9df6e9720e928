"""`emlops approve`: show a model package's evaluation metrics and approve it (the command: operations.py).

Approving is the registry account's decision: for an environment that uses the shared registry
(`registry.shared_stack`), the approval acts on the shared stack, with credentials for its account.

The package's evaluation report (`ModelMetrics.ModelQuality.Statistics`, a JSON file in S3) is shown first.
A version whose report is missing, unreadable or empty is not approved unless the operator says why
(`--no-report-reason`), and that reason is recorded in the approval's description. The command asks for
confirmation only where someone can answer (a terminal); elsewhere it needs `--yes`. Everything it prints
that comes from AWS or from the report goes through `clean`. `emlops promote` approves a shadow test's
challenger through the same look-up, review and approval (promotion.py).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from emlops.cli.targets import (EXIT_INPUT, OperationError, Target, _aws_error, _caller_arn, _load_platform,
                                _not_found, clean)
from emlops.components.model_card import ModelCardSettings

PENDING = "PendingManualApproval"
MAX_APPROVAL_DESCRIPTION = 1024  # SageMaker's ApprovalDescription (botocore: max 1024)
MIN_REASON_WORDS = 5


def shown(value: Any) -> str:
    """A value from AWS as rich prints it: cleaned to one line, markup escaped."""
    return escape(clean(value))


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
            raise OperationError(f"model package {group}/{version} is {clean(package.get('ModelApprovalStatus'))}, "
                                 f"not {PENDING}; only packages waiting for approval can be approved")
        return package
    newest = newest_packages(sagemaker, group, PENDING, 1)
    if not newest:
        raise OperationError(f"model package group {group!r} has no package waiting for approval")
    return sagemaker.describe_model_package(ModelPackageName=newest[0]["ModelPackageArn"])


def newest_packages(sagemaker: Any, group: str, status: str, count: int) -> list[dict[str, Any]]:
    """The summaries of GROUP's COUNT newest packages (by creation time) with approval STATUS, newest first. The
    newest `Approved` one is what a `model_package_group` source deploys."""
    return sagemaker.list_model_packages(ModelPackageGroupName=group, ModelApprovalStatus=status,
                                         SortBy="CreationTime", SortOrder="Descending",
                                         MaxResults=count)["ModelPackageSummaryList"]


def package_label(package: dict[str, Any]) -> str:
    """`<group>/<version>`, as the commands name a package."""
    return clean(f"{package.get('ModelPackageGroupName')}/{package.get('ModelPackageVersion')}")


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
        return [(prefix, fmt_metric(report["value"]), "" if std is None else fmt_metric(std))]
    for key, value in report.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            rows += metric_rows(value, path)
        elif not isinstance(value, list) and path != "version":
            rows.append((path, fmt_metric(value), ""))
    return rows


def fmt_metric(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def show_package(package: dict[str, Any], s3: Any, console: Console) -> Optional[str]:
    """Print the package, its evaluation metrics and metadata; return why the metrics are missing, if they are."""
    label = package_label(package)
    created = package.get("CreationTime")
    when = f", created {created.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC" if isinstance(created, datetime) else ""
    console.print(f"Model package {escape(label)} ({shown(package.get('ModelApprovalStatus'))}{when})")
    console.print(f"  {shown(package['ModelPackageArn'])}")
    if package.get("ModelPackageDescription"):
        console.print(f"  {shown(package['ModelPackageDescription'])}")
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
            warning = clean(f"evaluation report of {label}: {problem}")
        else:
            table = Table(title=f"Evaluation metrics ({shown(uri)})", title_justify="left", show_edge=False)
            table.add_column("metric")
            table.add_column("value", justify="right")
            table.add_column("std dev", justify="right")
            for row in rows:
                table.add_row(*(shown(cell) for cell in row))
            console.print(table)
    metadata = package.get("CustomerMetadataProperties") or {}
    if metadata:
        table = Table(title="Metadata", title_justify="left", show_edge=False)
        table.add_column("key")
        table.add_column("value", overflow="fold")
        for key, value in sorted(metadata.items()):
            table.add_row(shown(key), shown(value))
        console.print(table)
    return warning


def check_reason(reason: Optional[str]) -> Optional[str]:
    """The `--no-report-reason` as it is recorded (one line), or OperationError (exit 2) when it says too little."""
    if reason is None:
        return None
    text = " ".join(clean(reason).split())
    if len(text.split()) < MIN_REASON_WORDS:
        raise OperationError(f"--no-report-reason: say why the version may be approved without an evaluation "
                             f"report, and who decided ({MIN_REASON_WORDS} words or more)", EXIT_INPUT)
    return text


def review_package(package: dict[str, Any], s3: Any, reason: Optional[str], console: Console,
                   warn: Callable[[str], None]) -> None:
    """Show the package (`show_package`) and hold it to the rule of approvals: a package without a readable
    evaluation report needs a reason (OperationError otherwise), and only such a package may be given one."""
    label = package_label(package)
    warning = show_package(package, s3, console)
    if warning:
        warn(f"warning: {warning}")
        if reason is None:
            raise OperationError(f"not approving {label} without its evaluation report; if it may be approved "
                                 "anyway, say why with --no-report-reason (recorded in the approval)")
    elif reason is not None:
        raise OperationError(f"{label} has an evaluation report; --no-report-reason is only for a version "
                             "without one", EXIT_INPUT)


def approval_description(description: str, reason: Optional[str]) -> str:
    """What the approval records: DESCRIPTION (who approved, and how), and why without a report when that is
    the case."""
    if reason is None:
        return description
    description += "; no evaluation report: "
    room = MAX_APPROVAL_DESCRIPTION - len(description)
    if len(reason) > room:
        raise OperationError(f"--no-report-reason: {len(reason)} characters, but SageMaker keeps at most "
                             f"{MAX_APPROVAL_DESCRIPTION} in an approval description, which leaves {room} for the "
                             "reason", EXIT_INPUT)
    return description + reason


def declared_card(stack: str, model: str) -> tuple[Optional[ModelCardSettings], str]:
    """STACK's model card of MODEL (`models[].model_card`, what its deploy makes the SageMaker model card) and the
    stack file it is read from; None for a model without one (or a registry stack's group)."""
    where = f"stacks/Pulumi.{stack}.yaml"
    for entry in _load_platform(stack).models:
        if entry.name == model:
            return entry.model_card, where
    return None, where


def show_card(card: Optional[ModelCardSettings], model: str, where: str, console: Console,
              warn: Callable[[str], None]) -> None:
    """Print the model card next to the metrics: what the model is for, its risk, who owns and relies on it."""
    if card is None:
        warn(f"warning: {model} has no model card in {where} (models[].model_card)")
        return
    table = Table(title=escape(f"Model card ({where}, models[{model}].model_card)"), title_justify="left", show_edge=False)
    table.add_column("field")
    table.add_column("value", overflow="fold")
    rows = [("intended uses", card.intended_uses), ("risk rating", card.risk_rating or "none"),
            ("risk explanation", card.risk_explanation), ("owner", card.owner),
            ("business stakeholders", ", ".join(card.business_stakeholders)),
            ("business problem", card.business_problem), ("evaluation notes", card.evaluation_notes),
            ("card status", card.status)]
    for field, value in rows:
        if value:
            table.add_row(field, shown(value))
    console.print(table)


def approve(target: Target, version: Optional[int], yes: bool, no_report_reason: Optional[str], console: Console,
            interactive: bool, confirm: Callable[[str], bool], warn: Callable[[str], None],
            card: tuple[Optional[ModelCardSettings], str] = (None, "")) -> None:
    """Show the package (metrics, metadata) and the model card the stack declares (`declared_card`), then approve."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    reason = check_reason(no_report_reason)
    if not yes and not interactive:
        raise OperationError("no terminal to confirm the approval on (stdin is not a TTY); review the version in a "
                             "terminal, or approve it without asking with --yes", EXIT_INPUT)
    try:
        session = boto3.session.Session()
        caller = _caller_arn(session, target)
        sagemaker = session.client("sagemaker", region_name=target.region)
        package = find_package(sagemaker, target, version)
        label = package_label(package)
        review_package(package, session.client("s3", region_name=target.region), reason, console, warn)
        show_card(card[0], target.model, card[1], console, warn)
        description = approval_description(f"approved with emlops by {caller}", reason)
        if not yes and not confirm(f"Approve {label} in stack {target.stack}?"):
            raise OperationError(f"not approved; {label} stays {PENDING}")
        set_approved(sagemaker, package, description)
    except (ClientError, BotoCoreError) as exc:
        raise _aws_error(exc) from None
    console.print(f"Approved {escape(label)} as {escape(caller)}")


def set_approved(sagemaker: Any, package: dict[str, Any], description: str) -> None:
    """Approve the package: the newest Approved package of a group is what its consumers deploy next."""
    sagemaker.update_model_package(ModelPackageArn=package["ModelPackageArn"], ModelApprovalStatus="Approved",
                                   ApprovalDescription=description)
