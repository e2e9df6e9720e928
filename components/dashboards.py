"""ModelDashboard and EnvironmentDashboard: CloudWatch dashboards of one served model and of an environment.

A model's dashboard shows what its endpoint publishes, as it is served: traffic and errors, model and overhead
latency, each variant's instances (CPU, memory, disk; GPUs when it has them), and by serving mode the
asynchronous queue's backlog, serverless cold starts, the shadow variant beside the production one, or a
multi-model endpoint's loading and cache; the model monitor's drift per feature and the state of the rollback
and drift alarms. An environment's dashboard has a row per served model (invocations, 5XX errors, p99 latency)
under the state of all its alarms.

Metric names, namespaces and dimensions are SageMaker's (Amazon SageMaker AI metrics in Amazon CloudWatch,
asynchronous and multi-model endpoint metrics, Model Monitor's CloudWatch metrics); only what SageMaker
publishes for the endpoint's mode is graphed. Each dashboard is named after its component, and its body is
built as plain JSON (the alarms' names, when they are Outputs, are resolved once each).

Their contexts and CloudWatch's limits are in dashboards_args.py, the body's parts in dashboard_widgets.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import pulumi
import pulumi_aws as aws

from emlops.catalog.aws import partition_of
from emlops.catalog.resources_operations import DASHBOARD, METRIC_ALARM
from emlops.components.aws_context import aws_context
from emlops.components.dashboard_widgets import (ENDPOINT_INSTANCES, MICROSECONDS, PERCENT, SAGEMAKER, Grid, chunks,
                                                 graph, line, metric_count, variant)
from emlops.components.dashboards_args import (MAX_ALARMS_PER_WIDGET, MAX_METRICS_PER_WIDGET,
                                               EnvironmentDashboardContext, ModelDashboardContext, check_dashboard_name,
                                               check_environment_context, check_limits, check_model_context)
from emlops.components.monitoring_alarms import DATA_METRICS_NAMESPACE, drift_metric_name
from emlops.components.naming import DerivedName, given
from emlops.components.options import child, type_token
from emlops.components.outputs import json_document, resolved

__all__ = ["EnvironmentDashboard", "EnvironmentDashboardContext", "ModelDashboard", "ModelDashboardContext"]

DRIFT_PERIOD = 3600  # a monitoring schedule runs at most hourly: one drift value per run
MANAGED = "Managed by emlops: changes made in the console are overwritten by the next deploy."
_INSTANCE_METRICS = (("CPUUtilization", "CPU"), ("MemoryUtilization", "memory"), ("DiskUtilization", "disk"))
_GPU_METRICS = (("GPUUtilization", "GPU"), ("GPUMemoryUtilization", "GPU memory"))


def dashboard_logical_name(name: str) -> str:
    return f"{name}-dashboard"


def derived_names(name: str) -> list[DerivedName]:
    """The physical name a dashboard component called `name` gives its dashboard (naming.py): its own."""
    return [given(DASHBOARD.token, name)]


class ModelDashboard(pulumi.ComponentResource):
    """The CloudWatch dashboard of one served model, named after the component."""

    dashboard: aws.cloudwatch.Dashboard
    dashboard_name: str
    dashboard_arn: pulumi.Output[str]
    body: pulumi.Input[str]
    """The dashboard's JSON: a plain string when every alarm name and the account are known."""

    def __init__(self, name: str, context: ModelDashboardContext, opts: Optional[pulumi.ResourceOptions] = None):
        check_dashboard_name(name)
        check_model_context(context)
        # CloudWatch's limits count widgets and metrics, not the alarms' ARNs, which need the component (the account
        # of its provider): the names stand in for them
        _check_size(name, _model_grid(context, list(context.alarm_names)), "name fewer drift_features or alarms")
        super().__init__(type_token("ModelDashboard"), name, None, opts)
        arns = _alarm_arns(self, context.alarm_names, context.region, context.account_id)
        self.body = json_document(_model_grid(context, arns).body())
        self.dashboard = _dashboard(self, name, self.body)
        self.dashboard_name = name
        self.dashboard_arn = self.dashboard.dashboard_arn
        self.register_outputs({"dashboardName": self.dashboard_name, "dashboardArn": self.dashboard_arn})


