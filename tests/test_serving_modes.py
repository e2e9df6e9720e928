"""Serving modes in the stack file: every combination SageMaker (or the platform) refuses is one line naming the key,
with exactly this text; and what the modes build, as the shipped stacks use them."""

from __future__ import annotations

import pytest

from tests.test_config_models import M0, SERVERLESS, error_of, model, platform

PREFIX = "s3://ml-models/tenants/"
ASYNC = {"output_prefix": "async/churn/"}
PACKAGE = {"model_package_group": "churn"}
LLM = {"framework": "huggingface-llm", "framework_version": "3.3.6"}


@pytest.mark.parametrize("raw, expected", [
    (platform(model(serving="async")),
     f"{M0}.async_inference: field required when serving is async: give output_prefix, the prefix of the inference "
     "bucket that responses and failures are written under"),
    (platform(model(async_inference=ASYNC)),
     f"{M0}.async_inference: applies to asynchronous endpoints only; set serving: async or drop it"),
    (platform(model(SERVERLESS, serving="async", async_inference=ASYNC)),
     f"{M0}.serving: asynchronous endpoints run on instances; use variants instead of serverless"),
    (platform(model(serving="async", async_inference={"output_prefix": "async/*/"})),
     f"{M0}.async_inference.output_prefix: 'async/*/' has '*' in its key: IAM reads '*' and '?' as wildcards and "
     "'${' as a policy variable in the grants made from it"),
    (platform(model(serving="async", async_inference={**ASYNC, "input_prefix": "async/churn/responses/in/"})),
     f"{M0}.async_inference.input_prefix: 'async/churn/responses/in/' overlaps where responses and failures are "
     "written (async/churn/responses/, async/churn/failures/); the model reads requests and writes results in "
     "separate prefixes"),
    (platform(model(autoscaling={"min_instances": 0, "max_instances": 2})),
     f"{M0}.autoscaling.min_instances: 0 scales an endpoint to zero instances, which only asynchronous endpoints can "
     "(serving: async); give at least 1"),
    (platform(model(SERVERLESS, mode="multi_model")),
     f"{M0}.mode: multi-model endpoints run on instances; use variants instead of serverless"),
    (platform(model(mode="multi_model")),
     f"{M0}.source: mode multi_model serves every model archive under one S3 prefix: give source.s3_uri ending in '/'"),
    (platform(model(mode="multi_model", source={"s3_uri": PREFIX}, monitoring={"enabled": True},
                    data_capture={"enabled": True})),
     f"{M0}.monitoring.enabled: SageMaker Model Monitor does not monitor multi-model endpoints; drop monitoring (data "
     "capture still records requests and responses)"),
    (platform(model(source=PACKAGE, drop=("image",), shadow={})),
     f"{M0}.shadow.challenger: field required"),
    (platform(model(source=PACKAGE, drop=("image",), shadow={"challenger": {"model_package_group": "fraud"}})),
     f"{M0}.shadow.challenger.model_package_group: emlops promote approves the challenger in the source's group: "
     "source.model_package_group must be the same group ('fraud')"),
    (platform(model(source={"mlflow": "models:/churn@champion"}, shadow={"challenger": {"mlflow": "models:/fraud@x"}})),
     f"{M0}.shadow.challenger.mlflow: emlops promote moves the source's alias to the challenger: source.mlflow must "
     "be an alias of the same registered model (models:/fraud@<alias>)"),
    (platform(model(SERVERLESS, shadow={"challenger": {"mlflow": "models:/fraud@challenger"}})),
     f"{M0}.shadow: SageMaker runs shadow tests on single-model real-time endpoints on instances, not on serverless "
     "ones; drop shadow"),
    (platform(model(variants=[{"name": "a", "instance_type": "ml.m5.large"}, {"name": "b", "instance_type":
                                                                              "ml.m5.large"}],
                    source={"mlflow": "models:/churn@champion"}, shadow={"challenger": {"mlflow":
                                                                                        "models:/churn@next"}})),
     f"{M0}.shadow: an endpoint with a shadow variant has exactly one production variant (SageMaker), got 2"),
    (platform(model(image=LLM)),
     f"{M0}.variants[0].instance_type: 'ml.m5.large' has no GPU; huggingface-llm images run on GPU instances "
     "(ml.g5, ml.g6, ml.p4d, ...)"),
    (platform(model(SERVERLESS, image=LLM)),
     f"{M0}.serverless: huggingface-llm images run on GPU instances and serverless endpoints have none; use variants "
     "with a GPU instance type (ml.g5, ml.g6, ml.p4d, ...)"),
    (platform(model(variants=[{"instance_type": "ml.g5.xlarge"}], volume_size_gb=100)),
     f"{M0}.volume_size_gb: 'ml.g5.xlarge' has local NVMe storage, which SageMaker uses instead of an EBS volume; "
     "drop volume_size_gb or choose an instance type without local storage"),
    (platform(model(container_startup_timeout_seconds=30)),
     f"{M0}.container_startup_timeout_seconds: must be greater than or equal to 60, got 30"),
])
def test_a_bad_serving_mode_is_one_line_naming_the_key(raw, expected):
    assert error_of(raw) == expected


