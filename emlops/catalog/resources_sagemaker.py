"""Catalogue entries of SageMaker: serving, feature store, registry, monitoring and pipelines.

SageMaker lower-cases names in its ARNs. Models, endpoint configurations and monitoring job
definitions have no update API at all, so every input change replaces them.
"""

from __future__ import annotations

from emlops.catalog.resource_type import (ALL, BY_ARN, CreateRequest, Naming, ResourceType,
                                          digest)

_ARN = "arn:{partition}:sagemaker:{region}:{account}:"
# SageMaker's names (botocore's EndpointName, EntityName, MonitoringScheduleName, ...): 1-63 letters and
# digits with single or repeated '-' between them.
_SAGEMAKER_NAME = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
_AUTO_NAMED = Naming(auto=True, max_length=63, pattern=_SAGEMAKER_NAME)

# -- serving ----------------------------------------------------------------------------------------

MODEL = ResourceType(
    "aws:sagemaker/model:Model", label="model", taggable=True, naming=_AUTO_NAMED,
    arn=_ARN + "model/{name_lower}", replace_on_change=(ALL,),
    create=CreateRequest("sagemaker", "CreateModel", {"name": "ModelName"}),
)
ENDPOINT_CONFIG = ResourceType(
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration", label="endpoint config", taggable=True,
    naming=_AUTO_NAMED, arn=_ARN + "endpoint-config/{name_lower}", replace_on_change=(ALL,),
    create=CreateRequest(
        "sagemaker", "CreateEndpointConfig", {"name": "EndpointConfigName", "kmsKeyArn": "KmsKeyId"},
        # the provider turns namePrefix into `name`; the API only knows the final name
        ignore=frozenset({"namePrefix"}),
    ),
)
ENDPOINT = ResourceType(
    "aws:sagemaker/endpoint:Endpoint", label="endpoint", taggable=True, naming=_AUTO_NAMED,
    arn=_ARN + "endpoint/{name_lower}",
    replace_on_change=("name",),  # a new endpointConfigName is a (blue/green) update
    create=CreateRequest("sagemaker", "CreateEndpoint", {"name": "EndpointName"}),
)

# -- feature store and registry ---------------------------------------------------------------------

FEATURE_GROUP = ResourceType(
    "aws:sagemaker/featureGroup:FeatureGroup", label="feature group", stateful=True, taggable=True,
    naming=Naming("featureGroupName", max_length=64, pattern=r"[a-zA-Z0-9]([_-]*[a-zA-Z0-9]){0,63}"), arn=_ARN + "feature-group/{featureGroupName_lower}",
    physical_id="{featureGroupName}",
    # UpdateFeatureGroup changes only the online store's TTL, throughput and added features.
    replace_on_change=(
        "featureGroupName", "recordIdentifierFeatureName", "eventTimeFeatureName", "description", "roleArn",
        "featureDefinitions", "offlineStoreConfig", "onlineStoreConfig.enableOnlineStore",
        "onlineStoreConfig.securityConfig", "onlineStoreConfig.storageType"),
    create=CreateRequest("sagemaker", "CreateFeatureGroup"),
)
MODEL_PACKAGE_GROUP = ResourceType(
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup", label="model package group", stateful=True,
    taggable=True, naming=Naming("modelPackageGroupName", max_length=63, pattern=_SAGEMAKER_NAME),
    arn=_ARN + "model-package-group/{modelPackageGroupName_lower}", physical_id="{modelPackageGroupName}",
    replace_on_change=("modelPackageGroupName", "modelPackageGroupDescription"),
    create=CreateRequest("sagemaker", "CreateModelPackageGroup"),
)
MODEL_PACKAGE_GROUP_POLICY = ResourceType(
    "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy",
    replace_on_change=("modelPackageGroupName",),
)
MLFLOW_TRACKING_SERVER = ResourceType(
    "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer", label="MLflow tracking server", stateful=True,
    taggable=True, naming=Naming("trackingServerName", max_length=256, pattern=r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}"),
    arn=_ARN + "mlflow-tracking-server/{trackingServerName}", physical_id="{trackingServerName}",
    replace_on_change=("trackingServerName", "roleArn", "mlflowVersion"),
    outputs=lambda fields: {"trackingServerUrl": (
        f"https://t-{digest(MLFLOW_TRACKING_SERVER.token + '::' + fields['id'], 12)}.{fields['region']}."
        "experiments.sagemaker.aws")},
    create=CreateRequest("sagemaker", "CreateMlflowTrackingServer"),
)