class EnvironmentDashboard(pulumi.ComponentResource):
    """The CloudWatch dashboard of one environment: a row per served model and the state of its alarms."""

    dashboard: aws.cloudwatch.Dashboard
    dashboard_name: str
    dashboard_arn: pulumi.Output[str]
    body: pulumi.Input[str]
    """The dashboard's JSON: a plain string when every alarm name and the account are known."""

    def __init__(self, name: str, context: EnvironmentDashboardContext,
                 opts: Optional[pulumi.ResourceOptions] = None):
        check_dashboard_name(name)
        check_environment_context(context)
        _check_size(name, _environment_grid(context, list(context.alarm_names)),
                    "show fewer models or alarms on one dashboard")
        super().__init__(type_token("EnvironmentDashboard"), name, None, opts)
        arns = _alarm_arns(self, context.alarm_names, context.region, context.account_id)
        self.body = json_document(_environment_grid(context, arns).body())
        self.dashboard = _dashboard(self, name, self.body)
        self.dashboard_name = name
        self.dashboard_arn = self.dashboard.dashboard_arn
        self.register_outputs({"dashboardName": self.dashboard_name, "dashboardArn": self.dashboard_arn})


def _dashboard(parent: pulumi.Resource, name: str, body: pulumi.Input[str]) -> aws.cloudwatch.Dashboard:
    return aws.cloudwatch.Dashboard(dashboard_logical_name(name), dashboard_name=name, dashboard_body=body,
                                    opts=child(parent))


def _check_size(name: str, grid: Grid, hint: str) -> None:
    check_limits(name, metric_count(grid.widgets), len(grid.widgets), hint)


def _alarm_arns(parent: pulumi.Resource, names: Sequence[pulumi.Input[str]], region: str,
                account_id: Optional[str]) -> list[pulumi.Input[str]]:
    """The alarms' ARNs (an alarm-status widget names alarms by ARN), in the alarm catalogue entry's format."""
    if not names:
        return []
    account = account_id if account_id is not None else aws_context(parent).account_id
    partition = partition_of(region).name
    return [resolved([alarm, account], lambda known: METRIC_ALARM.arn.format(
        partition=partition, region=region, account=known[1], name=known[0])) for alarm in names]


# -- one model ------------------------------------------------------------------------------------------


def _model_grid(context: ModelDashboardContext, alarm_arns: Sequence[pulumi.Input[str]]) -> Grid:
    grid = Grid()
    grid.text(_summary(context))
    grid.alarms("Alarms (rollback and drift)", alarm_arns, MAX_ALARMS_PER_WIDGET)
    _traffic(grid, context)
    if context.asynchronous:
        _backlog(grid, context)
    if context.serverless:
        _cold_starts(grid, context)
    if context.shadow_variant_names:
        _shadow_test(grid, context)
    if context.multi_model:
        _multi_model(grid, context)
    if not context.serverless:
        _instances(grid, context)
    if context.monitoring_schedule_name is not None and context.drift_features:
        _drift(grid, context)
    return grid


def _summary(context: ModelDashboardContext) -> str:
    mode = ("Serverless endpoint" if context.serverless
            else "Asynchronous endpoint" if context.asynchronous else "Real-time endpoint")
    facts = [f"production variants {', '.join(context.variant_names)}"]
    facts += [f"shadow variant {name} (a copy of production traffic)" for name in context.shadow_variant_names]
    if context.gpu:
        facts.append("GPU instances")
    if context.multi_model:
        facts.append("multi-model")
    if context.monitoring_schedule_name is not None:
        facts.append(f"data-quality monitoring, drift of {len(context.drift_features)} features")
    return (f"# {context.endpoint_name}\n{mode} in {context.region}: {'; '.join(facts)}. "
            f"Latencies in microseconds. {MANAGED}")


