"""The model-quality job definition (pulumi-aws-native's): what the plan records, what the mocks answer,
how its request checks against botocore, how `emlops diff` treats a change of it, and the model-quality rules."""

from __future__ import annotations

import copy
import re
from typing import Any

import pulumi
import pulumi_aws_native as aws_native

from emlops.catalog.requests import ApiRequest, to_api_request, validate_request
from emlops.components.model_quality import QUALITY_METRICS, RESOURCE_TYPE, check_model_quality, problem_types
from emlops.review.diff import diff_plans
from tests.conftest import ACCOUNT, REGION, run_components

KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-4333-8444-555555555555"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/churn-execution-role-940aae9"
IMAGE = "468650794304.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-model-monitor-analyzer"
NAME = re.compile(r"churn-quality-job-[0-9a-f]{7}")

# The inputs a ModelMonitor registers (camelCase, as the plan records them).
INPUTS: dict[str, Any] = {
    "roleArn": ROLE_ARN,
    "modelQualityAppSpecification": {"imageUri": IMAGE, "problemType": "BinaryClassification",
                                     "environment": {"publish_cloudwatch_metrics": "Enabled"}},
    "modelQualityBaselineConfig": {"constraintsResource": {"s3Uri": "s3://ml-baselines/churn/quality/constraints.json"}},
    "modelQualityJobInput": {
        "endpointInput": {"endpointName": "churn", "localPath": "/opt/ml/processing/input/endpoint",
                          "s3InputMode": "File", "s3DataDistributionType": "FullyReplicated",
                          "probabilityAttribute": "0", "probabilityThresholdAttribute": 0.5},
        "groundTruthS3Input": {"s3Uri": "s3://ml-ground-truth/churn"}},
    "modelQualityJobOutputConfig": {"kmsKeyId": KEY_ARN, "monitoringOutputs": [{"s3Output": {
        "s3Uri": "s3://reports/monitoring/churn/model-quality", "localPath": "/opt/ml/processing/output",
        "s3UploadMode": "EndOfJob"}}]},
    "jobResources": {"clusterConfig": {"instanceCount": 2, "instanceType": "ml.m5.large", "volumeSizeInGb": 50,
                                       "volumeKmsKeyId": KEY_ARN}},
    "networkConfig": {"enableNetworkIsolation": True, "enableInterContainerTrafficEncryption": True,
                      "vpcConfig": {"subnets": ["subnet-0123456789abcdef0"], "securityGroupIds": ["sg-0123456789abcdef0"]}},
    "stoppingCondition": {"maxRuntimeInSeconds": 1800},
    "tags": [{"key": "team", "value": "churn"}, {"key": "model-monitor", "value": "churn"}],
}

REQUEST = {
    "JobDefinitionName": "churn-quality-job-0a1b2c3",
    "ModelQualityAppSpecification": {"ImageUri": IMAGE, "ProblemType": "BinaryClassification",
                                     "Environment": {"publish_cloudwatch_metrics": "Enabled"}},
    "ModelQualityBaselineConfig": {"ConstraintsResource": {"S3Uri": "s3://ml-baselines/churn/quality/constraints.json"}},
    "ModelQualityJobInput": {
        "EndpointInput": {"EndpointName": "churn", "LocalPath": "/opt/ml/processing/input/endpoint",
                          "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated",
                          "ProbabilityAttribute": "0", "ProbabilityThresholdAttribute": 0.5},
        "GroundTruthS3Input": {"S3Uri": "s3://ml-ground-truth/churn"}},
    "ModelQualityJobOutputConfig": {"KmsKeyId": KEY_ARN, "MonitoringOutputs": [{"S3Output": {
        "S3Uri": "s3://reports/monitoring/churn/model-quality", "LocalPath": "/opt/ml/processing/output",
        "S3UploadMode": "EndOfJob"}}]},
    "JobResources": {"ClusterConfig": {"InstanceCount": 2, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 50,
                                       "VolumeKmsKeyId": KEY_ARN}},
    "NetworkConfig": {"EnableNetworkIsolation": True, "EnableInterContainerTrafficEncryption": True,
                      "VpcConfig": {"Subnets": ["subnet-0123456789abcdef0"], "SecurityGroupIds": ["sg-0123456789abcdef0"]}},
    "RoleArn": ROLE_ARN,
    "StoppingCondition": {"MaxRuntimeInSeconds": 1800},
    "Tags": [{"Key": "team", "Value": "churn"}, {"Key": "model-monitor", "Value": "churn"}],
}


# -- the request --------------------------------------------------------------------------------------

def test_the_recorded_inputs_are_the_api_request_and_valid():
    request = to_api_request(RESOURCE_TYPE, {**INPUTS, "jobDefinitionName": "churn-quality-job-0a1b2c3"})
    assert request == ApiRequest("sagemaker", "CreateModelQualityJobDefinition", REQUEST)
    assert validate_request(request) == []


