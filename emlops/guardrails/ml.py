"""ML rules: SageMaker endpoints, models, monitoring, feature groups and pipelines.

Serverless variants are the exception AWS makes: they take no volume key, no VPC and no network
isolation (CreateEndpointConfig and CreateModel reject them), so rules about those look at the
endpoint configurations a model serves from and excuse models served only serverless, exactly as
components.endpoint does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Optional

from pulumi_policy import PolicyResource

from emlops.catalog import resources_sagemaker as sagemaker
from emlops.catalog.aws import has_local_storage
from emlops.catalog.resources_operations import SCALING_TARGET as _SCALING_TARGET
from emlops.guardrails.serving import asynchronous, shadow_variants
from emlops.guardrails.helpers import (
    UNKNOWN,
    Finding,
    Settings,
    actions_match,
    allow_statements,
    get,
    items,
    of_type,
    parse_json,
    pipeline_steps,
    principals,
    resource_rule,
    stack_rule,
    text,
)

MODEL = sagemaker.MODEL.token
ENDPOINT_CONFIG = sagemaker.ENDPOINT_CONFIG.token
ENDPOINT = sagemaker.ENDPOINT.token
DATA_QUALITY_JOB = sagemaker.DATA_QUALITY_JOB_DEFINITION.token
# pulumi_aws has no model-quality job definition; components/model_quality.py uses pulumi-aws-native's
MODEL_QUALITY_JOB = sagemaker.MODEL_QUALITY_JOB_DEFINITION.token
# and SageMaker Clarify's (components/clarify_monitoring.py), pulumi-aws-native's too
CLARIFY_JOBS = [sagemaker.MODEL_BIAS_JOB_DEFINITION.token, sagemaker.MODEL_EXPLAINABILITY_JOB_DEFINITION.token]
MONITORING_JOBS = [DATA_QUALITY_JOB, MODEL_QUALITY_JOB, *CLARIFY_JOBS]
MONITORING_SCHEDULE = sagemaker.MONITORING_SCHEDULE.token
FEATURE_GROUP = sagemaker.FEATURE_GROUP.token
PIPELINE = sagemaker.PIPELINE.token
SCALING_TARGET = _SCALING_TARGET.token
PACKAGE_GROUP_POLICY = sagemaker.MODEL_PACKAGE_GROUP_POLICY.token


def _variants(config_props: Any) -> list[Any]:
    return [v for v in items(get(config_props, "productionVariants")) if v is not UNKNOWN]


def _serverless(variant: Any) -> bool:
    return get(variant, "serverlessConfig") is not None


def _provisioned(config_props: Any) -> list[Any]:
    return [v for v in _variants(config_props) if not _serverless(v)]


# ------------------------------------------------------------------------------------------------
# Endpoint configurations and endpoints


@resource_rule("sagemaker-endpoint-config-kms", types=[ENDPOINT_CONFIG], severity="high",
               description="SageMaker endpoint configurations encrypt their instances' volumes with a KMS key.",
               remediation="ModelEndpoint encrypts volumes with the key of its context (EndpointContext.kms_key_arn: the "
                           "platform's data key) or a key of its own; for raw resources set kms_key_arn. Serverless "
                           "variants and instance types with local NVMe storage take no volume key.")
def endpoint_config_kms(props: Any, settings: Settings) -> Iterator[str]:
    provisioned = _provisioned(props)
    types = [get(v, "instanceType") for v in provisioned]
    if not provisioned or UNKNOWN in types or any(isinstance(t, str) and has_local_storage(t) for t in types):
        return
    if get(props, "kmsKeyArn") in (None, ""):
        yield "provisioned variants without a volume KMS key (kmsKeyArn)"


@resource_rule("sagemaker-data-capture-kms", types=[ENDPOINT_CONFIG], severity="high",
               description="Captured endpoint requests and responses are encrypted with a KMS key.",
               remediation="ModelEndpoint sets the endpoint's key on its data capture; for raw resources set "
                           "data_capture_config.kms_key_id.")
def data_capture_kms(props: Any, settings: Settings) -> Iterator[str]:
    capture = get(props, "dataCaptureConfig")
    if capture is None or capture is UNKNOWN or get(capture, "enableCapture") is False:
        return
    if get(capture, "kmsKeyId") in (None, ""):
        yield "data capture without a KMS key (dataCaptureConfig.kmsKeyId)"


@resource_rule("sagemaker-data-capture-enabled", types=[ENDPOINT_CONFIG], severity="medium", config=["environment"],
               description="Endpoints on instances capture their traffic in every environment but dev (monitoring "
                           "and retraining read it).",
               remediation="Leave models[].data_capture.enabled at its default (on outside dev); a ModelEndpoint of your "
                           "own captures when its context has a capture_bucket.")
def data_capture_enabled(props: Any, settings: Settings) -> Iterator[str]:
    if settings.environment == "dev" or not _provisioned(props):
        return
    enabled = get(props, "dataCaptureConfig", "enableCapture", default=False)
    if enabled is False:
        yield f"data capture is off in environment {settings.environment or '(not set)'!r}"


@resource_rule("sagemaker-prod-variant-instances", types=[ENDPOINT_CONFIG], severity="high", config=["production"],
               description="Production endpoints run every variant on at least 2 instances (no serverless).",
               remediation="Set variants[].initial_instance_count to 2 or more (and autoscaling min_instances >= 2).")
def prod_variant_instances(props: Any, settings: Settings) -> Iterator[str]:
    if not settings.production:
        return
    for variant in _variants(props):
        name = get(variant, "variantName", default="?")
        count = get(variant, "initialInstanceCount")
        if _serverless(variant):
            yield f"variant {name!r} is serverless"
        elif count is not UNKNOWN and (count is None or count < 2):
            yield f"variant {name!r} has {count or 0} instance(s)"


@resource_rule("sagemaker-prod-blue-green-rollback", types=[ENDPOINT], severity="high", config=["production"],
               description="Production endpoints update blue/green and roll back automatically on CloudWatch alarms.",
               remediation="ModelEndpoint sets deployment_config with a blue/green policy and its 5XX and latency "
                           "alarms; for raw endpoints set deployment_config.auto_rollback_configuration.alarms.")
def prod_blue_green_rollback(props: Any, settings: Settings) -> Iterator[str]:
    if not settings.production:
        return
    deployment = get(props, "deploymentConfig")
    if deployment is UNKNOWN:
        return
    if get(deployment, "blueGreenUpdatePolicy") is None:
        yield "no blue/green update policy (deploymentConfig.blueGreenUpdatePolicy)"
    alarms = get(deployment, "autoRollbackConfiguration", "alarms")
    if alarms is not UNKNOWN and not items(alarms):
        yield "no rollback alarms (deploymentConfig.autoRollbackConfiguration.alarms)"


@resource_rule("sagemaker-instance-type-allowed", types=[ENDPOINT_CONFIG, *MONITORING_JOBS, PIPELINE],
               severity="medium", config=["allowedInstanceTypes"],
               description="SageMaker endpoints, monitoring jobs and batch transform jobs use only the instance types "
                           "allowed in this environment (emlops:platform.guardrails.allowed_instance_types).",
               remediation="Choose an allowed instance type, or add it to guardrails.allowed_instance_types.")
def instance_type_allowed(props: Any, settings: Settings) -> Iterator[str]:
    allowed = settings.allowed_instance_types
    if not allowed:
        return
    types = [get(v, "instanceType") for v in [*_provisioned(props), *shadow_variants(props)]]
    types.append(get(props, "jobResources", "clusterConfig", "instanceType"))
    types += [get(arguments, "TransformResources", "InstanceType") for _, arguments in pipeline_steps(props, "Transform")]
    for instance_type in types:
        if isinstance(text(instance_type), str) and instance_type not in allowed:
            yield f"instance type {instance_type} is not allowed here (allowed: {', '.join(allowed)})"


# ------------------------------------------------------------------------------------------------
# Models: judged with the endpoint configurations that serve them


def _serverless_only_models(resources: list[PolicyResource]) -> set[str]:
    """Names of models every endpoint configuration serves only serverless."""
    serving: dict[str, list[bool]] = {}
    for config in of_type(resources, ENDPOINT_CONFIG):
        for variant in _variants(config.props):
            model = text(get(variant, "modelName"))
            if model:
                serving.setdefault(model, []).append(_serverless(variant))
    return {model for model, serverless in serving.items() if all(serverless)}


def _models(resources: list[PolicyResource]) -> Iterator[PolicyResource]:
    excused = _serverless_only_models(resources)
    for model in of_type(resources, MODEL):
        name = get(model.props, "name")
        if name is UNKNOWN or name in excused:
            continue
        yield model


@stack_rule("sagemaker-model-network-isolation", severity="high",
            description="SageMaker models run with network isolation (no outbound network from the container); "
                        "models served only by serverless variants are excepted (AWS does not support it there).",
            remediation="Leave models[].network_isolation at its default (on for instances); for raw resources set "
                        "enable_network_isolation.")
def model_network_isolation(resources: list[PolicyResource], settings: Settings) -> Iterator[Finding]:
    for model in _models(resources):
        if get(model.props, "enableNetworkIsolation", default=False) is False:
            yield (f"model {model.name!r} runs without network isolation", model.urn)


@stack_rule("sagemaker-model-vpc", severity="high",
            description="SageMaker models on instances run in private subnets (vpcConfig); models served only by "
                        "serverless variants are excepted (AWS does not support a VPC there).",
            remediation="Give the stack a network (network.managed or your VPC's private_subnet_ids); a ModelEndpoint "
                        "of your own runs where EndpointContext.placement says.")
def model_vpc(resources: list[PolicyResource], settings: Settings) -> Iterator[Finding]:
    for model in _models(resources):
        vpc = get(model.props, "vpcConfig")
        if vpc is UNKNOWN or UNKNOWN in (get(vpc, "subnets"), get(vpc, "securityGroupIds")):
            continue
        if vpc is None or not items(get(vpc, "subnets")) or not items(get(vpc, "securityGroupIds")):
            yield (f"model {model.name!r} does not run in a VPC", model.urn)


@stack_rule("sagemaker-pipeline-role-not-shared", severity="high",
            description="A SageMaker pipeline's role is not also the execution role of a served model (a model "
                        "container must not get the pipeline's training and registry permissions).",
            remediation="Give the pipeline its own role (RetrainingPipeline creates one).")
def pipeline_role_not_shared(resources: list[PolicyResource], settings: Settings) -> Iterator[Finding]:
    model_roles: dict[str, str] = {}
    for model in of_type(resources, MODEL):
        role = text(get(model.props, "executionRoleArn"))
        if role:
            model_roles.setdefault(role, model.name)
    for pipeline in of_type(resources, PIPELINE):
        role = text(get(pipeline.props, "roleArn"))
        if role in model_roles:
            yield (f"pipeline {pipeline.name!r} uses the execution role of model {model_roles[role]!r}", pipeline.urn)


# ------------------------------------------------------------------------------------------------
# Production endpoints: scaling and monitoring, found by the endpoint's name


def _endpoints(resources: list[PolicyResource]) -> Iterator[tuple[PolicyResource, str, Optional[PolicyResource]]]:
    """(endpoint, its name, its endpoint configuration) for endpoints whose name is known."""
    configs = {text(get(c.props, "name")): c for c in of_type(resources, ENDPOINT_CONFIG)}
    for endpoint in of_type(resources, ENDPOINT):
        name = text(get(endpoint.props, "name"))
        if name:
            yield endpoint, name, configs.get(text(get(endpoint.props, "endpointConfigName")))


@stack_rule("sagemaker-prod-endpoint-autoscaling", severity="high", config=["production"],
            description="Production endpoints scale every variant with an Application Auto Scaling target "
                        "(endpoint/<name>/variant/<variant>) that keeps at least 2 instances; asynchronous endpoints "
                        "may scale in to zero and scale out to at least 2.",
            remediation="Set models[].autoscaling with min_instances >= 2 (asynchronous: max_instances >= 2).")
def prod_endpoint_autoscaling(resources: list[PolicyResource], settings: Settings) -> Iterator[Finding]:
    if not settings.production:
        return
    candidates = [t for t in of_type(resources, SCALING_TARGET)
                  if get(t.props, "serviceNamespace") in ("sagemaker", UNKNOWN)]
    if any(get(t.props, "resourceId") is UNKNOWN for t in candidates):
        return  # a target whose resource is not known yet may be any variant's
    targets = {text(get(t.props, "resourceId")): t for t in candidates}
    for endpoint, name, config in _endpoints(resources):
        for variant in _provisioned(config.props) if config else []:
            variant_name = text(get(variant, "variantName"))
            if variant_name is None:
                continue
            target = targets.get(f"endpoint/{name}/variant/{variant_name}")
            if target is None:
                yield (f"endpoint {name!r} variant {variant_name!r} has no autoscaling target", endpoint.urn)
                continue
            if asynchronous(config.props):
                # requests queue while capacity comes back: an asynchronous endpoint may scale in to zero
                high = get(target.props, "maxCapacity")
                if isinstance(high, (int, float)) and high < 2:
                    yield (f"asynchronous endpoint {name!r} variant {variant_name!r} scales out to {high} "
                           "instance(s) at most", endpoint.urn)
                continue
            low = get(target.props, "minCapacity")
            if isinstance(low, (int, float)) and low < 2:
                yield (f"endpoint {name!r} variant {variant_name!r} may scale down to {low} instance(s)", endpoint.urn)


@stack_rule("sagemaker-prod-endpoint-monitoring", severity="high", config=["production"],
            description="Every production endpoint has a monitoring schedule whose job reads the endpoint's "
                        "captured data; multi-model endpoints are excepted (SageMaker Model Monitor does not support "
                        "them; their data capture rules still apply).",
            remediation="Enable models[].monitoring with a baseline (a ModelMonitor for the endpoint).")
def prod_endpoint_monitoring(resources: list[PolicyResource], settings: Settings) -> Iterator[Finding]:
    if not settings.production:
        return
    jobs = {text(get(j.props, "name")): j for j in of_type(resources, DATA_QUALITY_JOB)}
    monitored: set[Any] = set()
    for schedule in of_type(resources, MONITORING_SCHEDULE):
        job_name = get(schedule.props, "monitoringScheduleConfig", "monitoringJobDefinitionName")
        job = jobs.get(text(job_name))
        if job_name is UNKNOWN or (job is None and None in jobs):  # the job may be the one not named yet
            monitored.add(UNKNOWN)
        elif job is not None:
            monitored.add(get(job.props, "dataQualityJobInput", "endpointInput", "endpointName"))
    if UNKNOWN in monitored:
        return
    multi_model = {text(get(m.props, "name")) for m in of_type(resources, MODEL)
                   if get(m.props, "primaryContainer", "mode") == "MultiModel"}
    for endpoint, name, config in _endpoints(resources):
        served = {text(get(v, "modelName")) for v in _variants(config.props)} if config else set()
        if name not in monitored and not (served and served <= multi_model):
            yield (f"endpoint {name!r} has no monitoring schedule", endpoint.urn)


# ------------------------------------------------------------------------------------------------
# Monitoring jobs, feature groups, registry


@resource_rule("sagemaker-monitor-vpc", types=MONITORING_JOBS, severity="high",
               description="Model monitoring jobs run in private subnets (networkConfig.vpcConfig).",
               remediation="ModelMonitor runs its jobs where MonitorContext.placement says (the stack's private "
                           "subnets); for raw job definitions set network_config.vpc_config.")
def monitor_vpc(props: Any, settings: Settings) -> Iterator[str]:
    vpc = get(props, "networkConfig", "vpcConfig")
    if vpc is not UNKNOWN and get(vpc, "subnets") is not UNKNOWN and (vpc is None or not items(get(vpc, "subnets"))):
        yield "the monitoring job does not run in a VPC"


# Clarify's explainability job makes a shadow endpoint of the model and calls it through the SageMaker API, which
# network isolation forbids.
@resource_rule("sagemaker-monitor-network-isolation", types=MONITORING_JOBS[:-1], severity="medium",
               enforcement="advisory",
               description="Model monitoring jobs run with network isolation (Clarify's explainability jobs excepted: "
                           "they call a shadow endpoint of the model through the SageMaker API).",
               remediation="ModelMonitor sets networkConfig.enableNetworkIsolation; set it on raw job definitions.")
def monitor_network_isolation(props: Any, settings: Settings) -> Iterator[str]:
    if get(props, "networkConfig", "enableNetworkIsolation", default=False) is False:
        yield "the monitoring job runs without network isolation"


@resource_rule("sagemaker-monitoring-output-encrypted", types=MONITORING_JOBS, severity="high",
               description="Model monitoring reports and job volumes are encrypted with KMS.",
               remediation="Give MonitorContext.output_kms_key_arn and volume_kms_key_arn (the platform passes its data "
                           "key); for raw job definitions set the output config's kms_key_id and the cluster's "
                           "volume_kms_key_id.")
def monitoring_output_encrypted(props: Any, settings: Settings) -> Iterator[str]:
    # the job definition's own output config (data quality, model quality, bias or explainability)
    output = next((key for key in ("modelQualityJobOutputConfig", "modelBiasJobOutputConfig",
                                   "modelExplainabilityJobOutputConfig") if get(props, key) is not None),
                  "dataQualityJobOutputConfig")
    for label, path in (("reports", (output, "kmsKeyId")),
                        ("volumes", ("jobResources", "clusterConfig", "volumeKmsKeyId"))):
        if get(props, *path) in (None, ""):
            yield f"monitoring {label} are not encrypted ({'.'.join(path)} is not set)"


@resource_rule("sagemaker-feature-group-online-store-encrypted", types=[FEATURE_GROUP], severity="high",
               description="Feature group online stores are encrypted with a KMS key.",
               remediation="FeatureStore sets the platform's key; set online_store_config.security_config.kms_key_id.")
def feature_group_online_encrypted(props: Any, settings: Settings) -> Iterator[str]:
    online = get(props, "onlineStoreConfig")
    if online is None or online is UNKNOWN or get(online, "enableOnlineStore") is not True:
        return
    if get(online, "securityConfig", "kmsKeyId") in (None, ""):
        yield "the online store has no KMS key"


@resource_rule("sagemaker-feature-group-offline-store-encrypted", types=[FEATURE_GROUP], severity="high",
               description="Feature group offline stores write their S3 objects with a KMS key.",
               remediation="FeatureStore sets the platform's key; set offline_store_config.s3_storage_config."
                           "kms_key_id.")
def feature_group_offline_encrypted(props: Any, settings: Settings) -> Iterator[str]:
    offline = get(props, "offlineStoreConfig")
    if offline is None or offline is UNKNOWN:
        return
    if get(offline, "s3StorageConfig", "kmsKeyId") in (None, ""):
        yield "the offline store has no KMS key"


@resource_rule("sagemaker-model-package-group-not-public", types=[PACKAGE_GROUP_POLICY], severity="critical",
               description="Model package group policies share models with named accounts only, never with '*'.",
               remediation="List the consumer accounts (registry.consumer_account_ids).")
def package_group_not_public(props: Any, settings: Settings) -> Iterator[str]:
    for statement in allow_statements(parse_json(get(props, "resourcePolicy"))):
        if "*" in principals(statement):
            yield "the policy allows Principal '*'"


@resource_rule("sagemaker-model-package-group-approval-stays-with-the-registry", types=[PACKAGE_GROUP_POLICY],
               severity="high",
               description="Model package group policies let other accounts deploy versions, never approve or reject "
                           "them (sagemaker:UpdateModelPackage): a staging account must not approve what prod deploys.",
               remediation="Grant consumers DescribeModelPackage, ListModelPackages and CreateModel only "
                           "(ModelRegistry does); approve in the registry's account (emlops approve).")
def package_group_approval_stays_home(props: Any, settings: Settings) -> Iterator[str]:
    for statement in allow_statements(parse_json(get(props, "resourcePolicy"))):
        if actions_match(statement, "sagemaker:UpdateModelPackage"):
            yield f"the policy lets {', '.join(str(v) for v in principals(statement))} approve or reject versions"


POLICIES = [
    endpoint_config_kms, data_capture_kms, data_capture_enabled, prod_variant_instances, prod_blue_green_rollback,
    instance_type_allowed, model_network_isolation, model_vpc, pipeline_role_not_shared, prod_endpoint_autoscaling,
    prod_endpoint_monitoring, monitor_vpc, monitor_network_isolation, monitoring_output_encrypted,
    feature_group_online_encrypted, feature_group_offline_encrypted, package_group_not_public,
    package_group_approval_stays_home,
]
