"""Autoscaling of a ModelEndpoint's variants: target tracking on invocations per instance (real-time), or on the
queue per instance for asynchronous endpoints, which may scale in to zero and come back when requests wait
(AWS's documented pattern for asynchronous inference); off-hours schedules for non-production endpoints."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from emlops.components.endpoint_args import EndpointSettings, VariantSettings
from emlops.components.options import child

OFF_HOURS, WORKING_HOURS = "off-hours", "working-hours"


def scaling_policy_name(name: str, variant: str) -> str:
    return f"{name}-{variant}-invocations-per-instance"


def backlog_policy_name(name: str, variant: str) -> str:
    return f"{name}-{variant}-backlog-per-instance"


def scale_out_from_zero_name(name: str, variant: str) -> str:
    return f"{name}-{variant}-scale-out-from-zero"


def scheduled_action_name(name: str, variant: str, window: str) -> str:
    return f"{name}-{variant}-{window}"


def autoscale(parent: pulumi.Resource, endpoint: pulumi.Resource, name: str, settings: EndpointSettings,
              tags: dict) -> None:
    """Scale every provisioned variant of the endpoint (after it exists) as its settings say."""
    for variant in settings.variants:
        if settings.serving == "async":
            _async_autoscaling(parent, endpoint, name, variant, settings, tags)
        else:
            _autoscaling(parent, endpoint, name, variant, settings, tags)


def _scaling_target(parent: pulumi.Resource, endpoint: pulumi.Resource, name: str, variant: VariantSettings, settings: EndpointSettings,
                    tags: dict) -> dict:
    """The variant's instance count as a scalable target; what its policies name it by."""
    scaling = settings.autoscaling
    dimension = "sagemaker:variant:DesiredInstanceCount"
    target = aws.appautoscaling.Target(
        f"{name}-{variant.name}-scaling",
        service_namespace="sagemaker", scalable_dimension=dimension,
        resource_id=f"endpoint/{name}/variant/{variant.name}",
        min_capacity=scaling.min_instances, max_capacity=scaling.max_instances, tags=tags,
        # the variant exists only once the endpoint does
        opts=child(parent, depends_on=[endpoint]),
    )
    return dict(service_namespace="sagemaker", scalable_dimension=dimension, resource_id=target.resource_id)


def _autoscaling(parent: pulumi.Resource, endpoint: pulumi.Resource, name: str, variant: VariantSettings, settings: EndpointSettings,
                 tags: dict) -> None:
    scaling = settings.autoscaling
    scaled = _scaling_target(parent, endpoint, name, variant, settings, tags)
    aws.appautoscaling.Policy(
        f"{name}-{variant.name}-invocations",
        name=scaling_policy_name(name, variant.name),
        policy_type="TargetTrackingScaling",
        target_tracking_scaling_policy_configuration={
            "predefined_metric_specification": {"predefined_metric_type": "SageMakerVariantInvocationsPerInstance"},
            "target_value": scaling.target_invocations_per_instance,
            "scale_in_cooldown": scaling.scale_in_cooldown_seconds,
            "scale_out_cooldown": scaling.scale_out_cooldown_seconds,
        },
        **scaled, opts=child(parent),
    )
    off_hours = scaling.off_hours
    if off_hours is not None:
        windows = ((OFF_HOURS, off_hours.scale_down_cron,
                    min(scaling.min_instances, off_hours.off_hours_max_instances), off_hours.off_hours_max_instances),
                   (WORKING_HOURS, off_hours.scale_up_cron, scaling.min_instances, scaling.max_instances))
        for label, cron, low, high in windows:
            aws.appautoscaling.ScheduledAction(
                scheduled_action_name(name, variant.name, label),
                name=scheduled_action_name(name, variant.name, label), schedule=cron, timezone=off_hours.timezone,
                scalable_target_action={"min_capacity": low, "max_capacity": high},
                **scaled, opts=child(parent),
            )


def _async_autoscaling(parent: pulumi.Resource, endpoint: pulumi.Resource, name: str, variant: VariantSettings, settings: EndpointSettings,
                       tags: dict) -> None:
    """Asynchronous endpoints scale on their queue (`ApproximateBacklogSizePerInstance`); with `min_instances: 0`
    they scale in to zero, and a step policy brings one instance back when requests wait without capacity
    (`HasBacklogWithoutCapacity`), as AWS documents for asynchronous inference."""
    scaling, queue = settings.autoscaling, settings.async_inference
    scaled = _scaling_target(parent, endpoint, name, variant, settings, tags)
    endpoint = [{"name": "EndpointName", "value": name}]
    aws.appautoscaling.Policy(
        f"{name}-{variant.name}-backlog",
        name=backlog_policy_name(name, variant.name),
        policy_type="TargetTrackingScaling",
        target_tracking_scaling_policy_configuration={
            "customized_metric_specification": {
                "metric_name": "ApproximateBacklogSizePerInstance", "namespace": "AWS/SageMaker",
                "dimensions": endpoint, "statistic": "Average",
            },
            "target_value": queue.target_backlog_per_instance,
            "scale_in_cooldown": scaling.scale_in_cooldown_seconds,
            "scale_out_cooldown": scaling.scale_out_cooldown_seconds,
        },
        **scaled, opts=child(parent),
    )
    if scaling.min_instances > 0:
        return
    from_zero = aws.appautoscaling.Policy(
        f"{name}-{variant.name}-from-zero",
        name=scale_out_from_zero_name(name, variant.name),
        policy_type="StepScaling",
        step_scaling_policy_configuration={
            "adjustment_type": "ChangeInCapacity", "metric_aggregation_type": "Average",
            "cooldown": scaling.scale_out_cooldown_seconds,
            "step_adjustments": [{"metric_interval_lower_bound": "0", "scaling_adjustment": 1}],
        },
        **scaled, opts=child(parent),
    )
    aws.cloudwatch.MetricAlarm(
        scale_out_from_zero_name(name, variant.name),
        alarm_description=f"{name}: requests wait and no instance runs; starts one",
        namespace="AWS/SageMaker", metric_name="HasBacklogWithoutCapacity", dimensions={"EndpointName": name},
        statistic="Average", period=60, evaluation_periods=2, threshold=1,
        comparison_operator="GreaterThanOrEqualToThreshold", treat_missing_data="missing",
        alarm_actions=[from_zero.arn], tags=tags, opts=child(parent),
    )