def _traffic(grid: Grid, context: ModelDashboardContext) -> None:
    """Requests and errors, model and overhead latency, per production variant (asynchronous endpoints publish
    no Invocations and no OverheadLatency)."""
    endpoint, asynchronous = context.endpoint_name, context.asynchronous
    requests, latency = [], []
    for name in context.variant_names:
        dimensions = variant(endpoint, name)
        if not asynchronous:
            requests.append(line(SAGEMAKER, "Invocations", dimensions, "Sum", f"{name} invocations"))
        requests += [line(SAGEMAKER, "Invocation4XXErrors", dimensions, "Sum", f"{name} 4XX errors"),
                     line(SAGEMAKER, "Invocation5XXErrors", dimensions, "Sum", f"{name} 5XX errors")]
        latency += [line(SAGEMAKER, "ModelLatency", dimensions, stat, f"{name} model {stat}")
                    for stat in ("p50", "p99")]
        if not asynchronous:
            latency += [line(SAGEMAKER, "OverheadLatency", dimensions, stat, f"{name} overhead {stat}")
                        for stat in ("p50", "p99")]
    grid.new_row()
    grid.metric(graph("Errors" if asynchronous else "Invocations and errors", requests, context.region))
    grid.metric(graph("Latency", latency, context.region, y_axis=MICROSECONDS))


def _backlog(grid: Grid, context: ModelDashboardContext) -> None:
    """The asynchronous queue, which is the endpoint's (dimension EndpointName only)."""
    queue = (("EndpointName", context.endpoint_name),)
    grid.new_row()
    grid.metric(graph("Asynchronous backlog", [
        line(SAGEMAKER, "ApproximateBacklogSize", queue, "Average", "requests queued"),
        line(SAGEMAKER, "ApproximateBacklogSizePerInstance", queue, "Average", "requests queued per instance"),
        line(SAGEMAKER, "HasBacklogWithoutCapacity", queue, "Maximum", "requests queued, no instance (1)"),
    ], context.region))
    grid.metric(graph("Oldest queued request", [
        line(SAGEMAKER, "ApproximateAgeOfOldestRequest", queue, "Maximum", "age of the oldest request"),
    ], context.region, y_axis={"left": {"label": "seconds", "showUnits": False}}))


def _cold_starts(grid: Grid, context: ModelDashboardContext) -> None:
    lines = [line(SAGEMAKER, "ModelSetupTime", variant(context.endpoint_name, name), stat, f"{name} setup {stat}")
             for name in context.variant_names for stat in ("Average", "p99")]
    grid.new_row()
    grid.metric(graph("Serverless cold starts (model setup time)", lines, context.region, y_axis=MICROSECONDS))


def _shadow_test(grid: Grid, context: ModelDashboardContext) -> None:
    """The production and shadow variants side by side: requests, p99 latency and errors."""
    roles = [(name, "production") for name in context.variant_names]
    roles += [(name, "shadow") for name in context.shadow_variant_names]

    def compared(metric: str, stat: str, what: str) -> list[list]:
        return [line(SAGEMAKER, metric, variant(context.endpoint_name, name), stat, f"{name} ({role}) {what}")
                for name, role in roles]
    grid.new_row()
    if not context.asynchronous:
        grid.metric(graph("Shadow test: invocations", compared("Invocations", "Sum", "invocations"), context.region),
                    width=8)
    grid.metric(graph("Shadow test: p99 model latency", compared("ModelLatency", "p99", "p99"), context.region,
                      y_axis=MICROSECONDS), width=8)
    grid.metric(graph("Shadow test: errors", compared("Invocation4XXErrors", "Sum", "4XX errors")
                      + compared("Invocation5XXErrors", "Sum", "5XX errors"), context.region), width=8)


