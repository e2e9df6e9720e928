"""ModelEndpoint: one model on a SageMaker endpoint with capture, safe rollouts, rollback and autoscaling.

SageMaker models and endpoint configurations are immutable: a change must create new ones and point
the endpoint at them, never delete the live one first. Both are auto-named, so Pulumi replaces them
create-before-delete and the endpoint update is a blue/green deployment (canary or linear when
configured) that rolls back on the alarms this component creates. The endpoint itself keeps the
stable name callers invoke it by: `<component name>`.

How to serve is its settings (`EndpointSettings`); the model's artifact, image, key, capture bucket,
network, alerts topic and governance are its context (`EndpointContext`); both in endpoint_args.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Optional

import pulumi
import pulumi_aws as aws

from emlops.catalog.aws import has_local_storage
from emlops.catalog.resources_operations import METRIC_ALARM, SCALING_POLICY, SCHEDULED_ACTION
from emlops.catalog.resources_sagemaker import ENDPOINT, ENDPOINT_CONFIG, MODEL
from emlops.components.containers import model_container
from emlops.components.endpoint_args import EndpointContext, EndpointSettings, ModelArtifact, check_environment_names
from emlops.components.endpoint_modes import AsyncInferenceSettings
from emlops.catalog.resources_iam import ROLE
from emlops.components.endpoint_iam import execution_role, execution_role_name
from emlops.components.endpoint_scaling import (OFF_HOURS, WORKING_HOURS, autoscale, backlog_policy_name,
                                                scale_out_from_zero_name, scaling_policy_name, scheduled_action_name)
from emlops.components.iam import role_logical_name, role_names
from emlops.components.kms import KmsKey, KmsKeyArgs
from emlops.components.naming import AUTO_SUFFIX, DerivedName, auto_named, given
from emlops.components.network_access import https_only_security_group
from emlops.components.options import child, type_token
from emlops.components.outputs import concat
from emlops.components.settings import AtKey

__all__ = ["EndpointContext", "EndpointSettings", "ModelArtifact", "ModelEndpoint"]

_TRAFFIC = {"all_at_once": "ALL_AT_ONCE", "canary": "CANARY", "linear": "LINEAR"}
_SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
# The longest name an endpoint derives is its execution role's, "<endpoint>-execution-role" plus Pulumi's
# 8-character suffix, and IAM role names are at most 64 characters.
MAX_ENDPOINT_NAME = ROLE.naming.max_length - len(role_logical_name(execution_role_name(""))) - len(AUTO_SUFFIX)


def check_endpoint_name(name: str) -> None:
    """SageMaker's name pattern, leaving room for the children's auto-named suffixes."""
    if not _SAGEMAKER_NAME.match(name) or len(name) > MAX_ENDPOINT_NAME:
        raise ValueError(f"endpoint name {name!r} must be at most {MAX_ENDPOINT_NAME} ASCII letters, digits and "
                         "'-', starting and ending with a letter or digit")


# Large-model images load tens of gigabytes before their health check answers (SageMaker's default is far shorter).
LARGE_MODEL_TIMEOUT_SECONDS = 1200


def model_logical_name(name: str) -> str:
    return f"{name}-model"


def challenger_logical_name(name: str) -> str:
    return f"{name}-challenger-model"




def config_logical_name(name: str) -> str:
    return f"{name}-config"


def alarm_logical_name(name: str, variant: str, signal: str) -> str:
    return f"{name}-{variant}-{signal}"




def derived_names(name: str, settings: EndpointSettings) -> list[DerivedName]:
    """The physical names a ModelEndpoint called `name` gives its children (naming.py): the SageMaker model,
    endpoint configuration and endpoint, the execution role, the rollback alarms and the autoscaling names."""
    variants = [v.name for v in settings.variants] or ["serverless"]
    names = [auto_named(MODEL.token, model_logical_name(name)), auto_named(ENDPOINT_CONFIG.token,
             config_logical_name(name)), given(ENDPOINT.token, name), *role_names(execution_role_name(name))]
    names += [auto_named(METRIC_ALARM.token, alarm_logical_name(name, variant, signal))
              for variant in variants for signal in ("5xx", "latency")]
    if settings.shadow is not None:
        names.append(auto_named(MODEL.token, challenger_logical_name(name)))
    asynchronous = settings.serving == "async"
    if settings.autoscaling is not None:
        policy = backlog_policy_name if asynchronous else scaling_policy_name
        names += [given(SCALING_POLICY.token, policy(name, variant)) for variant in variants]
        if asynchronous and settings.autoscaling.min_instances == 0:
            names += [given(SCALING_POLICY.token, scale_out_from_zero_name(name, variant)) for variant in variants]
            names += [auto_named(METRIC_ALARM.token, scale_out_from_zero_name(name, variant)) for variant in variants]
        if settings.autoscaling.off_hours is not None:
            names += [given(SCHEDULED_ACTION.token, scheduled_action_name(name, variant, window))
                      for variant in variants for window in (OFF_HOURS, WORKING_HOURS)]
    return names


class ModelEndpoint(pulumi.ComponentResource):
    """A SageMaker Model, EndpointConfiguration and Endpoint, with their role, network and alarms."""

    endpoint: aws.sagemaker.Endpoint
    endpoint_name: pulumi.Output[str]
    endpoint_arn: pulumi.Output[str]
    model_name: pulumi.Output[str]
    model_artifact_uri: pulumi.Input[str]
    data_capture_uri: Optional[pulumi.Output[str]]
    alarms: list[aws.cloudwatch.MetricAlarm]

    def __init__(self, name: str, settings: EndpointSettings, context: EndpointContext,
                 opts: Optional[pulumi.ResourceOptions] = None):
        _check(name, settings, context)
        super().__init__(type_token("ModelEndpoint"), name, None, opts)
        serverless = settings.serverless is not None
        governance = context.governance.with_tags({"model-endpoint": name})
        tags = dict(governance.tags)

        kms_key_arn = context.kms_key_arn
        # serverless endpoints have no volume to encrypt and cannot capture: no key to create
        if kms_key_arn is None and not serverless:
            kms_key_arn = KmsKey(f"{name}-key", KmsKeyArgs(
                description=f"Encrypts the volumes and captured data of the {name} endpoint", tags=tags,
            ), opts=child(self)).arn

        capture_prefix = f"datacapture/{name}/"
        capture = context.capture_bucket if settings.data_capture.enabled is not False else None
        self.data_capture_uri = None
        if capture is not None:
            self.data_capture_uri = concat("s3://", capture.bucket_name, "/", capture_prefix.rstrip("/"))

        placement = context.placement
        security_group_ids = None
        if not serverless:
            security_group_ids = list(placement.security_group_ids) or [
                https_only_security_group(self, name, placement.vpc_id, "SageMaker endpoint", tags).id]

        asynchronous = settings.async_inference if settings.serving == "async" else None
        self.success_topic_arn = context.success_topic_arn if asynchronous is not None else None
        role, policies = execution_role(self, name, settings, context, capture, kms_key_arn, capture_prefix,
                                        governance, self.success_topic_arn)
        self.model_artifact_uri = context.artifact.uri
        vpc_config = None if security_group_ids is None else {
            "subnets": list(placement.subnet_ids), "security_group_ids": security_group_ids,
        }
        model = aws.sagemaker.Model(
            model_logical_name(name),
            execution_role_arn=role.arn,
            primary_container=_container(settings, context.artifact, context.image_uri, context.secret_environment),
            enable_network_isolation=settings.isolated,
            vpc_config=vpc_config,
            tags=tags,
            # SageMaker checks the role's access when the model is created: wait for its policies.
            opts=child(self, depends_on=policies),
        )
        self.model_name = model.name
        shadow_variants = None
        if settings.shadow is not None:
            challenger = aws.sagemaker.Model(
                challenger_logical_name(name),
                execution_role_arn=role.arn,
                primary_container=_container(settings, context.challenger, context.challenger_image_uri,
                                             context.secret_environment),
                enable_network_isolation=settings.isolated,
                vpc_config=vpc_config,
                tags={**tags, "model-role": "challenger"},
                opts=child(self, depends_on=policies),
            )
            shadow_variants = [_shadow_variant(settings, context, challenger.name)]
        config = aws.sagemaker.EndpointConfiguration(
            config_logical_name(name),
            production_variants=_variants(settings, context, model.name),
            shadow_production_variants=shadow_variants,
            async_inference_config=None if asynchronous is None else _async_config(
                asynchronous, context, kms_key_arn, self.success_topic_arn),
            kms_key_arn=None if serverless or any(has_local_storage(v.instance_type) for v in settings.variants)
            else kms_key_arn,
            data_capture_config=None if self.data_capture_uri is None else {
                "enable_capture": True,
                "initial_sampling_percentage": settings.data_capture.sampling_percentage,
                "destination_s3_uri": self.data_capture_uri,
                "kms_key_id": kms_key_arn,
                "capture_options": [{"capture_mode": "Input"}, {"capture_mode": "Output"}],
                "capture_content_type_header": {
                    "csv_content_types": list(settings.data_capture.csv_content_types),
                    "json_content_types": list(settings.data_capture.json_content_types),
                },
            },
            tags=tags,
            opts=child(self),
        )
        variant_names = [v.name for v in settings.variants] or ["serverless"]
        self.alarms = [alarm for variant in variant_names
                       for alarm in _rollback_alarms(self, name, variant, settings, context.alarm_topic_arn, tags)]
        self.endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=name,
            endpoint_config_name=config.name,
            deployment_config=_deployment(settings, self.alarms),
            tags=tags,
            opts=child(self),
        )
        self.endpoint_name = self.endpoint.name
        self.endpoint_arn = self.endpoint.arn
        if settings.autoscaling is not None:
            autoscale(self, self.endpoint, name, settings, tags)
        self.register_outputs({
            "endpointName": self.endpoint_name,
            "endpointArn": self.endpoint_arn,
            "modelArtifactUri": self.model_artifact_uri,
            "dataCaptureUri": self.data_capture_uri,
            "asyncSuccessTopicArn": self.success_topic_arn,
        })


def _check(name: str, settings: EndpointSettings, context: EndpointContext) -> None:
    """What the settings alone cannot know: the context fits them (before anything is created)."""
    check_endpoint_name(name)
    if context.artifact.package_arn is None and context.image_uri is None:
        raise ValueError("an image_uri is required unless the artifact is a model package")
    if context.artifact.package_arn is not None and context.image_uri is not None:
        raise ValueError("a model package names its own image; drop image_uri")
    if settings.serverless is None and context.placement is None:
        raise ValueError("provisioned variants run in private subnets: give a placement (vpc_id and subnet_ids)")
    if settings.serverless is not None and context.placement is not None:
        raise ValueError("serverless endpoints have no VPC: drop the placement")
    if settings.serverless is not None and context.capture_bucket is not None:
        raise ValueError("serverless endpoints cannot capture data; drop the capture bucket")
    if settings.data_capture.enabled and context.capture_bucket is None:
        raise ValueError("data_capture.enabled needs a capture bucket")
    if settings.serving == "async" and context.inference_bucket is None:
        raise ValueError("asynchronous endpoints read requests from and write responses to S3: give an "
                         "inference_bucket")
    if settings.serving == "async" and context.alarm_topic_arn is None:
        raise ValueError("asynchronous endpoints announce failures on the alerts topic: give alarm_topic_arn")
    if settings.shadow is not None and context.challenger is None:
        raise ValueError("a shadow variant serves a challenger: give challenger")
    if settings.shadow is None and context.challenger is not None:
        raise ValueError("a challenger is served by a shadow variant: give settings.shadow or drop challenger")
    if context.challenger is not None and context.challenger.package_arn is None and context.challenger_image_uri \
            is None:
        raise ValueError("a challenger_image_uri is required unless the challenger is a model package")
    if settings.mode == "multi_model" and (context.artifact.package_arn is not None or context.artifact.compressed):
        raise ValueError("a multi-model endpoint serves the archives under an S3 prefix: the artifact must be an "
                         "uncompressed prefix (compressed=False) ending in '/'")
    if context.secret_environment:
        if context.artifact.package_arn is not None:
            raise ValueError("a model package names its own container and environment; drop secret_environment")
        try:
            check_environment_names([*settings.environment, *context.secret_environment], at="secret_environment.")
        except AtKey as exc:
            raise ValueError(f"{exc.path}: {exc}") from None
        both = sorted(set(settings.environment) & set(context.secret_environment))
        if both:
            raise ValueError(f"{', '.join(both)}: in both environment and secret_environment; a variable is either "
                             "plain or secret")


def _container(settings: EndpointSettings, artifact: ModelArtifact, image_uri: Optional[pulumi.Input[str]],
               secret_environment: Mapping[str, pulumi.Input[str]]) -> dict:
    environment = {**settings.environment,
                   **{name: pulumi.Output.secret(value) for name, value in secret_environment.items()}}
    return model_container(artifact, image_uri, environment, multi_model=settings.mode == "multi_model")


def _variants(settings: EndpointSettings, context: EndpointContext, model_name: pulumi.Output[str]) -> list[dict]:
    if settings.serverless is not None:
        return [{"variant_name": "serverless", "model_name": model_name, "serverless_config": {
            "memory_size_in_mb": settings.serverless.memory_mb,
            "max_concurrency": settings.serverless.max_concurrency,
        }}]
    return [{
        "variant_name": v.name, "model_name": model_name, "instance_type": v.instance_type,
        "initial_instance_count": v.initial_instance_count, "initial_variant_weight": v.weight,
        **_instance_options(settings, context),
    } for v in settings.variants]


def _instance_options(settings: EndpointSettings, context: EndpointContext) -> dict:
    """Start-up health check, model download timeout and volume size of a variant on instances, where set (large
    model images get long timeouts by default)."""
    default = LARGE_MODEL_TIMEOUT_SECONDS if context.large_model else None
    options = {
        "container_startup_health_check_timeout_in_seconds": settings.container_startup_timeout_seconds or default,
        "model_data_download_timeout_in_seconds": settings.model_download_timeout_seconds or default,
        "volume_size_in_gb": settings.volume_size_gb,
    }
    return {key: value for key, value in options.items() if value is not None}


def _shadow_variant(settings: EndpointSettings, context: EndpointContext, model_name: pulumi.Output[str]) -> dict:
    """The challenger's variant. SageMaker copies to it the share of the production variant's requests that its
    weight is of the production variant's weight."""
    shadow, production = settings.shadow, settings.variants[0]
    return {
        "variant_name": shadow.variant_name, "model_name": model_name, "instance_type": settings.shadow_instance_type,
        "initial_instance_count": shadow.initial_instance_count,
        "initial_variant_weight": production.weight * shadow.traffic_percent / 100,
        **_instance_options(settings, context),
    }


