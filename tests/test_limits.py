"""AWS's limits inside component settings: strict types, instance types, content types, S3 locations.

Each limit is tested twice: the component's settings in Python (the exact message), and a stack file (one
stderr line naming the file and key, exit 2, no plan)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from emlops.components.endpoint_args import DataCaptureSettings, VariantSettings
from emlops.components.kubernetes_args import TeamSettings
from emlops.components.monitoring_args import MonitoringSettings
from emlops.components.network_args import ManagedNetworkSettings
from emlops.components.retraining_args import RetrainingSettings
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
    ("initial_instance_count: 1", "initial_instance_count: 1.0",
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
    edit_stack(project_copy, "dev", "initial_instance_count: 1", "initial_instance_count: 1\n"
               "        data_capture:\n          enabled: true\n          csv_content_types: [" + ", ".join(ELEVEN) + "]")
    assert preview_error(project_copy, "dev") == (
        "stacks/Pulumi.dev.yaml: emlops:platform.models[1].data_capture.csv_content_types: at most 10 content types "
        "(CsvContentTypes in the SageMaker API), got 11")
