"""Plan inputs -> AWS create requests, checked against botocore's service models: exact values, exact messages."""

from __future__ import annotations

import copy
import re

import pytest

from emlops.catalog.requests import (
    SUPPORTED_TYPES, ApiRequest, UnsupportedResource, to_api_request, validate_request,
)

MODEL = "aws:sagemaker/model:Model"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"

ROLE = "arn:aws:iam::333333333333:role/churn-model-role-1a2b3c4"
KEY = "arn:aws:kms:eu-west-1:333333333333:key/1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d"
IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1"
TAGS = {"cost-center": "cc-1234", "data-classification": "confidential", "owner": "ml-platform"}
API_TAGS = [{"Key": "cost-center", "Value": "cc-1234"}, {"Key": "data-classification", "Value": "confidential"},
            {"Key": "owner", "Value": "ml-platform"}]

# Inputs as the plan writes them: camelCase, keys sorted, pulumi_aws v7's `region` included.
MODEL_INPUTS = {
    "enableNetworkIsolation": True,
    "executionRoleArn": ROLE,
    "name": "churn-model-5d6e7f8",
    "primaryContainer": {
        "environment": {"SAGEMAKER_CONTAINER_LOG_LEVEL": "20", "SAGEMAKER_REGION": "eu-west-1"},
        "image": IMAGE,
        "mode": "SingleModel",
        "modelDataUrl": "s3://churn-artifacts-9a8b7c6/models/churn/v3/model.tar.gz",
    },
    "region": "eu-west-1",
    "tags": TAGS,
    "vpcConfig": {
        "securityGroupIds": ["sg-0fedcba9876543210"],
        "subnets": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
    },
}
CONFIG_INPUTS = {
    "dataCaptureConfig": {
        "captureContentTypeHeader": {"csvContentTypes": ["text/csv"], "jsonContentTypes": ["application/json"]},
        "captureOptions": [{"captureMode": "Input"}, {"captureMode": "Output"}],
        "destinationS3Uri": "s3://churn-capture-3c4d5e6/data-capture",
        "enableCapture": True,
        "initialSamplingPercentage": 20,
        "kmsKeyId": KEY,
    },
    "kmsKeyArn": KEY,
    "name": "churn-config-4f1c2ab",
    "productionVariants": [
        {"initialInstanceCount": 2, "initialVariantWeight": 0.9, "instanceType": "ml.m5.xlarge",
         "modelName": "churn-model-5d6e7f8", "variantName": "champion"},
        {"initialInstanceCount": 1, "initialVariantWeight": 0.1, "instanceType": "ml.m5.large",
         "modelName": "churn-model-challenger-8e9f0a1", "variantName": "challenger", "volumeSizeInGb": 30},
    ],
    "region": "eu-west-1",
    "tags": TAGS,
}
ENDPOINT_INPUTS = {
    "deploymentConfig": {
        "autoRollbackConfiguration": {"alarms": [{"alarmName": "churn-endpoint-5xx-errors"},
                                                 {"alarmName": "churn-endpoint-model-latency"}]},
        "blueGreenUpdatePolicy": {
            "maximumExecutionTimeoutInSeconds": 3600,
            "terminationWaitInSeconds": 600,
            "trafficRoutingConfiguration": {"canarySize": {"type": "CAPACITY_PERCENT", "value": 10},
                                            "type": "CANARY", "waitIntervalInSeconds": 600},
        },
    },
    "endpointConfigName": "churn-config-4f1c2ab",
    "name": "churn-endpoint-7d9e1f0",
    "region": "eu-west-1",
    "tags": TAGS,
}


def problems(resource_type: str, inputs: dict) -> list[str]:
    return validate_request(to_api_request(resource_type, inputs))


def with_(inputs: dict, path: str, value: object) -> dict:
    """A deep copy of `inputs` with the dotted `path` (list indexes as numbers) set, or removed if None."""
    out = copy.deepcopy(inputs)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    target = out
    for part in parents:
        target = target[part]
    if value is None:
        del target[last]
    else:
        target[last] = value
    return out


# --- valid requests --------------------------------------------------------------------------------

def test_model_translates_to_create_model():
    request = to_api_request(MODEL, MODEL_INPUTS)
    assert request == ApiRequest("sagemaker", "CreateModel", {
        "EnableNetworkIsolation": True,
        "ExecutionRoleArn": ROLE,
        "ModelName": "churn-model-5d6e7f8",
        "PrimaryContainer": {
            "Environment": {"SAGEMAKER_CONTAINER_LOG_LEVEL": "20", "SAGEMAKER_REGION": "eu-west-1"},
            "Image": IMAGE,
            "Mode": "SingleModel",
            "ModelDataUrl": "s3://churn-artifacts-9a8b7c6/models/churn/v3/model.tar.gz",
        },
        "Tags": API_TAGS,
        "VpcConfig": {
            "SecurityGroupIds": ["sg-0fedcba9876543210"],
            "Subnets": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
        },
    })
    assert validate_request(request) == []