def test_the_request_check_rejects_what_sagemaker_would_reject():
    bad = copy.deepcopy({**INPUTS, "jobDefinitionName": "churn-quality-job-0a1b2c3"})
    bad["modelQualityAppSpecification"]["problemType"] = "Binary"
    bad["jobResources"]["clusterConfig"]["instanceType"] = "ml.m5.huge"
    bad["jobResources"]["clusterConfig"]["instanceCount"] = 0
    bad["stoppingCondition"]["maxRuntimeInSeconds"] = 86401
    bad["roleArn"] = "churn-role"
    del bad["modelQualityJobInput"]["groundTruthS3Input"]
    problems = validate_request(to_api_request(RESOURCE_TYPE, bad))
    assert [line.split(": ", 1)[1] for line in problems] == [
        "RoleArn: length 10 is below the minimum 20",
        "RoleArn: 'churn-role' does not match pattern arn:aws[a-z\\-]*:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+",
        "ModelQualityAppSpecification.ProblemType: 'Binary' is not one of 'BinaryClassification', "
        "'MulticlassClassification', 'Regression'",
        "ModelQualityJobInput.GroundTruthS3Input: missing required member",
        "JobResources.ClusterConfig.InstanceCount: value 0 is below the minimum 1",
        "JobResources.ClusterConfig.InstanceType: 'ml.m5.huge' is not an allowed value (closest: 'ml.m5.large', "
        "'ml.m5.xlarge', 'ml.m5.4xlarge')",
        "StoppingCondition.MaxRuntimeInSeconds: value 86401 is above the maximum 86400",
    ]


# -- in the offline preview ------------------------------------------------------------------------

def _program() -> None:
    provider = aws_native.Provider("aws-native-test", region=REGION, allowed_account_ids=[ACCOUNT])
    job = aws_native.sagemaker.ModelQualityJobDefinition(
        "churn-quality-job", role_arn=ROLE_ARN,
        model_quality_app_specification={"image_uri": IMAGE, "problem_type": "Regression",
                                         "environment": {"publish_cloudwatch_metrics": "Enabled"}},
        model_quality_job_input={"endpoint_input": {"endpoint_name": "churn", "local_path": "/in",
                                                    "inference_attribute": "0"},
                                 "ground_truth_s3_input": {"s3_uri": "s3://ml-ground-truth/churn"}},
        model_quality_job_output_config={"monitoring_outputs": [{"s3_output": {
            "s3_uri": "s3://reports/mq", "local_path": "/out"}}]},
        job_resources={"cluster_config": {"instance_count": 1, "instance_type": "ml.m5.large",
                                          "volume_size_in_gb": 20}},
        opts=pulumi.ResourceOptions(provider=provider))
    pulumi.export("job", {"arn": job.job_definition_arn, "name": job.job_definition_name})


def test_the_plan_records_it_and_the_mocks_answer_like_cloud_control():
    plan = run_components(_program)
    job = plan.get("churn-quality-job", RESOURCE_TYPE)
    assert job.custom and job.provider == "urn:pulumi:test::emlops::pulumi:providers:aws-native::aws-native-test"
    name = plan.outputs["job"]["name"]
    assert NAME.fullmatch(name) and job.inputs["jobDefinitionName"] == name  # auto-named, like the provider does
    assert job.inputs == {
        "jobDefinitionName": name, "roleArn": ROLE_ARN,
        "modelQualityAppSpecification": {"imageUri": IMAGE, "problemType": "Regression",
                                         "environment": {"publish_cloudwatch_metrics": "Enabled"}},
        "modelQualityJobInput": {"endpointInput": {"endpointName": "churn", "localPath": "/in",
                                                   "inferenceAttribute": "0"},
                                 "groundTruthS3Input": {"s3Uri": "s3://ml-ground-truth/churn"}},
        "modelQualityJobOutputConfig": {"monitoringOutputs": [{"s3Output": {"s3Uri": "s3://reports/mq",
                                                                            "localPath": "/out"}}]},
        "jobResources": {"clusterConfig": {"instanceCount": 1, "instanceType": "ml.m5.large", "volumeSizeInGb": 20}}}
    assert plan.outputs["job"]["arn"] == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-quality-job-definition/{name}"
    assert run_components(_program).outputs == plan.outputs  # deterministic, like every auto-name
    assert validate_request(to_api_request(job.type, job.inputs)) == []


def test_every_change_of_it_is_a_replacement_and_the_new_one_comes_first():
    base = run_components(_program)
    head = copy.deepcopy(base)
    head.get("churn-quality-job", RESOURCE_TYPE).inputs["jobResources"]["clusterConfig"]["instanceType"] = \
        "ml.m5.xlarge"
    (change,) = diff_plans(base, head).resources
    assert (change.resource.type, change.action) == (RESOURCE_TYPE, "replace")
    assert [(c.path, c.replaces) for c in change.changes] == [("jobResources.clusterConfig.instanceType", True)]
    assert change.replacement_order().startswith("create-before-delete: auto-named")


# -- the rules -----------------------------------------------------------------------------------------

def test_problem_types_and_metrics_are_sagemakers():
    assert problem_types() == ("BinaryClassification", "MulticlassClassification", "Regression")
    assert set(QUALITY_METRICS) == set(problem_types())
    assert {p: check_model_quality(p, "0", "1" if p != "Regression" else None,
                                   0.5 if p == "BinaryClassification" else None, None, 0.5)
            for p in problem_types()} == {
        "BinaryClassification": "auc", "MulticlassClassification": "accuracy", "Regression": "rmse"}
