"""The `business-viewer` persona's permissions: the people the platform serves follow it without asking an engineer.

It reads what describes the platform and never what the platform works on: the dashboards (and the metrics and
alarms they draw), the model cards, the approval history of the model package groups (who approved which version,
with what evaluation, when), and cost (Cost Explorer, Budgets). It reads no object of any bucket (datasets, captured
traffic, artifacts, reports), decrypts nothing, reads no log event, feature record or prediction, and changes
nothing: every allowed action is a read, named one by one, and the data and change actions are denied outright so
that no policy attached later can grant them. Evidence reports are files the pull-request workflow attaches
(`emlops report`), outside the account.
"""

from __future__ import annotations

from emlops.components.aws_context import AwsContext
from emlops.components.iam import Statement
from emlops.components.personas_args import PersonasContext, PersonasSettings
from emlops.components.personas_policies import KEEP_STATE, read_groups


def _named(service: str, names: str) -> list[str]:
    return [f"{service}:{name}" for name in names.split()]


# Metrics and alarms are what the dashboards draw: numbers about the platform, never its data.
DASHBOARD_READS = _named("cloudwatch", "DescribeAlarmHistory DescribeAlarms GetMetricData GetMetricStatistics "
                         "ListDashboards ListMetrics")
# Cost Explorer's reads take no resource; Budgets' are per budget of the account.
COST_READS = _named("ce", "GetCostAndUsage GetCostForecast GetDimensionValues GetTags")
# The data, whatever policy is attached later: objects, keys, log events, feature records, predictions.
DATA_ACTIONS = [*_named("kms", "Decrypt GenerateDataKey ReEncryptFrom"),
                *_named("logs", "FilterLogEvents GetLogEvents StartQuery"),
                *_named("s3", "GetObject GetObjectVersion"),
                *_named("sagemaker", "BatchGetRecord GetRecord InvokeEndpoint InvokeEndpointAsync")]
# ... and the decisions that are the ML engineers' and the deploys': approvals, endpoints, cards, schedules.
CHANGE_ACTIONS = _named("sagemaker", "CreateEndpoint DeleteEndpoint DeleteModelCard StartMonitoringSchedule "
                        "StartPipelineExecution StopMonitoringSchedule UpdateEndpoint UpdateModelCard "
                        "UpdateModelPackage")


def business_viewer_policies(settings: PersonasSettings, context: PersonasContext,
                             aws_facts: AwsContext) -> list[tuple[str, list[Statement]]]:
    """The business viewer's named inline policies."""
    dashboards = context.dashboard_prefix or f"emlops-{context.environment}"
    policies = [
        ("view-dashboards", [
            Statement(actions=["cloudwatch:GetDashboard"], resources=[
                aws_facts.arn("cloudwatch", f"dashboard/{dashboards}*", regional=False)]),
            # CloudWatch's metric and alarm reads take no resource (or every alarm); they hold no data
            Statement(actions=DASHBOARD_READS, resources=["*"]),
        ]),
        ("view-model-cards", [
            Statement(actions=["sagemaker:DescribeModelCard", "sagemaker:ListModelCardVersions"],
                      resources=[aws_facts.arn("sagemaker", f"model-card/{context.managed_prefix}*")]),
            Statement(actions=["sagemaker:ListModelCards"], resources=["*"]),
        ]),
    ]
    groups = [*context.package_group_arns, *context.shared_group_arns]
    if groups:
        policies.append(("view-approvals", read_groups(groups)))
    policies += [
        ("view-cost", [
            Statement(actions=COST_READS, resources=["*"]),
            Statement(actions=["budgets:ViewBudget"], resources=[aws_facts.arn("budgets", "budget/*", regional=False)]),
        ]),
        ("guardrails", [
            KEEP_STATE,
            Statement(sid="NoData", effect="Deny", actions=DATA_ACTIONS, resources=["*"]),
            Statement(sid="NoChanges", effect="Deny", actions=CHANGE_ACTIONS, resources=["*"]),
        ]),
    ]
    return policies