def test_provisioned_endpoint_configuration_with_kms_data_capture():
    request = to_api_request(CONFIG, CONFIG_INPUTS)
    assert request == ApiRequest("sagemaker", "CreateEndpointConfig", {
        "DataCaptureConfig": {
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]},
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "DestinationS3Uri": "s3://churn-capture-3c4d5e6/data-capture",
            "EnableCapture": True,
            "InitialSamplingPercentage": 20,
            "KmsKeyId": KEY,
        },
        "KmsKeyId": KEY,
        "EndpointConfigName": "churn-config-4f1c2ab",
        "ProductionVariants": [
            {"InitialInstanceCount": 2, "InitialVariantWeight": 0.9, "InstanceType": "ml.m5.xlarge",
             "ModelName": "churn-model-5d6e7f8", "VariantName": "champion"},
            {"InitialInstanceCount": 1, "InitialVariantWeight": 0.1, "InstanceType": "ml.m5.large",
             "ModelName": "churn-model-challenger-8e9f0a1", "VariantName": "challenger", "VolumeSizeInGB": 30},
        ],
        "Tags": API_TAGS,
    })
    assert validate_request(request) == []


def test_serverless_endpoint_configuration_and_whole_floats_become_integers():
    request = to_api_request(CONFIG, {
        "name": "churn-dev-config-0a1b2c3",
        "productionVariants": [{
            "modelName": "churn-model-5d6e7f8", "variantName": "AllTraffic",
            "serverlessConfig": {"maxConcurrency": 5.0, "memorySizeInMb": 2048, "provisionedConcurrency": 1},
        }],
    })
    assert request.params == {
        "EndpointConfigName": "churn-dev-config-0a1b2c3",
        "ProductionVariants": [{
            "ModelName": "churn-model-5d6e7f8", "VariantName": "AllTraffic",
            "ServerlessConfig": {"MaxConcurrency": 5, "MemorySizeInMB": 2048, "ProvisionedConcurrency": 1},
        }],
    }
    assert type(request.params["ProductionVariants"][0]["ServerlessConfig"]["MaxConcurrency"]) is int
    assert validate_request(request) == []


def test_endpoint_with_canary_rollout_and_rollback_alarms():
    request = to_api_request(ENDPOINT, ENDPOINT_INPUTS)
    assert request == ApiRequest("sagemaker", "CreateEndpoint", {
        "DeploymentConfig": {
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "churn-endpoint-5xx-errors"},
                                                     {"AlarmName": "churn-endpoint-model-latency"}]},
            "BlueGreenUpdatePolicy": {
                "MaximumExecutionTimeoutInSeconds": 3600,
                "TerminationWaitInSeconds": 600,
                "TrafficRoutingConfiguration": {"CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
                                                "Type": "CANARY", "WaitIntervalInSeconds": 600},
            },
        },
        "EndpointConfigName": "churn-config-4f1c2ab",
        "EndpointName": "churn-endpoint-7d9e1f0",
        "Tags": API_TAGS,
    })
    assert validate_request(request) == []


def test_endpoint_with_linear_rollout():
    inputs = with_(ENDPOINT_INPUTS, "deploymentConfig.blueGreenUpdatePolicy.trafficRoutingConfiguration",
                   {"linearStepSize": {"type": "INSTANCE_COUNT", "value": 1}, "type": "LINEAR",
                    "waitIntervalInSeconds": 300})
    request = to_api_request(ENDPOINT, inputs)
    assert request.params["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {
        "LinearStepSize": {"Type": "INSTANCE_COUNT", "Value": 1}, "Type": "LINEAR", "WaitIntervalInSeconds": 300}
    assert validate_request(request) == []


def test_dashboard_translates_to_put_dashboard():
    body = '{"widgets": [{"type": "text", "x": 0, "y": 0, "width": 24, "height": 2, "properties": {"markdown": "# dev"}}]}'
    request = to_api_request(DASHBOARD, {"dashboardBody": body, "dashboardName": "dev-churn", "region": "eu-west-1"})
    assert request == ApiRequest("cloudwatch", "PutDashboard", {"DashboardBody": body, "DashboardName": "dev-churn"})
    assert validate_request(request) == []
    assert problems(DASHBOARD, {"dashboardName": "dev-churn"}) == ["PutDashboard: DashboardBody: missing required member"]


