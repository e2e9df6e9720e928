"""AWS's limits inside component settings: strict types, instance types, content types, S3 locations.

Each limit is tested twice: the component's settings in Python (the exact message), and a stack file (one
stderr line naming the file and key, exit 2, no plan)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from emlops.components.endpoint_args import DataCaptureSettings, VariantSettings
from emlops.components.kubernetes_args import TeamSettings
from emlops.components.locations import BUCKET_RULE, check_key_prefix, check_s3_uri
from emlops.components.model_quality import ModelQualitySettings
from emlops.components.monitoring_args import BaselineSettings, MonitoringSettings
from emlops.components.network_args import ManagedNetworkSettings
from emlops.components.retraining_args import RetrainingSettings
from emlops.program.config_models import ModelSourceConfig
from tests.conftest import edit_stack, preview_error


def settings_error(model, raw: dict) -> tuple[tuple, str]:
    """(location, message) of the one error `raw` gives `model`."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(raw)
    errors = caught.value.errors()
    assert len(errors) == 1, errors
    return tuple(errors[0]["loc"]), errors[0]["msg"]


# -- strict booleans and integers (Settings' base) -------------------------------------------------------------

VARIANT = {"instance_type": "ml.m5.large"}


@pytest.mark.parametrize("model, raw, loc, message", [
    (VariantSettings, {**VARIANT, "initial_instance_count": True}, ("initial_instance_count",),
     "must be a whole number"),
    (VariantSettings, {**VARIANT, "initial_instance_count": 1.5}, ("initial_instance_count",),
     "must be a whole number"),
    (VariantSettings, {**VARIANT, "initial_instance_count": "3"}, ("initial_instance_count",),
     "must be a whole number"),
    (VariantSettings, {**VARIANT, "weight": True}, ("weight",), "must be a number"),
    (ManagedNetworkSettings, {"public_subnets": 1}, ("public_subnets",), "must be true or false"),
    (ManagedNetworkSettings, {"public_subnets": "yes"}, ("public_subnets",), "must be true or false"),
    (DataCaptureSettings, {"enabled": 0}, ("enabled",), "must be true or false"),
    (MonitoringSettings, {"instance_count": False}, ("instance_count",), "must be a whole number"),
    (TeamSettings, {"name": "fraud", "gpus": True, "cpu": "8", "memory": "32Gi"}, ("gpus",),
     "must be a whole number"),
])
def test_booleans_and_whole_numbers_are_strict(model, raw, loc, message):
    assert settings_error(model, raw) == (loc, message)


def test_strict_types_accept_what_they_say():
    assert VariantSettings(**VARIANT, initial_instance_count=3, weight=2).weight == 2.0
    assert ManagedNetworkSettings(public_subnets=False).public_subnets is False


@pytest.mark.parametrize("old, new, message", [
    ("max_session_hours: 8", "max_session_hours: true",
     "emlops:platform.personas.max_session_hours: must be a whole number, got True"),
    ("max_session_hours: 8", "max_session_hours: 1.5",
     "emlops:platform.personas.max_session_hours: must be a whole number, got 1.5"),
    ("max_session_hours: 8", 'max_session_hours: "3"',
     "emlops:platform.personas.max_session_hours: must be a whole number, got '3'"),
    ("az_count: 2", "az_count: true", "emlops:platform.network.managed.az_count: must be a whole number, got True"),
    ("production: false", "production: 1", "emlops:platform.production: must be true or false, got 1"),
    ("production: false", "production: yes please",
     "emlops:platform.production: must be true or false, got 'yes please'"),
    ("instance_type: ml.m5.large\n            initial_instance_count: 1",
     "instance_type: ml.m5.large\n            initial_instance_count: 1.0",
     "emlops:platform.models[1].variants[0].initial_instance_count: must be a whole number, got 1.0"),
])
def test_stack_file_types_are_strict(project_copy, old, new, message):
    edit_stack(project_copy, "dev", old, new)
    assert preview_error(project_copy, "dev") == f"stacks/Pulumi.dev.yaml: {message}"


# -- instance types by the API they feed (botocore's enums) ----------------------------------------------------

