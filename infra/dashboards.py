"""The platform's dashboards: one per served model (how it is served, its alarms, its monitor's drift) and one per
environment (every model's traffic, errors and latency, every alarm). Named `emlops-<environment>[-<model>]`:
CloudWatch dashboard names are global to the account, so two environments sharing an account keep theirs apart."""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence

import pulumi

from emlops.catalog.aws import has_gpu
from emlops.components.dashboards import (EnvironmentDashboard, EnvironmentDashboardContext, ModelDashboard,
                                          ModelDashboardContext)
from emlops.components.endpoint import ModelEndpoint
from emlops.components.monitoring import ModelMonitor
from emlops.components.options import child
from emlops.program.names import endpoint_component
from emlops.program.serving import ServedModel


def dashboard_name(environment: str, model: str = "") -> str:
    return f"emlops-{environment}" + (f"-{model}" if model else "")


def dashboards(parent: pulumi.Resource, environment: str, region: str, account_id: str,
               models: Sequence[ServedModel], endpoints: Mapping[str, ModelEndpoint],
               monitors: Mapping[str, ModelMonitor]) -> Generator[None, None, list[pulumi.ComponentResource]]:
    """A ModelDashboard per served model, one at a time (the platform lets each register), and the environment's
    EnvironmentDashboard (none without models)."""
    if not models:
        return []
    contexts = [_model_context(environment, m, endpoints[m.name], monitors.get(m.name), region, account_id)
                for m in models]
    built: list[pulumi.ComponentResource] = []
    for m, context in zip(models, contexts):
        built.append(ModelDashboard(dashboard_name(environment, m.name), context, opts=child(parent)))
        yield
    built.append(EnvironmentDashboard(dashboard_name(environment), EnvironmentDashboardContext(
        environment=environment, region=region, models=contexts, account_id=account_id,
        alarm_names=[name for context in contexts for name in context.alarm_names]), opts=child(parent)))
    return built


def _model_context(environment: str, model: ServedModel, endpoint: ModelEndpoint, monitor: ModelMonitor | None,
                   region: str, account_id: str) -> ModelDashboardContext:
    settings = model.settings
    instance_types = settings.instance_types
    return ModelDashboardContext(
        endpoint_name=endpoint_component(environment, model.name), region=region, account_id=account_id,
        variant_names=[v.name for v in settings.variants] or ["serverless"],
        shadow_variant_names=[settings.shadow.variant_name] if settings.shadow else [],
        asynchronous=settings.serving == "async", gpu=any(has_gpu(t) for t in instance_types),
        serverless=settings.serverless is not None, multi_model=settings.mode == "multi_model",
        monitoring_schedule_name=monitor.schedule_name if monitor is not None else None,
        drift_features=list(settings.monitoring.drift_features) if monitor is not None else [],
        alarm_names=[alarm.name for alarm in endpoint.alarms] + (list(monitor.alarm_names) if monitor else []))