def test_pluralised_pulumi_blocks_become_the_api_structure():
    # The bridge names Terraform blocks in the plural list form; the API has a single structure.
    inputs = with_(MODEL_INPUTS, "primaryContainer", {"image": IMAGE, "modelDataSource": {"s3DataSources": [
        {"compressionType": "None", "s3DataType": "S3Prefix",
         "s3Uri": "s3://churn-artifacts-9a8b7c6/models/churn/v3/"}]}})
    request = to_api_request(MODEL, inputs)
    assert request.params["PrimaryContainer"]["ModelDataSource"] == {"S3DataSource": {
        "CompressionType": "None", "S3DataType": "S3Prefix", "S3Uri": "s3://churn-artifacts-9a8b7c6/models/churn/v3/"}}
    assert validate_request(request) == []
    config = with_(CONFIG_INPUTS, "productionVariants.0.routingConfigs",
                   [{"routingStrategy": "LEAST_OUTSTANDING_REQUESTS"}])
    assert to_api_request(CONFIG, config).params["ProductionVariants"][0]["RoutingConfig"] == {
        "RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}


def test_params_are_accepted_by_a_real_botocore_client():
    """`params` go to botocore as they are: a stubbed client (no network) takes them unchanged."""
    import botocore.session
    from botocore.stub import Stubber

    client = botocore.session.get_session().create_client(
        "sagemaker", region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    params = to_api_request(MODEL, MODEL_INPUTS).params
    with Stubber(client) as stubber:
        arn = "arn:aws:sagemaker:eu-west-1:333333333333:model/churn-model-5d6e7f8"
        stubber.add_response("create_model", {"ModelArn": arn}, expected_params=params)
        client.create_model(**params)


# --- invalid requests: exact lines -----------------------------------------------------------------

def test_instance_type_outside_the_enum():
    assert problems(CONFIG, with_(CONFIG_INPUTS, "productionVariants.0.instanceType", "ml.m5.hyuge")) == [
        "CreateEndpointConfig: ProductionVariants[0].InstanceType: 'ml.m5.hyuge' is not an allowed value "
        "(closest: 'ml.m5.large', 'ml.m5d.large', 'ml.m5.xlarge')"]


def test_small_enums_list_every_allowed_value():
    assert problems(CONFIG, with_(CONFIG_INPUTS, "dataCaptureConfig.captureOptions.1.captureMode", "Inputs")) == [
        "CreateEndpointConfig: DataCaptureConfig.CaptureOptions[1].CaptureMode: 'Inputs' is not one of "
        "'Input', 'Output', 'InputAndOutput'"]


def test_name_violating_the_pattern():
    assert problems(MODEL, with_(MODEL_INPUTS, "name", "churn_model!")) == [
        r"CreateModel: ModelName: 'churn_model!' does not match pattern [a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?"]


def test_tag_value_outside_the_unicode_class_pattern():
    # AWS writes tag patterns with Java's \p{L}/\p{Z}/\p{N}; they are checked, not skipped.
    assert problems(MODEL, with_(MODEL_INPUTS, "tags", {"owner": "R&D", "team": "Équipe données 2"})) == [
        r"CreateModel: Tags[0].Value: 'R&D' does not match pattern ([\p{L}\p{Z}\p{N}_.:/=+\-@]*)"]


def test_map_keys_are_checked_too():
    assert problems(MODEL, with_(MODEL_INPUTS, "primaryContainer.environment.LOG-LEVEL", "20")) == [
        "CreateModel: PrimaryContainer.Environment (key: LOG-LEVEL): 'LOG-LEVEL' does not match pattern "
        "[a-zA-Z_][a-zA-Z0-9_]*"]


def test_missing_required_member():
    assert problems(ENDPOINT, with_(ENDPOINT_INPUTS, "endpointConfigName", None)) == [
        "CreateEndpoint: EndpointConfigName: missing required member"]
    assert problems(ENDPOINT, with_(ENDPOINT_INPUTS, "deploymentConfig.blueGreenUpdatePolicy."
                                    "trafficRoutingConfiguration.canarySize.value", None)) == [
        "CreateEndpoint: DeploymentConfig.BlueGreenUpdatePolicy.TrafficRoutingConfiguration.CanarySize.Value: "
        "missing required member"]


def test_wrong_types():
    inputs = with_(CONFIG_INPUTS, "productionVariants.0.initialInstanceCount", "2")
    inputs = with_(inputs, "dataCaptureConfig.enableCapture", "true")
    inputs = with_(inputs, "productionVariants.1.volumeSizeInGb", 30.5)
    assert problems(CONFIG, inputs) == [
        "CreateEndpointConfig: DataCaptureConfig.EnableCapture: expected boolean, got str 'true'",
        "CreateEndpointConfig: ProductionVariants[0].InitialInstanceCount: expected integer, got str '2'",
        "CreateEndpointConfig: ProductionVariants[1].VolumeSizeInGB: expected integer, got float 30.5",
    ]
    assert problems(ENDPOINT, with_(ENDPOINT_INPUTS, "deploymentConfig.blueGreenUpdatePolicy."
                                    "terminationWaitInSeconds", True)) == [
        "CreateEndpoint: DeploymentConfig.BlueGreenUpdatePolicy.TerminationWaitInSeconds: expected integer, got bool True"]


def test_out_of_range_values_and_lengths():
    # SamplingPercentage is 0..100 in the API; botocore itself only checks minimums.
    assert problems(CONFIG, with_(CONFIG_INPUTS, "dataCaptureConfig.initialSamplingPercentage", 150)) == [
        "CreateEndpointConfig: DataCaptureConfig.InitialSamplingPercentage: value 150 is above the maximum 100"]
    serverless = {"name": "churn-dev-config-0a1b2c3", "productionVariants": [{
        "modelName": "churn-model-5d6e7f8", "variantName": "AllTraffic",
        "serverlessConfig": {"maxConcurrency": 5, "memorySizeInMb": 512}}]}
    assert problems(CONFIG, serverless) == [
        "CreateEndpointConfig: ProductionVariants[0].ServerlessConfig.MemorySizeInMB: value 512 is below the minimum 1024"]
    assert problems(CONFIG, with_(CONFIG_INPUTS, "dataCaptureConfig.captureOptions", [])) == [
        "CreateEndpointConfig: DataCaptureConfig.CaptureOptions: length 0 is below the minimum 1"]
    assert problems(MODEL, with_(MODEL_INPUTS, "name", "churn-" + "m" * 60)) == [
        "CreateModel: ModelName: length 66 is above the maximum 63"]


def test_unknown_pulumi_key_is_reported_not_dropped():
    request = to_api_request(MODEL, with_(MODEL_INPUTS, "primaryContainer.fooBar", "x"))
    assert "fooBar" not in str(request.params)
    assert validate_request(request) == ["CreateModel: primaryContainer.fooBar: no such member in the API"]
    assert problems(CONFIG, with_(CONFIG_INPUTS, "productionVariants.1.instanceCount", 2)) == [
        "CreateEndpointConfig: productionVariants[1].instanceCount: no such member in the API"]


def test_a_pluralised_block_with_two_entries_is_a_type_error():
    inputs = with_(MODEL_INPUTS, "primaryContainer.modelDataSource", {"s3DataSources": [
        {"compressionType": "None", "s3DataType": "S3Prefix", "s3Uri": "s3://a-bucket/one/"},
        {"compressionType": "None", "s3DataType": "S3Prefix", "s3Uri": "s3://a-bucket/two/"}]})
    assert problems(MODEL, inputs) == [
        "CreateModel: PrimaryContainer.ModelDataSource.S3DataSource: expected structure, got list "
        "[{'CompressionType': 'None', 'S3DataType': 'S3Prefix', 'S3Uri': 's3://a-bucket/one/'}, "
        "{'CompressionType': 'None', 'S3DataType': 'S3Prefix', 'S3Uri': 's3://a-bucket/two/'}]"]


def test_unsupported_resource_type():
    with pytest.raises(UnsupportedResource) as raised:
        to_api_request("aws:s3/bucketV2:BucketV2", {"bucket": "churn-data"})
    assert isinstance(raised.value, KeyError)
    assert str(raised.value) == (
        f"aws:s3/bucketV2:BucketV2: no mapping to an AWS create API (supported: {', '.join(sorted(SUPPORTED_TYPES))})")
    assert {MODEL, CONFIG, ENDPOINT, DASHBOARD} <= SUPPORTED_TYPES


# --- placeholders the offline preview cannot know --------------------------------------------------

def test_unknown_model_data_source_passes():
    inputs = with_(MODEL_INPUTS, "primaryContainer", {"image": IMAGE, "modelDataSource": {"s3DataSources": [
        {"compressionType": "Gzip", "s3DataType": "S3Object", "s3Uri": "[unknown: models:/churn@champion]"}]}})
    request = to_api_request(MODEL, inputs)
    assert request.params["PrimaryContainer"]["ModelDataSource"]["S3DataSource"]["S3Uri"] == \
        "[unknown: models:/churn@champion]"
    assert validate_request(request) == []


def test_secret_environment_value_passes():
    assert problems(MODEL, with_(MODEL_INPUTS, "primaryContainer.environment.MLFLOW_TRACKING_TOKEN", "[secret]")) == []


def test_placeholders_skip_type_checks_but_count_as_present():
    inputs = with_(CONFIG_INPUTS, "productionVariants.0.initialInstanceCount", "[unknown]")
    assert problems(CONFIG, inputs) == []
    assert problems(ENDPOINT, with_(ENDPOINT_INPUTS, "endpointConfigName", "[unknown: churn-config]")) == []
    # a short secret is not measured against ExecutionRoleArn's minimum length of 20
    assert problems(MODEL, with_(MODEL_INPUTS, "executionRoleArn", "[secret]")) == []


# --- a batch transform pipeline's step ----------------------------------------------------------------

TRANSFORM_JOB = {
    "TransformJobName": "pipelines-abc123-Transform-x1y2z3",  # the pipeline names its jobs
    "ModelName": "prod-churn-nightly-model-5d6e7f8",
    "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                       "S3Uri": "s3://prod-datasets-bucket-b93d1d6/scoring/churn/"}},
                       "ContentType": "text/csv", "SplitType": "Line"},
    "TransformOutput": {"S3OutputPath": "s3://prod-inference-bucket-50987ea/churn-nightly-scoring/",
                        "Accept": "text/csv", "AssembleWith": "Line", "KmsKeyId": KEY},
    "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 2, "VolumeKmsKeyId": KEY},
    "BatchStrategy": "MultiRecord", "MaxConcurrentTransforms": 4, "MaxPayloadInMB": 6,
    "DataCaptureConfig": {"DestinationS3Uri": "s3://prod-inference-bucket-50987ea/datacapture/prod-churn-nightly",
                          "KmsKeyId": KEY, "GenerateInferenceId": True},
}


def test_a_batch_transform_step_is_a_create_transform_job_request():
    assert validate_request(ApiRequest("sagemaker", "CreateTransformJob", TRANSFORM_JOB)) == []
    bad = copy.deepcopy(TRANSFORM_JOB)
    bad["TransformResources"]["InstanceType"] = "ml.t2.medium"  # hosting offers it, batch transform does not
    bad["Environment"] = {f"V{i}": "x" for i in range(17)}
    [instance_type, environment] = validate_request(ApiRequest("sagemaker", "CreateTransformJob", bad))
    assert instance_type == ("CreateTransformJob: TransformResources.InstanceType: 'ml.t2.medium' is not an allowed "
                             "value (closest: 'ml.p2.xlarge', 'ml.p2.8xlarge', 'ml.p2.16xlarge')")
    assert environment == "CreateTransformJob: Environment: length 17 is above the maximum 16"


# --- every pulumi_aws input has an API member ------------------------------------------------------

def _every_input(args_class: type, module: object) -> dict:
    """A value for every input of a pulumi_aws Args class, nested blocks included (values are dummies)."""
    out: dict = {}
    for attr in vars(args_class).values():
        if not isinstance(attr, property):
            continue
        name = getattr(attr.fget, "_pulumi_name", attr.fget.__name__)
        annotation = str(attr.fget.__annotations__["return"])
        nested = re.search(r"ForwardRef\('(\w+Args)'\)", annotation)
        if nested:
            block = _every_input(getattr(module, nested[1]), module)
            out[name] = [block] if annotation.startswith("typing.Union[typing.Sequence[") else block
        elif annotation.startswith("typing.Union[typing.Sequence["):
            out[name] = ["v"]
        else:
            out[name] = {"K": "v"} if "typing.Mapping[" in annotation else "v"
    return out


@pytest.mark.parametrize("resource_type,args_name", [
    (MODEL, "ModelArgs"), (CONFIG, "EndpointConfigurationArgs"), (ENDPOINT, "EndpointArgs")])
def test_every_pulumi_input_maps_to_an_api_member(resource_type, args_name):
    import pulumi_aws.sagemaker as sagemaker
    from pulumi_aws.sagemaker import _inputs

    inputs = _every_input(getattr(sagemaker, args_name), _inputs)
    assert len(inputs) >= 5
    assert to_api_request(resource_type, inputs).unmapped == ()


def test_every_dashboard_input_maps_to_an_api_member():
    import pulumi_aws.cloudwatch as cloudwatch
    from pulumi_aws.cloudwatch import _inputs

    inputs = _every_input(cloudwatch.DashboardArgs, _inputs)
    assert sorted(inputs) == ["dashboardBody", "dashboardName", "region"]
    assert to_api_request(DASHBOARD, inputs).unmapped == ()