def test_instance_types_come_from_the_enum_of_their_api():
    from emlops.catalog.aws import api_enum
    from emlops.components.api_limits import INSTANCE_TYPE_SHAPES, instance_types

    assert INSTANCE_TYPE_SHAPES == {"hosting": "ProductionVariantInstanceType", "training": "TrainingInstanceType",
                                    "processing": "ProcessingInstanceType",
                                    "batch transform": "TransformInstanceType"}
    for kind, shape in INSTANCE_TYPE_SHAPES.items():
        assert instance_types(kind) == api_enum("sagemaker", shape)
    # the enums differ: a hosting type that trains nothing
    assert "ml.inf2.xlarge" in instance_types("hosting") and "ml.inf2.xlarge" not in instance_types("training")


@pytest.mark.parametrize("model, raw, loc, message", [
    (RetrainingSettings, {"training_instance_type": "ml.m5.larg"}, ("training_instance_type",),
     "Value error, 'ml.m5.larg' is not a SageMaker training instance type; did you mean 'ml.m5.large'?"),
    (RetrainingSettings, {"training_instance_type": "ml.inf2.xlarge"}, ("training_instance_type",),
     "Value error, 'ml.inf2.xlarge' is not a SageMaker training instance type; did you mean 'ml.p2.xlarge'?"),
    (RetrainingSettings, {"processing_instance_type": "m5.xlarge"}, ("processing_instance_type",),
     "Value error, 'm5.xlarge' is not a SageMaker processing instance type; did you mean 'ml.m5.xlarge'?"),
    (RetrainingSettings, {"processing_instance_type": "gpu"}, ("processing_instance_type",),
     "Value error, 'gpu' is not a SageMaker processing instance type (see ProcessingInstanceType in the "
     "SageMaker API)"),
    (RetrainingSettings, {"inference_instance_types": ["ml.m5.large", "ml.m5.large"]}, ("inference_instance_types",),
     "Value error, instance types must be unique; got ml.m5.large, ml.m5.large"),
    (MonitoringSettings, {"instance_type": "ml.m5.huge"}, ("instance_type",),
     "Value error, 'ml.m5.huge' is not a SageMaker processing instance type; did you mean 'ml.m5.large'?"),
    (VariantSettings, {"instance_type": "ml.m5.larg"}, ("instance_type",),
     "Value error, 'ml.m5.larg' is not a SageMaker hosting instance type; did you mean 'ml.m5.large'?"),
])
def test_instance_types_name_their_api_and_the_closest_type(model, raw, loc, message):
    assert settings_error(model, raw) == (loc, message)
    assert len(message) < 200  # never the enum's hundreds of values


def test_inference_instance_types_must_also_run_batch_transform():
    hosting_only = sorted(set(_types("hosting")) - set(_types("batch transform")))[0]
    loc, message = settings_error(RetrainingSettings, {"inference_instance_types": [hosting_only]})
    assert loc == ("inference_instance_types",)
    assert message.startswith(f"Value error, {hosting_only!r} is not a SageMaker batch transform instance type")


def _types(kind: str) -> tuple[str, ...]:
    from emlops.components.api_limits import instance_types

    return instance_types(kind)


def test_stack_file_instance_type_error(project_copy):
    edit_stack(project_copy, "dev", "instance_type: ml.m5.large", "instance_type: ml.m5.larg")
    assert preview_error(project_copy, "dev") == (
        "stacks/Pulumi.dev.yaml: emlops:platform.models[1].variants[0].instance_type: 'ml.m5.larg' is not a "
        "SageMaker hosting instance type; did you mean 'ml.m5.large'?")


def test_guardrails_still_list_any_sagemaker_instance_type(project_copy):
    edit_stack(project_copy, "dev", "    training:\n", "    guardrails:\n      allowed_instance_types: [ml.m5.larg]\n"
               "    training:\n")
    assert preview_error(project_copy, "dev") == (
        "stacks/Pulumi.dev.yaml: emlops:platform.guardrails.allowed_instance_types: 'ml.m5.larg' is not a "
        "SageMaker instance type; did you mean 'ml.m5.large'?")