def test_shipped_stacks_use_the_modes(shipped_plan):
    staging = shipped_plan("staging").get("staging-fraud-config").inputs
    assert [(v["variantName"], v["initialVariantWeight"]) for v in staging["shadowProductionVariants"]] == [
        ("shadow", 1)]
    assert staging["dataCaptureConfig"]["enableCapture"] is True
    prod = shipped_plan("prod")
    output = prod.get("prod-doc-scoring-config").inputs["asyncInferenceConfig"]["outputConfig"]
    assert output["s3OutputPath"].endswith("/async/doc-scoring/responses/")
    assert output["s3FailurePath"].endswith("/async/doc-scoring/failures/")
    assert output["kmsKeyId"] == prod.outputs["dataKeyArn"]
    assert output["notificationConfig"]["errorTopic"].endswith(":" + prod.get("prod-alerts-topic").inputs["name"])
    from_zero = prod.get("prod-doc-scoring-primary-scale-out-from-zero").inputs
    assert (from_zero["metricName"], from_zero["threshold"]) == ("HasBacklogWithoutCapacity", 1)
    [variant] = shipped_plan("dev").get("dev-assistant-config").inputs["productionVariants"]
    assert (variant["instanceType"], variant["containerStartupHealthCheckTimeoutInSeconds"],
            variant["modelDataDownloadTimeoutInSeconds"]) == ("ml.g5.2xlarge", 900, 900)
    image = shipped_plan("dev").get("dev-assistant-model").inputs["primaryContainer"]["image"]
    assert image.startswith("763104351884.dkr.ecr.eu-west-1.amazonaws.com/huggingface-pytorch-tgi-inference:")


def _endpoint_error(settings: dict, **context) -> str:
    """The one-line ValueError ModelEndpoint raises, before creating anything, when its context does not fit
    (a context value given as a callable is made inside the program: resources need its event loop)."""
    from emlops.components.endpoint import EndpointContext, EndpointSettings, ModelArtifact, ModelEndpoint
    from emlops.components.settings import Placement
    from tests.conftest import run_components

    placement = Placement("vpc-0123456789abcdef0", ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"])
    base = dict(artifact=ModelArtifact("s3://ml-artifacts/models/churn/model.tar.gz"), image_uri=IMAGE,
                placement=placement)
    with pytest.raises(ValueError) as caught:
        run_components(lambda: ModelEndpoint("churn", EndpointSettings.model_validate(
            {"variants": [{"instance_type": "ml.m5.large"}], **settings}), EndpointContext(**{
                **base, **{key: value() if callable(value) else value for key, value in context.items()}})))
    return str(caught.value)


IMAGE = "763104351884.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:alerts"


def test_a_context_that_does_not_fit_the_mode_is_refused_before_anything_is_created():
    from emlops.components.endpoint import ModelArtifact
    from emlops.components.storage import SecureBucket, SecureBucketArgs

    queue = {"serving": "async", "async_inference": ASYNC}
    assert _endpoint_error(queue, alarm_topic_arn=TOPIC) == (
        "asynchronous endpoints read requests from and write responses to S3: give an inference_bucket")
    assert _endpoint_error(queue, inference_bucket=lambda: SecureBucket("inference", SecureBucketArgs())) == (
        "asynchronous endpoints announce failures on the alerts topic: give alarm_topic_arn")
    challenger = ModelArtifact("s3://ml-artifacts/models/churn/2/model.tar.gz")
    assert _endpoint_error({"shadow": {}}) == "a shadow variant serves a challenger: give challenger"
    assert _endpoint_error({}, challenger=challenger) == (
        "a challenger is served by a shadow variant: give settings.shadow or drop challenger")
    assert _endpoint_error({"shadow": {}}, challenger=challenger) == (
        "a challenger_image_uri is required unless the challenger is a model package")
    assert _endpoint_error({"mode": "multi_model"}) == (
        "a multi-model endpoint serves the archives under an S3 prefix: the artifact must be an uncompressed prefix "
        "(compressed=False) ending in '/'")
