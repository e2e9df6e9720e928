"""Serving-mode guardrails: asynchronous, shadow-test and multi-model endpoints as ModelEndpoint builds them pass every
rule; raw endpoint configurations with the setting a rule forbids fail exactly that rule."""

from __future__ import annotations

import functools

import pulumi_aws as aws
import pytest

from emlops.components.endpoint import EndpointContext, EndpointSettings, ModelArtifact, ModelEndpoint
from emlops.components.kms import KmsKey, KmsKeyArgs
from emlops.components.model_card import ModelCard, ModelCardContext, ModelCardSettings
from emlops.components.monitoring import ModelMonitor, MonitorContext, MonitoringSettings
from emlops.components.settings import Governance, Placement
from emlops.components.storage import SecureBucket, SecureBucketArgs
from emlops.guardrails import RULES
from emlops.offline.plan import Plan
from tests.conftest import ACCOUNT, run_components
from tests.test_policy_baseline import BOUNDARY, SUBNETS, TAGS, VPC, findings
from tests.test_policy_ml import CONSTRAINTS, IMAGE, PROD, STATISTICS

TOPIC = f"arn:aws:sns:eu-west-1:{ACCOUNT}:alerts"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/k"
TWO = {"name": "primary", "instance_type": "ml.m5.large", "initial_instance_count": 2}


@functools.cache
def good_plan() -> Plan:
    """An asynchronous endpoint scaling to zero, a shadow test and a multi-model endpoint, each monitored where
    SageMaker can monitor it, in production."""
    def program() -> None:
        key = KmsKey("ml", KmsKeyArgs(description="Encrypts ML data", protect=True, tags=TAGS))
        capture = SecureBucket("capture", SecureBucketArgs(kms_key_arn=key.arn, protect=True, tags=TAGS))
        inference = SecureBucket("inference", SecureBucketArgs(kms_key_arn=key.arn, protect=True, tags=TAGS))
        common = dict(placement=Placement(VPC, SUBNETS), kms_key_arn=key.arn, capture_bucket=capture,
                      alarm_topic_arn=TOPIC, governance=Governance(TAGS, BOUNDARY))
        scaling = {"min_instances": 2, "max_instances": 4}
        documents = ModelEndpoint("documents", EndpointSettings.model_validate({
            "variants": [TWO], "serving": "async", "async_inference": {"output_prefix": "async/documents/"},
            "deployment": {"strategy": "canary"}, "autoscaling": {"min_instances": 0, "max_instances": 4},
        }), EndpointContext(artifact=ModelArtifact("s3://ml-artifacts/models/documents/model.tar.gz"),
                            image_uri=IMAGE, inference_bucket=inference, **common))
        fraud = ModelEndpoint("fraud", EndpointSettings.model_validate({
            "variants": [TWO], "shadow": {"traffic_percent": 50}, "deployment": {"strategy": "linear"},
            "autoscaling": scaling,
        }), EndpointContext(artifact=ModelArtifact("s3://ml-artifacts/models/fraud/1/model.tar.gz"), image_uri=IMAGE,
                            challenger=ModelArtifact("s3://ml-artifacts/models/fraud/2/model.tar.gz"),
                            challenger_image_uri=IMAGE, **common))
        ModelEndpoint("tenants", EndpointSettings.model_validate({
            "variants": [TWO], "mode": "multi_model", "deployment": {"strategy": "canary"}, "autoscaling": scaling,
        }), EndpointContext(artifact=ModelArtifact("s3://ml-artifacts/models/tenants/", compressed=False),
                            image_uri=IMAGE, **common))
        for name in ("documents", "fraud", "tenants"):  # production models have rated cards
            ModelCard(f"{name}-card", ModelCardSettings(intended_uses=f"Scores {name}", risk_rating="Low", owner="ml"),
                      ModelCardContext(card_name=name, model_name=name, endpoint_name=name, package_group=name,
                                       production=True, governance=Governance(TAGS, protect=True)))
        for endpoint in (documents, fraud):
            ModelMonitor(f"{endpoint._name}-monitor", MonitoringSettings.model_validate({
                "baseline": {"statistics_s3_uri": STATISTICS, "constraints_s3_uri": CONSTRAINTS}}), MonitorContext(
                endpoint_name=endpoint.endpoint_name, capture_s3_uri=endpoint.data_capture_uri,
                reports_bucket=capture, placement=Placement(VPC, SUBNETS), production=True, region="eu-west-1",
                governance=Governance(TAGS, BOUNDARY, protect=True)))
    return run_components(program)