# -- content types (botocore's CaptureContentTypeHeader, ContentTypes and ResponseMIMETypes) --------------------

ELEVEN = [f"text/csv-{i}" for i in range(11)]


@pytest.mark.parametrize("model, raw, loc, message", [
    (DataCaptureSettings, {"csv_content_types": ELEVEN}, ("csv_content_types",),
     "Value error, at most 10 content types (CsvContentTypes in the SageMaker API), got 11"),
    (DataCaptureSettings, {"json_content_types": []}, ("json_content_types",),
     "Value error, at least 1 content type(s) (JsonContentTypes in the SageMaker API)"),
    (DataCaptureSettings, {"csv_content_types": ["csv"]}, ("csv_content_types",),
     "Value error, 'csv' is not a MIME type like 'text/csv' or 'application/json'"),
    (DataCaptureSettings, {"json_content_types": ["application/json; charset=utf-8"]}, ("json_content_types",),
     "Value error, 'application/json; charset=utf-8' is not a content type SageMaker takes here (JsonContentType: "
     "[a-zA-Z0-9](-*[a-zA-Z0-9])*\\/[a-zA-Z0-9](-*[a-zA-Z0-9.])*)"),
    (DataCaptureSettings, {"csv_content_types": ["text/" + "c" * 300]}, ("csv_content_types",),
     f"Value error, {'text/' + 'c' * 300!r} is not a MIME type like 'text/csv' or 'application/json'"),
    (DataCaptureSettings, {"csv_content_types": ["text/csv", "text/csv"]}, ("csv_content_types",),
     "Value error, content types must be unique; got text/csv, text/csv"),
    (RetrainingSettings, {"content_types": ["text/csv", "json"]}, ("content_types",),
     "Value error, 'json' is not a MIME type like 'text/csv' or 'application/json'"),
    (RetrainingSettings, {"content_types": ["text/c\tsv"]}, ("content_types",),
     "Value error, 'text/c\\tsv' is not a MIME type like 'text/csv' or 'application/json'"),
])
def test_content_types_within_the_api_shapes(model, raw, loc, message):
    assert settings_error(model, raw) == (loc, message)


def test_content_types_that_fit():
    assert DataCaptureSettings(csv_content_types=[f"text/csv-{i}" for i in range(10)]).csv_content_types[9] == \
        "text/csv-9"
    assert RetrainingSettings(content_types=["text/csv; charset=utf-8", "application/x-npy"]).content_types == [
        "text/csv; charset=utf-8", "application/x-npy"]


def test_stack_file_content_type_error(project_copy):
    edit_stack(project_copy, "dev", "ml.m5.large\n            initial_instance_count: 1",
               "ml.m5.large\n            initial_instance_count: 1\n"
               "        data_capture:\n          enabled: true\n          csv_content_types: [" + ", ".join(ELEVEN) + "]")
    assert preview_error(project_copy, "dev") == (
        "stacks/Pulumi.dev.yaml: emlops:platform.models[1].data_capture.csv_content_types: at most 10 content types "
        "(CsvContentTypes in the SageMaker API), got 11")


# -- S3 URIs and prefixes (components/locations.py) ------------------------------------------------------------

GRANT = "IAM reads '*' and '?' as wildcards and '${' as a policy variable in the grants made from it"


