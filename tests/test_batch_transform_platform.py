"""Batch transforms in the platform: what MlPlatform builds for a `batch_transforms[]` entry, the rules across
sections and their one-line errors, and the shipped prod stack's nightly scoring."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emlops.catalog.requests import ApiRequest, validate_request
from emlops.program.config import ConfigError
from emlops.program.platform import parse_platform_config
from tests.conftest import ACCOUNT, BASE_SETTINGS, REGION, edit_stack, policy_statements, preview_error, run_platform

COMPONENT = "emlops:index:BatchTransform"
NETWORK = {"vpc_id": "vpc-0123456789abcdef0",
           "private_subnet_ids": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]}
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/churn-inference:2.0.1"
ENTRY = {"name": "churn-scoring", "source": {"s3_uri": "s3://ml-models/churn/7/model.tar.gz"}, "image": {"uri": IMAGE},
         "schedule": "cron(0 2 * * ? *)", "input_prefix": "scoring/churn/", "output_prefix": "churn-scoring/"}
MODEL = {"name": "churn", "source": {"s3_uri": "s3://ml-models/churn/7/model.tar.gz"},
         "image": {"uri": IMAGE}, "variants": [{"instance_type": "ml.m5.large"}]}


def platform(*entries: dict[str, Any], **settings: Any) -> dict[str, Any]:
    return {"network": NETWORK, "batch_transforms": list(entries) or [ENTRY], **settings}


def error(*entries: dict[str, Any], **settings: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_platform_config({**BASE_SETTINGS, **platform(*entries, **settings)}, "stacks/Pulumi.dev.yaml")
    return str(caught.value).removeprefix("stacks/Pulumi.dev.yaml: emlops:platform.")


# -- what the platform builds -------------------------------------------------------------------------------

def test_the_platform_builds_it_from_the_datasets_into_the_inference_bucket_with_the_data_key():
    plan = run_platform(platform({**ENTRY, "start_on_new_data": True}))
    transform = plan.get("dev-churn-scoring", COMPONENT)
    assert transform.parent == plan.get("dev", "emlops:index:MlPlatform").urn
    inference = plan.get("dev-inference-bucket")
    encryption = plan.get("dev-inference-encryption").inputs["rules"][0]["applyServerSideEncryptionByDefault"]
    data_key = plan.get("dev-datasets-encryption").inputs["rules"][0]["applyServerSideEncryptionByDefault"]
    assert encryption == data_key
    assert plan.get("dev-inference-logging").inputs["targetPrefix"] == "dev-inference/"
    step = json.loads(plan.get("dev-churn-scoring-pipeline").inputs["pipelineDefinition"])["Steps"][0]["Arguments"]
    datasets = plan.get("dev-datasets-bucket").inputs["bucket"]
    assert step["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{datasets}/scoring/churn/"
    assert step["TransformOutput"]["S3OutputPath"] == f"s3://{inference.inputs['bucket']}/churn-scoring/"
    assert step["TransformOutput"]["KmsKeyId"] == data_key["kmsMasterKeyId"]
    # the pipeline is the environment's: `<environment>-<name>`
    assert plan.get("dev-churn-scoring-pipeline").inputs["pipelineName"] == "dev-churn-scoring"
    # new data reaches EventBridge: the datasets bucket sends its events there
    assert plan.get("dev-datasets-events", "aws:s3/bucketNotification:BucketNotification").inputs == {
        "bucket": datasets, "eventbridge": True}
    # failures reach the environment's alerts topic, made for them even with nothing monitored
    topic = plan.get("dev-alerts-topic", "aws:sns/topic:Topic")
    assert plan.get("dev-churn-scoring-failed-notify").inputs["arn"] == (
        f"arn:aws:sns:{REGION}:{ACCOUNT}:{topic.inputs['name']}")
    # its model runs in the network's private subnets, in a group of its own (no endpoint made the workloads' one)
    model = plan.get("dev-churn-scoring-model").inputs
    assert model["vpcConfig"]["subnets"] == NETWORK["private_subnet_ids"]
    assert plan.get("dev-churn-scoring-sg").inputs["vpcId"] == NETWORK["vpc_id"]


def test_without_new_data_starts_the_datasets_bucket_sends_no_events_and_endpoints_share_their_group():
    plan = run_platform(platform(models=[MODEL], production=False))
    assert not plan.by_type("aws:s3/bucketNotification:BucketNotification")
    assert "dev-churn-scoring-sg" not in {r.name for r in plan.resources}
    group = plan.get("dev-churn-model").inputs["vpcConfig"]["securityGroupIds"]
    assert plan.get("dev-churn-scoring-model").inputs["vpcConfig"]["securityGroupIds"] == group


def test_without_batch_transforms_there_is_no_inference_bucket():
    plan = run_platform({"network": NETWORK, "models": [MODEL]})
    assert "dev-inference" not in {r.name for r in plan.resources}
    assert not plan.by_type(COMPONENT)


def test_ml_engineers_may_start_and_stop_the_pipeline():
    plan = run_platform(platform(personas={}))
    pipeline = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/dev-churn-scoring"
    [run] = [s for s in policy_statements(plan, "dev-personas-ml-engineer-run-pipelines")
             if "sagemaker:StartPipelineExecution" in s["Action"]]
    assert run["Resource"] == [pipeline]


# -- the stack file's errors --------------------------------------------------------------------------------

PACKAGE = {"model_package_group": "churn"}


@pytest.mark.parametrize("entries, settings, message", [
    ([{**ENTRY, "source": PACKAGE}], {},
     "batch_transforms[0]: a model package names its own image; drop image"),
    ([{**ENTRY, "image": None}], {}, "batch_transforms[0]: image is required unless the source is a model package"),
    ([{**ENTRY, "environment": {"DB_PASSWORD": "hunter2"}}], {},
     "batch_transforms[0].environment.DB_PASSWORD: looks like a secret (PASSWORD in its name); environment values "
     "are plaintext in the stack file, the plan and the Pulumi state: pass the arn: of a Secrets Manager secret the "
     "container reads at start instead"),
    ([{**ENTRY, "source": {"mlflow": "models:/churn@champion"}}], {},
     "batch_transforms[0].source.mlflow: needs registry.mlflow_tracking_uri to resolve the reference"),
    ([{**ENTRY, "name": "churn"}], {"models": [MODEL]},
     "batch_transforms[0].name: 'churn' names the batch transform's resources 'dev-churn', the name of model "
     "'churn''s endpoint; choose another name"),
    ([{**ENTRY, "name": "churn-retraining"}], {"models": [MODEL]},
     "batch_transforms[0].name: 'churn-retraining' names the batch transform's resources 'dev-churn-retraining', the "
     "name of model 'churn''s retraining pipeline; choose another name"),
    ([ENTRY, ENTRY], {}, "batch_transforms[1].name: 'churn-scoring' names the batch transform's resources "
     "'dev-churn-scoring', the name of batch transform 'churn-scoring'; choose another name"),
    ([ENTRY, {**ENTRY, "name": "churn-rescoring", "input_prefix": "rescoring/", "output_prefix": "churn-scoring/v2/"}],
     {}, "batch_transforms[1].output_prefix: 'churn-scoring/v2/' overlaps batch_transforms[0]'s output_prefix "
     "'churn-scoring/'; each batch transform writes a prefix of its own"),
    ([{**ENTRY, "name": "customer-lifetime-value-propensity-scoring"}], {},
     "batch_transforms[0].name: 'customer-lifetime-value-propensity-scoring' makes the IAM role name "
     "'dev-customer-lifetime-value-propensity-scoring-execution-role-1a2b3c4' 69 characters (with Pulumi's "
     "auto-name suffix); AWS allows 64 (at most 37 characters here)"),
])
def test_a_batch_transform_that_does_not_fit_the_stack_is_one_line(entries, settings, message):
    assert error(*entries, **settings) == message


def test_it_runs_in_private_subnets():
    with pytest.raises(ConfigError) as caught:
        parse_platform_config({**BASE_SETTINGS, "batch_transforms": [ENTRY]}, "stacks/Pulumi.dev.yaml")
    assert str(caught.value) == ("stacks/Pulumi.dev.yaml: emlops:platform.batch_transforms[0]: runs in private "
                                 "subnets; add network.managed (or network.vpc_id and network.private_subnet_ids)")


def test_production_batch_transforms_run_on_a_schedule_and_tell_someone_of_failures():
    production = {"production": True, "alerts": {"email": ["ml-oncall@example.com"]}}
    assert error({**ENTRY, "schedule": None, "start_on_new_data": True}, **production) == (
        "batch_transforms[0].schedule: production batch transforms run on a schedule (an EventBridge cron or rate, "
        "e.g. 'cron(0 2 * * ? *)'); new data alone may never come")
    assert error(ENTRY, production=True) == (
        "alerts: production batch transforms tell the alerts topic about failed runs; subscribe someone "
        "(alerts.email or alerts.https)")
    # outside production, new data alone may start it and nobody need subscribe
    parse_platform_config({**BASE_SETTINGS, **platform({**ENTRY, "schedule": None, "start_on_new_data": True})},
                          "stacks/Pulumi.dev.yaml")


def test_a_shared_registrys_group_must_hold_the_package(project_copy):
    edit_stack(project_copy, "prod", "        source: {model_package_group: churn}\n",
               "        source: {model_package_group: churn-v2}\n")
    assert preview_error(project_copy, "prod") == (
        "stacks/Pulumi.prod.yaml: emlops:platform.batch_transforms[0].source.model_package_group: 'churn-v2' is not "
        "a package group of stack 'shared' (its groups: churn, fraud, doc-scoring); add it to its registry.package_groups")


# -- the shipped prod stack ---------------------------------------------------------------------------------

def test_prod_scores_churn_nightly_with_the_approved_version_and_pages_on_failure(shipped_plan):
    plan = shipped_plan("prod")
    [transform] = plan.by_type(COMPONENT)
    assert transform.name == "prod-churn-nightly"
    schedule = plan.get("prod-churn-nightly-schedule").inputs
    assert schedule["scheduleExpression"] == "cron(0 2 * * ? *)"
    topic = f"arn:aws:sns:{REGION}:333333333333:{plan.get('prod-alerts-topic').inputs['name']}"
    assert plan.get("prod-churn-nightly-failed-notify").inputs["arn"] == topic
    model = plan.get("prod-churn-nightly-model").inputs
    assert model["primaryContainer"] == {"modelPackageName": (
        "[unknown: arn:aws:sagemaker:eu-west-1:444444444444:model-package-group/churn (latest Approved)]")}
    assert model["enableNetworkIsolation"] is True and len(model["vpcConfig"]["subnets"]) == 3
    # the shared registry's key decrypts the approved version's artifact, through S3 only
    permissions = {s["Sid"]: s for s in policy_statements(plan, "prod-churn-nightly-execution-permissions")}
    assert permissions["ReadArtifact2"]["Resource"][0].startswith("arn:aws:kms:eu-west-1:444444444444:key/")
    assert permissions["ReadArtifact2"]["Condition"] == {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}
    step = json.loads(plan.get("prod-churn-nightly-pipeline").inputs["pipelineDefinition"])["Steps"][0]["Arguments"]
    assert (step["TransformResources"]["InstanceType"], step["TransformResources"]["InstanceCount"],
            step["MaxConcurrentTransforms"], step["MaxPayloadInMB"]) == ("ml.m5.xlarge", 2, 4, 6)
    assert step["TransformOutput"]["KmsKeyId"] == plan.outputs["dataKeyArn"]
    outputs = plan.outputs["batchTransforms"]["churn-nightly"]
    assert outputs["pipelineName"] == "prod-churn-nightly"
    assert outputs["outputS3Uri"] == f"s3://{plan.outputs['inferenceBucket']}/churn-nightly-scoring/"
    inference = plan.get("prod-inference-bucket")
    assert inference.protect and inference.retain_on_delete
    # each morning at 06:00 UTC, the night's inputs against the export's baseline
    schedule = plan.get("prod-churn-nightly-monitor-schedule").inputs["monitoringScheduleConfig"]
    assert (schedule["monitoringType"], schedule["scheduleConfig"]) == (
        "DataQuality", {"scheduleExpression": "cron(0 6 ? * * *)"})
    # what a run sends SageMaker is a valid CreateTransformJob request (the pipeline names the job)
    request = ApiRequest("sagemaker", "CreateTransformJob", {**step, "TransformJobName": "pipelines-x"})
    assert validate_request(request) == []