@functools.cache
def bad_plan() -> Plan:
    """Raw endpoint configurations, each with what one rule forbids (and everything else as the rules want)."""
    def program() -> None:
        variant = {"variant_name": "primary", "model_name": "m", "instance_type": "ml.m5.large",
                   "initial_instance_count": 2}
        capture = {"enable_capture": True, "initial_sampling_percentage": 100, "destination_s3_uri": "s3://c/x",
                   "kms_key_id": KEY, "capture_options": [{"capture_mode": "Input"}]}
        aws.sagemaker.EndpointConfiguration(
            "open-async-config", production_variants=[variant], kms_key_arn=KEY, data_capture_config=capture,
            async_inference_config={"output_config": {"s3_output_path": "s3://out/responses/",
                                                      "s3_failure_path": "s3://out/failures/",
                                                      "notification_config": {"error_topic": TOPIC}}}, tags=TAGS)
        aws.sagemaker.EndpointConfiguration(
            "silent-async-config", production_variants=[variant], kms_key_arn=KEY, data_capture_config=capture,
            async_inference_config={"output_config": {"s3_output_path": "s3://out/responses/", "kms_key_id": KEY}},
            tags=TAGS)
        aws.sagemaker.EndpointConfiguration(
            "blind-shadow-config", production_variants=[variant], kms_key_arn=KEY, tags=TAGS,
            shadow_production_variants=[{**variant, "variant_name": "challenger", "model_name": "c",
                                         "initial_instance_count": 1}])
    return run_components(program)


BAD: dict[str, list[tuple[str, str]]] = {
    "sagemaker-async-output-encrypted": [
        ("open-async-config",
         "asynchronous responses are not encrypted (asyncInferenceConfig.outputConfig.kmsKeyId is not set)")],
    "sagemaker-async-failures-reported": [
        ("silent-async-config",
         "failed requests have no S3 failure path (asyncInferenceConfig.outputConfig.s3FailurePath)"),
        ("silent-async-config",
         "failures are announced on no topic (asyncInferenceConfig.outputConfig.notificationConfig.errorTopic)")],
    "sagemaker-shadow-capture": [
        ("blind-shadow-config",
         "shadow variant 'challenger' is compared with production without captured data (dataCaptureConfig)")],
}


@pytest.mark.parametrize("rule", sorted(BAD))
def test_rule_reports_exactly_the_bad_resources(rule):
    assert findings(bad_plan(), rule, PROD) == BAD[rule]


@pytest.mark.parametrize("rule", sorted(BAD))
def test_serving_modes_comply_with_the_rule(rule):
    assert findings(good_plan(), rule, PROD) == []


def test_every_rule_passes_the_serving_modes_in_production():
    """Asynchronous endpoints may scale in to zero, multi-model endpoints need no monitor, the shadow variant is
    checked against the instance allow-list: no rule of the pack fails the three modes."""
    plan = good_plan()
    configs = {c.name: c.inputs for c in plan.by_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration")}
    output = configs["documents-config"]["asyncInferenceConfig"]["outputConfig"]
    assert output["kmsKeyId"] == configs["documents-config"]["kmsKeyArn"]
    assert output["notificationConfig"] == {"errorTopic": TOPIC}
    assert configs["fraud-config"]["shadowProductionVariants"][0]["initialVariantWeight"] == 0.5
    assert plan.get("tenants-model").inputs["primaryContainer"]["mode"] == "MultiModel"
    assert {rule: findings(plan, rule, PROD) for rule in RULES} == {rule: [] for rule in RULES}


def test_production_rules_see_the_modes():
    """An asynchronous endpoint that cannot scale out to two, a multi-model endpoint is not asked for a monitor
    but a shadow variant's instance type is held to the allow-list."""
    plan = run_components(lambda: _async_and_shadow(max_instances=1))
    assert findings(plan, "sagemaker-prod-endpoint-autoscaling", PROD) == [
        ("queue-endpoint", "asynchronous endpoint 'queue' variant 'primary' scales out to 1 instance(s) at most")]
    assert findings(plan, "sagemaker-instance-type-allowed", PROD) == [
        ("shadowed-config", "instance type ml.c5.xlarge is not allowed here (allowed: ml.m5.large, ml.m5.xlarge)")]
    assert findings(good_plan(), "sagemaker-prod-endpoint-monitoring", PROD) == []


def _async_and_shadow(max_instances: int) -> None:
    key = KmsKey("ml", KmsKeyArgs(description="Encrypts ML data", tags=TAGS))
    capture = SecureBucket("capture", SecureBucketArgs(kms_key_arn=key.arn, tags=TAGS))
    inference = SecureBucket("inference", SecureBucketArgs(kms_key_arn=key.arn, tags=TAGS))
    common = dict(placement=Placement(VPC, SUBNETS), kms_key_arn=key.arn, capture_bucket=capture,
                  alarm_topic_arn=TOPIC, image_uri=IMAGE, governance=Governance(TAGS))
    ModelEndpoint("queue", EndpointSettings.model_validate({
        "variants": [TWO], "serving": "async", "async_inference": {"output_prefix": "async/q/"},
        "autoscaling": {"min_instances": 0, "max_instances": max_instances},
    }), EndpointContext(artifact=ModelArtifact("s3://ml-artifacts/q/model.tar.gz"), inference_bucket=inference,
                        **common))
    ModelEndpoint("shadowed", EndpointSettings.model_validate({
        "variants": [TWO], "shadow": {"instance_type": "ml.c5.xlarge"},
        "autoscaling": {"min_instances": 2, "max_instances": 2},
    }), EndpointContext(artifact=ModelArtifact("s3://ml-artifacts/s/1/model.tar.gz"),
                        challenger=ModelArtifact("s3://ml-artifacts/s/2/model.tar.gz"), challenger_image_uri=IMAGE,
                        **common))