@pytest.mark.parametrize("uri, prefix, message", [
    ("s3://ml_models/m.tar.gz", False, f"'s3://ml_models/m.tar.gz' names bucket 'ml_models': {BUCKET_RULE}"),
    ("s3://ML-models/m.tar.gz", False, f"'s3://ML-models/m.tar.gz' names bucket 'ML-models': {BUCKET_RULE}"),
    ("s3://ab/m.tar.gz", False, f"'s3://ab/m.tar.gz' names bucket 'ab': {BUCKET_RULE}"),
    (f"s3://{'a' * 64}/m", False, f"'s3://{'a' * 64}/m' names bucket '{'a' * 64}': {BUCKET_RULE}"),
    ("s3://-models/m", False, f"'s3://-models/m' names bucket '-models': {BUCKET_RULE}"),
    ("s3://ml..models/m", False, "'s3://ml..models/m' names bucket 'ml..models': S3 bucket names have no two "
                                 "adjacent periods"),
    ("s3://192.168.5.4/m", False, "'s3://192.168.5.4/m' names bucket '192.168.5.4': S3 bucket names are not IP "
                                  "addresses"),
    ("s3://xn--models/m", False, "'s3://xn--models/m' names bucket 'xn--models': S3 reserves bucket names starting "
                                 "with 'xn--'"),
    ("s3://models-s3alias/m", False, "'s3://models-s3alias/m' names bucket 'models-s3alias': S3 reserves bucket "
                                     "names ending with '-s3alias'"),
    ("s3://models--x-s3/m", False, "'s3://models--x-s3/m' names bucket 'models--x-s3': S3 reserves bucket names "
                                   "ending with '--x-s3'"),
    ("s3://models/*/m.tar.gz", False, f"'s3://models/*/m.tar.gz' has '*' in its key: {GRANT}"),
    ("s3://models/??????/", True, f"'s3://models/??????/' has '?' in its key: {GRANT}"),
    ("s3://models/${aws:username}/", True, f"'s3://models/${{aws:username}}/' has '${{' in its key: {GRANT}"),
    ("s3://models/churn/../fraud/", True, "'s3://models/churn/../fraud/' has a '.' or '..' segment in its key; "
                                          "give the plain path"),
    ("s3://models/./churn/", True, "'s3://models/./churn/' has a '.' or '..' segment in its key; give the plain "
                                   "path"),
    ("s3://models/churn//v1/", True, "'s3://models/churn//v1/' has an empty segment ('//' or a leading '/') in "
                                     "its key"),
    ("s3://models//churn/", True, "'s3://models//churn/' has an empty segment ('//' or a leading '/') in its key"),
    ("s3://models/ch urn/", True, "'s3://models/ch urn/' has whitespace or a control character in its key"),
    ("s3://models/churn/\x07", True, "'s3://models/churn/\\x07' has whitespace or a control character in its key"),
    ("s3://models/" + "k" * 1025, True, f"'s3://models/{'k' * 1025}' has a key of 1025 bytes; S3 allows 1024"),
    ("s3://models/churn/", False, "'s3://models/churn/' is not an s3://<bucket>/<key> object URI"),
    ("s3://models", True, "'s3://models' is not an s3://<bucket>[/<prefix>] URI"),
    ("https://models/m", False, "'https://models/m' is not an s3://<bucket>/<key> object URI"),
])
def test_s3_uris_follow_s3_and_iam_rules(uri, prefix, message):
    with pytest.raises(ValueError) as caught:
        check_s3_uri(uri, prefix=prefix)
    assert str(caught.value) == message


def test_s3_uris_that_are_fine():
    assert check_s3_uri("s3://acme-ml.prod-models/churn/2026/model.tar.gz") == (
        "acme-ml.prod-models", "churn/2026/model.tar.gz")
    assert check_s3_uri("s3://models/", prefix=True) == ("models", "")
    assert check_s3_uri("s3://models/churn/v1.2/", prefix=True) == ("models", "churn/v1.2/")


@pytest.mark.parametrize("value, message", [
    ("??????/", f"'??????/' has '?' in its key: {GRANT}"),
    ("experiments/*", f"'experiments/*' has '*' in its key: {GRANT}"),
    ("../models/", "'../models/' has a '.' or '..' segment in its key; give the plain path"),
    ("/experiments/", "'/experiments/' has an empty segment ('//' or a leading '/') in its key"),
    ("experiments", "'experiments' must end with '/' (a prefix, e.g. 'datasets/')"),
])
def test_key_prefixes(value, message):
    with pytest.raises(ValueError) as caught:
        check_key_prefix(value)
    assert str(caught.value) == message
    assert check_key_prefix("experiments/team-a/") == "experiments/team-a/"