# A served model's card (components/model_card.py: pulumi-aws-native's; pulumi-aws has none). Cloud Control knows
# it by its name; a new content or status is a new version of the same card, a new name or key a new card.
MODEL_CARD = ResourceType(
    "aws-native:sagemaker:ModelCard", label="model card", stateful=True, taggable=True,
    naming=Naming("modelCardName", max_length=63, pattern=_SAGEMAKER_NAME),
    arn=_ARN + "model-card/{modelCardName_lower}", arn_output="modelCardArn", physical_id="{modelCardName}",
    replace_on_change=("modelCardName", "securityConfig"),
    outputs={"modelCardVersion": 1, "creationTime": "2026-01-01T00:00:00Z",
             "modelCardProcessingStatus": "UnsetValue"},
    # the provider sends the content as the card's JSON document
    create=CreateRequest("sagemaker", "CreateModelCard", json_documents=frozenset({"content"})),
)

# -- monitoring -------------------------------------------------------------------------------------

DATA_QUALITY_JOB_DEFINITION = ResourceType(
    "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition", taggable=True,
    naming=Naming(auto=True, max_length=63, pattern=_SAGEMAKER_NAME, what="data-quality job definition"),
    arn=_ARN + "data-quality-job-definition/{name_lower}", replace_on_change=(ALL,),
    create=CreateRequest("sagemaker", "CreateDataQualityJobDefinition", {"name": "JobDefinitionName"}),
)
# pulumi-aws has none; components/model_quality.py uses pulumi-aws-native's (AWS Cloud Control), whose
# `tags` are a list of {key, value} and which Cloud Control identifies by its ARN.
MODEL_QUALITY_JOB_DEFINITION = ResourceType(
    "aws-native:sagemaker:ModelQualityJobDefinition", taggable=True,
    # pulumi-aws-native names it `<logical name>-<7 hex>`, within SageMaker's 63 characters
    naming=Naming("jobDefinitionName", auto=True, max_length=63, pattern=_SAGEMAKER_NAME,
                  what="model-quality job definition"),
    arn=_ARN + "model-quality-job-definition/{jobDefinitionName_lower}", arn_output="jobDefinitionArn",
    physical_id=BY_ARN,
    replace_on_change=(ALL,),  # Cloud Control: every property is create-only
    outputs={"creationTime": "2026-01-01T00:00:00Z"},
    create=CreateRequest("sagemaker", "CreateModelQualityJobDefinition"),
)
# SageMaker Clarify's bias and explainability monitors (components/clarify_monitoring.py), pulumi-aws-native's
# like the model-quality one: auto-named, known to Cloud Control by their ARN, every property create-only.
MODEL_BIAS_JOB_DEFINITION = ResourceType(
    "aws-native:sagemaker:ModelBiasJobDefinition", taggable=True,
    naming=Naming("jobDefinitionName", auto=True, max_length=63, pattern=_SAGEMAKER_NAME,
                  what="model-bias job definition"),
    arn=_ARN + "model-bias-job-definition/{jobDefinitionName_lower}", arn_output="jobDefinitionArn",
    physical_id=BY_ARN, replace_on_change=(ALL,), outputs={"creationTime": "2026-01-01T00:00:00Z"},
    create=CreateRequest("sagemaker", "CreateModelBiasJobDefinition"),
)
MODEL_EXPLAINABILITY_JOB_DEFINITION = ResourceType(
    "aws-native:sagemaker:ModelExplainabilityJobDefinition", taggable=True,
    naming=Naming("jobDefinitionName", auto=True, max_length=63, pattern=_SAGEMAKER_NAME,
                  what="model-explainability job definition"),
    arn=_ARN + "model-explainability-job-definition/{jobDefinitionName_lower}", arn_output="jobDefinitionArn",
    physical_id=BY_ARN, replace_on_change=(ALL,), outputs={"creationTime": "2026-01-01T00:00:00Z"},
    create=CreateRequest("sagemaker", "CreateModelExplainabilityJobDefinition"),
)
MONITORING_SCHEDULE = ResourceType(
    "aws:sagemaker/monitoringSchedule:MonitoringSchedule", label="monitoring schedule", taggable=True,
    naming=_AUTO_NAMED, arn=_ARN + "monitoring-schedule/{name_lower}", replace_on_change=("name",),
    create=CreateRequest("sagemaker", "CreateMonitoringSchedule", {"name": "MonitoringScheduleName"}),
)

# -- retraining -------------------------------------------------------------------------------------

PIPELINE = ResourceType(
    "aws:sagemaker/pipeline:Pipeline", label="SageMaker pipeline", taggable=True, naming=Naming("pipelineName", max_length=256, pattern=r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}"),
    arn=_ARN + "pipeline/{pipelineName_lower}", replace_on_change=("pipelineName",),
    # the provider generates CreatePipeline's idempotency token
    create=CreateRequest("sagemaker", "CreatePipeline", provider_supplied=frozenset({"ClientRequestToken"})),
)
