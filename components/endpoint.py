"""ModelEndpoint: one model on a SageMaker endpoint with capture, safe rollouts, rollback and autoscaling.

SageMaker models and endpoint configurations are immutable: a change must create new ones and point
the endpoint at them, never delete the live one first. Both are auto-named, so Pulumi replaces them
create-before-delete and the endpoint update is a blue/green deployment (canary or linear when
configured) that rolls back on the alarms this component creates. The endpoint itself keeps the
stable name callers invoke it by: `<component name>`.
"""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_aws as aws

from emlops.components.endpoint_args import ModelEndpointArgs, Variant, check_endpoint_name, has_local_storage
from emlops.components.endpoint_iam import execution_role
from emlops.components.kms import KmsKey, KmsKeyArgs
from emlops.components.network_access import https_only_security_group
from emlops.components.options import child, merge_tags, type_token

__all__ = ["ModelEndpoint", "ModelEndpointArgs", "Variant"]

_TRAFFIC = {"all_at_once": "ALL_AT_ONCE", "canary": "CANARY", "linear": "LINEAR"}


class ModelEndpoint(pulumi.ComponentResource):
    """A SageMaker Model, EndpointConfiguration and Endpoint, with their role, network and alarms."""

    endpoint: aws.sagemaker.Endpoint
    endpoint_name: pulumi.Output[str]
    endpoint_arn: pulumi.Output[str]
    model_artifact_uri: Optional[str]
    data_capture_uri: Optional[pulumi.Output[str]]
    alarms: list[aws.cloudwatch.MetricAlarm]

    def __init__(self, name: str, args: ModelEndpointArgs, opts: Optional[pulumi.ResourceOptions] = None):
        check_endpoint_name(name)
        args.check_network()
        super().__init__(type_token("ModelEndpoint"), name, None, opts)
        tags = merge_tags(args.tags, {"model-endpoint": name})

        kms_key_arn = args.kms_key_arn
        # serverless endpoints have no volume to encrypt and cannot capture: no key to create
        if kms_key_arn is None and not args.serverless:
            kms_key_arn = KmsKey(f"{name}-key", KmsKeyArgs(
                description=f"Encrypts the volumes and captured data of the {name} endpoint", tags=tags,
            ), opts=child(self)).arn

        capture_prefix = f"datacapture/{name}/"
        self.data_capture_uri = None
        if args.data_capture_bucket is not None:
            self.data_capture_uri = pulumi.Output.concat("s3://", args.data_capture_bucket.bucket_name, "/",
                                                         capture_prefix.rstrip("/"))

        security_group_ids = None
        if not args.serverless:
            security_group_ids = list(args.security_group_ids) or [
                https_only_security_group(self, name, args.vpc_id, "SageMaker endpoint", tags).id]

        role, policies = execution_role(self, name, args, kms_key_arn, capture_prefix, tags)
        self.model_artifact_uri = args.model_data_url or args.model_data_prefix or args.package_artifact_uri
        model = aws.sagemaker.Model(
            f"{name}-model",
            execution_role_arn=role.arn,
            primary_container=_container(args),
            enable_network_isolation=args.network_isolation,
            vpc_config=None if security_group_ids is None else {
                "subnets": list(args.subnet_ids), "security_group_ids": security_group_ids,
            },
            tags=tags,
            # SageMaker checks the role's access when the model is created: wait for its policies.
            opts=child(self, depends_on=policies),
        )
        config = aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            production_variants=_variants(args, model.name),
            kms_key_arn=None if args.serverless or any(has_local_storage(v.instance_type) for v in args.variants)
            else kms_key_arn,
            data_capture_config=None if self.data_capture_uri is None else {
                "enable_capture": True,
                "initial_sampling_percentage": args.data_capture_sampling_percentage,
                "destination_s3_uri": self.data_capture_uri,
                "kms_key_id": kms_key_arn,
                "capture_options": [{"capture_mode": "Input"}, {"capture_mode": "Output"}],
                "capture_content_type_header": {
                    "csv_content_types": list(args.data_capture_csv_content_types),
                    "json_content_types": list(args.data_capture_json_content_types),
                },
            },
            tags=tags,
            opts=child(self),
        )
        variant_names = [v.name for v in args.variants] or ["serverless"]
        self.alarms = [alarm for variant in variant_names for alarm in _rollback_alarms(self, name, variant, args, tags)]
        self.endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=name,
            endpoint_config_name=config.name,
            deployment_config=_deployment(args, self.alarms),
            tags=tags,
            opts=child(self),
        )
        self.endpoint_name = self.endpoint.name
        self.endpoint_arn = self.endpoint.arn
        if args.autoscaling_min is not None:
            for variant in args.variants:
                _autoscaling(self, name, variant, args, tags)
        self.register_outputs({
            "endpointName": self.endpoint_name,
            "endpointArn": self.endpoint_arn,
            "modelArtifactUri": self.model_artifact_uri,
            "dataCaptureUri": self.data_capture_uri,
        })


def _container(args: ModelEndpointArgs) -> dict:
    if args.model_package_arn:
        return {"model_package_name": args.model_package_arn}
    container: dict = {"image": args.image_uri, "mode": "SingleModel"}
    if args.environment:
        container["environment"] = dict(args.environment)
    if args.model_data_url:
        container["model_data_url"] = args.model_data_url
    else:
        # MLflow models are directories: SageMaker loads them uncompressed from the prefix.
        # (the provider models the API's single S3DataSource as a one-element list)
        container["model_data_source"] = {"s3_data_sources": [{
            "s3_uri": args.model_data_prefix, "s3_data_type": "S3Prefix", "compression_type": "None",
        }]}
    return container