@pytest.mark.parametrize("model, raw, loc, message", [
    (BaselineSettings, {"statistics_s3_uri": "s3://baselines/a/../statistics.json",
                        "constraints_s3_uri": "s3://baselines/constraints.json"}, ("statistics_s3_uri",),
     "Value error, 's3://baselines/a/../statistics.json' has a '.' or '..' segment in its key; give the plain path"),
    (BaselineSettings, {"statistics_s3_uri": "s3://baselines/statistics.json",
                        "constraints_s3_uri": "s3://baselines/*.json"}, ("constraints_s3_uri",),
     f"Value error, 's3://baselines/*.json' has '*' in its key: {GRANT}"),
    (BaselineSettings, {"statistics_s3_uri": "s3://baselines/", "constraints_s3_uri": "s3://baselines/c.json"},
     ("statistics_s3_uri",), "must be an S3 object URI, s3://<bucket>/<key>"),
    (ModelQualitySettings, {"ground_truth_s3_uri": "s3://xn--truth/churn/", "problem_type": "Regression",
                            "inference_attribute": "0", "threshold": 1.0}, ("ground_truth_s3_uri",),
     "Value error, 's3://xn--truth/churn/' names bucket 'xn--truth': S3 reserves bucket names starting with 'xn--'"),
    (ModelSourceConfig, {"s3_uri": "s3://models/??????/"}, ("s3_uri",),
     f"Value error, 's3://models/??????/' has '?' in its key: {GRANT}"),
    (ModelSourceConfig, {"s3_uri": "s3://192.168.1.1/m.tar.gz"}, ("s3_uri",),
     "Value error, 's3://192.168.1.1/m.tar.gz' names bucket '192.168.1.1': S3 bucket names are not IP addresses"),
])
def test_s3_settings_use_the_one_validator(model, raw, loc, message):
    assert settings_error(model, raw) == (loc, message)


def test_contexts_use_the_one_validator():
    from emlops.components.endpoint_args import ModelArtifact

    with pytest.raises(ValueError, match=r"^model artifact 's3://models/\*\.tar\.gz' has '\*' in its key: IAM reads"):
        ModelArtifact("s3://models/*.tar.gz")


@pytest.mark.parametrize("old, new, message", [
    ("s3_uri: s3://acme-ml-dev-models/fraud/2026-11-20/model.tar.gz", "s3_uri: s3://acme-ml-dev-models/fraud/*/",
     f"emlops:platform.models[1].source.s3_uri: 's3://acme-ml-dev-models/fraud/*/' has '*' in its key: {GRANT}"),
    ("s3_uri: s3://acme-ml-dev-models/fraud/2026-11-20/model.tar.gz", "s3_uri: s3://acme-ml-dev-models/../m.tar.gz",
     "emlops:platform.models[1].source.s3_uri: 's3://acme-ml-dev-models/../m.tar.gz' has a '.' or '..' segment in "
     "its key; give the plain path"),
    ("s3_uri: s3://acme-ml-dev-models/fraud/2026-11-20/model.tar.gz", "s3_uri: s3://acme--x-s3/fraud/m.tar.gz",
     "emlops:platform.models[1].source.s3_uri: 's3://acme--x-s3/fraud/m.tar.gz' names bucket 'acme--x-s3': S3 "
     "reserves bucket names ending with '--x-s3'"),
])
def test_stack_file_s3_errors(project_copy, old, new, message):
    edit_stack(project_copy, "dev", old, new)
    assert preview_error(project_copy, "dev") == f"stacks/Pulumi.dev.yaml: {message}"


def test_stack_file_baseline_error(project_copy):
    edit_stack(project_copy, "prod", "ground_truth_s3_uri: s3://acme-ml-prod-ground-truth/churn/\n            problem",
               "ground_truth_s3_uri: s3://acme-ml-prod-ground-truth/${aws:userid}/\n            problem")
    assert preview_error(project_copy, "prod") == (
        "stacks/Pulumi.prod.yaml: emlops:platform.models[0].monitoring.model_quality.ground_truth_s3_uri: "
        f"'s3://acme-ml-prod-ground-truth/${{aws:userid}}/' has '${{' in its key: {GRANT}")