def _async_config(settings: AsyncInferenceSettings, context: EndpointContext, kms_key_arn: pulumi.Input[str],
                  success_topic_arn: Optional[pulumi.Input[str]]) -> dict:
    bucket = context.inference_bucket.bucket_name
    notification: dict = {"error_topic": context.alarm_topic_arn}
    if success_topic_arn is not None:
        notification["success_topic"] = success_topic_arn
    return {
        "output_config": {
            "s3_output_path": concat("s3://", bucket, "/", settings.responses_prefix),
            "s3_failure_path": concat("s3://", bucket, "/", settings.failures_prefix),
            "kms_key_id": kms_key_arn,
            "notification_config": notification,
        },
        "client_config": {"max_concurrent_invocations_per_instance": settings.max_concurrent_invocations_per_instance},
    }


def _rollback_alarms(parent: pulumi.Resource, name: str, variant: str, settings: EndpointSettings,
                     topic_arn: Optional[pulumi.Input[str]], tags: dict) -> list[aws.cloudwatch.MetricAlarm]:
    alarms = settings.alarms
    dimensions = {"EndpointName": name, "VariantName": variant}
    notify = {} if topic_arn is None else dict(alarm_actions=[topic_arn], ok_actions=[topic_arn])
    common = dict(namespace="AWS/SageMaker", dimensions=dimensions, period=60, evaluation_periods=3,
                  datapoints_to_alarm=2, treat_missing_data="notBreaching", tags=tags, opts=child(parent), **notify)
    errors = aws.cloudwatch.MetricAlarm(
        alarm_logical_name(name, variant, "5xx"),
        alarm_description=f"{name}/{variant}: {alarms.invocation_5xx_errors}+ 5XX errors a minute; "
                          "rolls back deployments",
        metric_name="Invocation5XXErrors", statistic="Sum",
        comparison_operator="GreaterThanOrEqualToThreshold", threshold=alarms.invocation_5xx_errors, **common,
    )
    latency = aws.cloudwatch.MetricAlarm(
        alarm_logical_name(name, variant, "latency"),
        alarm_description=f"{name}/{variant}: p99 model latency above {alarms.model_latency_ms} ms; "
                          "rolls back deployments",
        # ModelLatency is published in microseconds.
        metric_name="ModelLatency", extended_statistic="p99",
        comparison_operator="GreaterThanThreshold", threshold=alarms.model_latency_ms * 1000, **common,
    )
    return [errors, latency]


def _deployment(settings: EndpointSettings, alarms: list[aws.cloudwatch.MetricAlarm]) -> dict:
    rollout = settings.deployment
    routing: dict = {"type": _TRAFFIC[rollout.strategy], "wait_interval_in_seconds": rollout.wait_minutes * 60}
    if rollout.strategy == "canary":
        routing["canary_size"] = {"type": "CAPACITY_PERCENT", "value": rollout.canary_percent}
    elif rollout.strategy == "linear":
        routing["linear_step_size"] = {"type": "CAPACITY_PERCENT", "value": rollout.linear_step_percent}
    return {
        "blue_green_update_policy": {
            "traffic_routing_configuration": routing,
            "termination_wait_in_seconds": rollout.termination_wait_minutes * 60,
            "maximum_execution_timeout_in_seconds": rollout.max_execution_timeout_minutes * 60,
        },
        "auto_rollback_configuration": {"alarms": [{"alarm_name": alarm.name} for alarm in alarms]},
    }