def _multi_model(grid: Grid, context: ModelDashboardContext) -> None:
    """A multi-model endpoint's models: how many are loaded, how long requests wait for one, how often it was."""
    loaded, waiting, hits = [], [], []
    for name in context.variants:
        dimensions = variant(context.endpoint_name, name)
        loaded.append(line(ENDPOINT_INSTANCES, "LoadedModelCount", dimensions, "Average", f"{name} per instance"))
        waiting += [line(SAGEMAKER, "ModelLoadingWaitTime", dimensions, stat, f"{name} {stat.lower()}")
                    for stat in ("Average", "Maximum")]
        hits.append(line(SAGEMAKER, "ModelCacheHit", dimensions, "Average", f"{name} already loaded"))
    grid.new_row()
    grid.metric(graph("Models loaded", loaded, context.region), width=8)
    grid.metric(graph("Model loading wait", waiting, context.region, y_axis=MICROSECONDS), width=8)
    grid.metric(graph("Model cache hit ratio", hits, context.region, y_axis={"left": {"min": 0, "max": 1}}), width=8)


def _instances(grid: Grid, context: ModelDashboardContext) -> None:
    """Each variant's instances (shadow included): CPU and GPU are summed over cores and GPUs (above 100%)."""
    metrics = _INSTANCE_METRICS + (_GPU_METRICS if context.gpu else ())
    grid.new_row()
    for name in context.variants:
        role = " (shadow)" if name in context.shadow_variant_names else ""
        grid.metric(graph(f"Instances: {name}{role}", [
            line(ENDPOINT_INSTANCES, metric, variant(context.endpoint_name, name), "Average", what)
            for metric, what in metrics], context.region, y_axis=PERCENT))


def _drift(grid: Grid, context: ModelDashboardContext) -> None:
    """The monitor's baseline drift per feature (dimensions Endpoint and MonitoringSchedule)."""
    dimensions = (("Endpoint", context.endpoint_name), ("MonitoringSchedule", context.monitoring_schedule_name))
    lines = [line(DATA_METRICS_NAMESPACE, drift_metric_name(feature), dimensions, "Maximum", feature)
             for feature in context.drift_features]
    parts = chunks(lines, MAX_METRICS_PER_WIDGET)
    grid.new_row()
    for index, part in enumerate(parts, start=1):
        title = "Data drift from the baseline" + (f" ({index}/{len(parts)})" if len(parts) > 1 else "")
        grid.metric(graph(title, part, context.region, period=DRIFT_PERIOD), width=24)


# -- one environment ------------------------------------------------------------------------------------


def _environment_grid(context: EnvironmentDashboardContext, alarm_arns: Sequence[pulumi.Input[str]]) -> Grid:
    grid = Grid()
    grid.text(f"# {context.environment}\nThe served models of the {context.environment} environment, a row each: "
              "invocations (an asynchronous endpoint's backlog), 5XX errors and p99 model latency per production "
              f"variant. Latencies in microseconds. {MANAGED}")
    grid.alarms(f"Alarms of {context.environment}", alarm_arns, MAX_ALARMS_PER_WIDGET)
    for model in context.models:
        endpoint, region = model.endpoint_name, model.region
        grid.new_row()
        if model.asynchronous:
            grid.metric(graph(f"{endpoint}: asynchronous backlog", [line(
                SAGEMAKER, "ApproximateBacklogSize", (("EndpointName", endpoint),), "Average", "requests queued")],
                region), width=8)
        else:
            grid.metric(graph(f"{endpoint}: invocations", _per_variant(model, "Invocations", "Sum"), region), width=8)
        grid.metric(graph(f"{endpoint}: 5XX errors", _per_variant(model, "Invocation5XXErrors", "Sum"), region),
                    width=8)
        grid.metric(graph(f"{endpoint}: p99 model latency", _per_variant(model, "ModelLatency", "p99"), region,
                          y_axis=MICROSECONDS), width=8)
    return grid


def _per_variant(model: ModelDashboardContext, metric: str, stat: str) -> list[list]:
    return [line(SAGEMAKER, metric, variant(model.endpoint_name, name), stat, name) for name in model.variant_names]