def _variants(args: ModelEndpointArgs, model_name: pulumi.Output[str]) -> list[dict]:
    if args.serverless:
        return [{"variant_name": "serverless", "model_name": model_name, "serverless_config": {
            "memory_size_in_mb": args.serverless_memory_mb, "max_concurrency": args.serverless_max_concurrency,
        }}]
    return [{
        "variant_name": v.name, "model_name": model_name, "instance_type": v.instance_type,
        "initial_instance_count": v.initial_instance_count, "initial_variant_weight": v.weight,
    } for v in args.variants]


def _rollback_alarms(parent: pulumi.Resource, name: str, variant: str, args: ModelEndpointArgs,
                     tags: dict) -> list[aws.cloudwatch.MetricAlarm]:
    dimensions = {"EndpointName": name, "VariantName": variant}
    notify = {} if args.alarm_topic_arn is None else dict(alarm_actions=[args.alarm_topic_arn],
                                                          ok_actions=[args.alarm_topic_arn])
    common = dict(namespace="AWS/SageMaker", dimensions=dimensions, period=60, evaluation_periods=3,
                  datapoints_to_alarm=2, treat_missing_data="notBreaching", tags=tags, opts=child(parent), **notify)
    errors = aws.cloudwatch.MetricAlarm(
        f"{name}-{variant}-5xx",
        alarm_description=f"{name}/{variant}: {args.error_5xx_threshold}+ 5XX errors a minute; rolls back deployments",
        metric_name="Invocation5XXErrors", statistic="Sum",
        comparison_operator="GreaterThanOrEqualToThreshold", threshold=args.error_5xx_threshold, **common,
    )
    latency = aws.cloudwatch.MetricAlarm(
        f"{name}-{variant}-latency",
        alarm_description=f"{name}/{variant}: p99 model latency above {args.latency_threshold_ms} ms; rolls back deployments",
        # ModelLatency is published in microseconds.
        metric_name="ModelLatency", extended_statistic="p99",
        comparison_operator="GreaterThanThreshold", threshold=args.latency_threshold_ms * 1000, **common,
    )
    return [errors, latency]


def _deployment(args: ModelEndpointArgs, alarms: list[aws.cloudwatch.MetricAlarm]) -> dict:
    routing: dict = {"type": _TRAFFIC[args.deployment_strategy], "wait_interval_in_seconds": args.wait_seconds}
    if args.deployment_strategy == "canary":
        routing["canary_size"] = {"type": "CAPACITY_PERCENT", "value": args.canary_percent}
    elif args.deployment_strategy == "linear":
        routing["linear_step_size"] = {"type": "CAPACITY_PERCENT", "value": args.linear_step_percent}
    return {
        "blue_green_update_policy": {
            "traffic_routing_configuration": routing,
            "termination_wait_in_seconds": args.termination_wait_seconds,
            "maximum_execution_timeout_in_seconds": args.max_execution_timeout_seconds,
        },
        "auto_rollback_configuration": {"alarms": [{"alarm_name": alarm.name} for alarm in alarms]},
    }


def _autoscaling(parent: pulumi.Resource, name: str, variant: Variant, args: ModelEndpointArgs, tags: dict) -> None:
    resource_id = f"endpoint/{name}/variant/{variant.name}"
    dimension = "sagemaker:variant:DesiredInstanceCount"
    target = aws.appautoscaling.Target(
        f"{name}-{variant.name}-scaling",
        service_namespace="sagemaker", scalable_dimension=dimension, resource_id=resource_id,
        min_capacity=args.autoscaling_min, max_capacity=args.autoscaling_max, tags=tags,
        # the variant exists only once the endpoint does
        opts=child(parent, depends_on=[parent.endpoint]),
    )
    scaled = dict(service_namespace="sagemaker", scalable_dimension=dimension, resource_id=target.resource_id)
    aws.appautoscaling.Policy(
        f"{name}-{variant.name}-invocations",
        name=f"{name}-{variant.name}-invocations-per-instance",
        policy_type="TargetTrackingScaling",
        target_tracking_scaling_policy_configuration={
            "predefined_metric_specification": {"predefined_metric_type": "SageMakerVariantInvocationsPerInstance"},
            "target_value": args.target_invocations_per_instance,
            "scale_in_cooldown": args.scale_in_cooldown_seconds,
            "scale_out_cooldown": args.scale_out_cooldown_seconds,
        },
        **scaled, opts=child(parent),
    )
    if args.off_hours_scale_down_cron:
        windows = (("off-hours", args.off_hours_scale_down_cron, min(args.autoscaling_min, args.off_hours_max_instances),
                    args.off_hours_max_instances),
                   ("working-hours", args.off_hours_scale_up_cron, args.autoscaling_min, args.autoscaling_max))
        for label, cron, low, high in windows:
            aws.appautoscaling.ScheduledAction(
                f"{name}-{variant.name}-{label}",
                name=f"{name}-{variant.name}-{label}", schedule=cron, timezone=args.off_hours_timezone,
                scalable_target_action={"min_capacity": low, "max_capacity": high},
                **scaled, opts=child(parent),
            )
