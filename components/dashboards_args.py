"""What the dashboards take and what CloudWatch allows in one: the contexts of `ModelDashboard` and
`EnvironmentDashboard`, and the checks made before anything is created.

A dashboard has no settings of its own: what it shows follows from how the model is served (variants, serving
mode), how it is monitored (schedule, drift features) and which alarms guard it, all known to the platform. So
each component takes a context only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

import pulumi

from emlops.catalog.aws import api_limits, partition_of
from emlops.catalog.resources_operations import DASHBOARD
from emlops.components.monitoring_args import check_drift_feature

# CloudWatch's limits: a body holds "between 0 and 500 widget objects", an alarm-status widget 1-100 alarms
# (Dashboard Body Structure and Syntax); "up to 500 metrics per dashboard widget" and "up to 2500 metrics per
# dashboard, across all widgets" (CloudWatch service quotas). AWS documents no limit on the body's size in bytes.
MAX_WIDGETS = 500
MAX_METRICS_PER_WIDGET = 500
MAX_METRICS = 2500
MAX_ALARMS_PER_WIDGET = 100

_ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
_SAGEMAKER_NAME_RULE = "1-63 letters, digits and '-', starting and ending with a letter or digit"


@dataclass(frozen=True)
class ModelDashboardContext:
    """What the platform knows of one served model: its endpoint, how it is served and monitored, its alarms."""

    endpoint_name: str
    """The endpoint's name (a ModelEndpoint's is its own name): the EndpointName dimension of its metrics."""
    variant_names: Sequence[str]
    """Its production variants, e.g. `["primary"]` (a serverless endpoint's is `["serverless"]`): the
    VariantName dimension. SageMaker allows 1-10."""
    region: str
    """The endpoint's region: every graph reads its metrics there (a dashboard itself is global)."""
    shadow_variant_names: Sequence[str] = ()
    """Its shadow variant (SageMaker allows one, beside exactly one production variant): compared side by side
    with the production variant. Default: none."""
    asynchronous: bool = False
    """The endpoint takes asynchronous requests: its queue's backlog is shown, and the metrics SageMaker does not
    publish for such endpoints (Invocations, OverheadLatency) are not. Default: false."""
    gpu: bool = False
    """Its instances have GPUs: their GPU and GPU memory utilisation is shown. Default: false."""
    serverless: bool = False
    """The endpoint is serverless: cold starts (ModelSetupTime) are shown, and no instances. Default: false."""
    multi_model: bool = False
    """The endpoint hosts many models: models loaded, loading wait and cache hits are shown. Default: false."""
    monitoring_schedule_name: Optional[pulumi.Input[str]] = None
    """The data-quality monitoring schedule of the endpoint (a ModelMonitor's `schedule_name`): the
    MonitoringSchedule dimension of its drift metrics. Default: not monitored."""
    drift_features: Sequence[str] = ()
    """Features whose baseline drift the monitor publishes (its `drift_features`): one line each. Needs
    `monitoring_schedule_name`. Default: none."""
    alarm_names: Sequence[pulumi.Input[str]] = ()
    """Alarms whose state is shown (the endpoint's rollback alarms, the monitor's drift alarms), in the endpoint's
    region. Default: none."""
    account_id: Optional[str] = None
    """The account of the alarms (their ARNs name it). Default: the account of the provider, asked once per run."""

    @property
    def variants(self) -> list[str]:
        """Production, then shadow variants."""
        return [*self.variant_names, *self.shadow_variant_names]


@dataclass(frozen=True)
class EnvironmentDashboardContext:
    """What an environment's dashboard shows: each served model's traffic, errors and latency, and its alarms."""

    environment: str
    """The environment's name, as its stack file says (`dev`, `prod`), shown at the top."""
    region: str
    """The region of the alarms."""
    models: Sequence[ModelDashboardContext] = ()
    """The served models, a row each, in this order (the same contexts their ModelDashboards take). Default: none."""
    alarm_names: Sequence[pulumi.Input[str]] = ()
    """Alarms whose state is shown (every model's rollback and drift alarms). Default: none."""
    account_id: Optional[str] = None
    """The account of the alarms (their ARNs name it). Default: the account of the provider, asked once per run."""


def check_dashboard_name(name: str) -> None:
    """The dashboard is named after its component: CloudWatch's DashboardName rule."""
    if not isinstance(name, str) or DASHBOARD.naming.problem(name) is not None:
        raise ValueError(f"dashboard name {name!r} must be 1-{DASHBOARD.naming.max_length} letters, digits, '-' or "
                         "'_' (CloudWatch's dashboard names)")


def check_model_context(context: ModelDashboardContext) -> None:
    """What SageMaker allows an endpoint to be (so a dashboard graphs only metrics that exist)."""
    if not _matches("EndpointName", context.endpoint_name):
        raise ValueError(f"endpoint_name {context.endpoint_name!r} must be a SageMaker endpoint name: "
                         f"{_SAGEMAKER_NAME_RULE}")
    production, shadow = _names("variant_names", context.variant_names), _names(
        "shadow_variant_names", context.shadow_variant_names)
    most = api_limits("sagemaker", "ProductionVariantList").max
    if not production:
        raise ValueError("variant_names: give the endpoint's production variants, e.g. ['primary']")
    if len(production) > most:
        raise ValueError(f"variant_names: {len(production)} production variants; SageMaker allows at most {most}")
    if len(shadow) > 1:
        raise ValueError(f"shadow_variant_names: SageMaker allows one shadow variant per endpoint; got "
                         f"{', '.join(shadow)}")
    if shadow and len(production) != 1:
        raise ValueError(f"an endpoint with a shadow variant has exactly one production variant; got "
                         f"{', '.join(production)}")
    for name in context.variants:
        if not _matches("VariantName", name):
            raise ValueError(f"variant name {name!r} must be {_SAGEMAKER_NAME_RULE}")
    if len(set(context.variants)) != len(context.variants):
        raise ValueError(f"variant names must be unique across production and shadow variants; got "
                         f"{', '.join(context.variants)}")
    _check_serving_mode(context)
    _check_monitoring(context)
    check_region(context.region)
    check_alarms(context.alarm_names, context.account_id)


def _check_serving_mode(context: ModelDashboardContext) -> None:
    if context.serverless:
        if len(context.variants) > 1:
            raise ValueError(f"a serverless endpoint has one variant; got {', '.join(context.variants)}")
        for flag, why in (("asynchronous", "asynchronous endpoints run on instances"),
                          ("gpu", "serverless endpoints have no GPUs"),
                          ("multi_model", "serverless endpoints host one model")):
            if getattr(context, flag):
                raise ValueError(f"{why}: drop {flag} or serverless")


def _check_monitoring(context: ModelDashboardContext) -> None:
    features = _names("drift_features", context.drift_features)
    schedule = context.monitoring_schedule_name
    if schedule is None:
        if features:
            raise ValueError("drift_features are the model monitor's metrics: give monitoring_schedule_name too")
        return
    if context.serverless:
        raise ValueError("Model Monitor does not monitor serverless endpoints (they capture no data); drop "
                         "monitoring_schedule_name")
    if context.multi_model:
        raise ValueError("Model Monitor does not monitor multi-model endpoints; drop monitoring_schedule_name")
    if isinstance(schedule, str) and not _matches("MonitoringScheduleName", schedule):
        raise ValueError(f"monitoring_schedule_name {schedule!r} must be {_SAGEMAKER_NAME_RULE}")
    for feature in features:
        check_drift_feature(feature)
    if len(set(features)) != len(features):
        raise ValueError(f"drift_features must be unique; got {', '.join(features)}")


def check_region(region: str) -> None:
    if not isinstance(region, str):
        raise ValueError(f"region must be an AWS region such as 'eu-west-1', got {region!r}")
    try:
        partition_of(region)
    except ValueError:
        raise ValueError(f"region {region!r} is not an AWS region (no AWS partition has it), e.g. "
                         "'eu-west-1'") from None


def check_alarms(alarm_names: Sequence[pulumi.Input[str]], account_id: Optional[str]) -> None:
    names = _names("alarm_names", alarm_names)
    known = [name for name in names if isinstance(name, str)]
    if len(set(known)) != len(known):
        raise ValueError(f"alarm_names must be unique; got {', '.join(known)}")
    if account_id is not None and not (isinstance(account_id, str) and _ACCOUNT_ID.match(account_id)):
        raise ValueError(f"account_id {account_id!r} must be 12 digits")


def check_environment_context(context: EnvironmentDashboardContext) -> None:
    if not isinstance(context.environment, str) or not context.environment.strip():
        raise ValueError("environment: give the environment's name, e.g. 'prod'")
    models = _names("models", context.models)
    for index, model in enumerate(models):
        if not isinstance(model, ModelDashboardContext):
            raise ValueError(f"models[{index}] must be a ModelDashboardContext, got {type(model).__name__}")
        try:
            check_model_context(model)
        except ValueError as exc:
            raise ValueError(f"models[{index}]: {exc}") from None
    endpoints = [model.endpoint_name for model in models]
    if len(set(endpoints)) != len(endpoints):
        raise ValueError(f"models: one row per endpoint; got {', '.join(endpoints)}")
    check_region(context.region)
    check_alarms(context.alarm_names, context.account_id)


def check_limits(name: str, metric_counts: Sequence[int], widgets: int, hint: str) -> None:
    """The built dashboard fits CloudWatch's limits on widgets and metrics (`hint`: what to show less of)."""
    if widgets > MAX_WIDGETS:
        raise ValueError(f"dashboard {name!r} would have {widgets} widgets; CloudWatch allows {MAX_WIDGETS} per "
                         f"dashboard: {hint}")
    if max(metric_counts, default=0) > MAX_METRICS_PER_WIDGET:
        raise ValueError(f"dashboard {name!r} would graph {max(metric_counts)} metrics in one widget; CloudWatch "
                         f"allows {MAX_METRICS_PER_WIDGET} per widget: {hint}")
    if sum(metric_counts) > MAX_METRICS:
        raise ValueError(f"dashboard {name!r} would graph {sum(metric_counts)} metrics; CloudWatch allows "
                         f"{MAX_METRICS} per dashboard: {hint}")


def _names(field: str, values: Any) -> list[Any]:
    """A list field's values; a lone string (a missing pair of brackets) is an error, not a list of letters."""
    if isinstance(values, str):
        raise ValueError(f"{field} must be a list, e.g. [{values!r}]")
    return list(values)


def _matches(shape: str, name: Any) -> bool:
    """`name` is what botocore's SageMaker model allows for `shape` (EndpointName, VariantName, ...)."""
    limits = api_limits("sagemaker", shape)
    return isinstance(name, str) and 1 <= len(name) <= (limits.max or len(name)) and bool(
        re.fullmatch(limits.pattern, name))
