"""Serving-mode rules: asynchronous endpoints keep their responses encrypted and their failures reported; shadow
tests capture the traffic they are judged on. (The ML rules of ml.py read the helpers here to see shadow variants
and asynchronous endpoints.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from emlops.catalog import resources_sagemaker as sagemaker
from emlops.guardrails.helpers import UNKNOWN, Settings, get, items, resource_rule

ENDPOINT_CONFIG = sagemaker.ENDPOINT_CONFIG.token


def shadow_variants(config_props: Any) -> list[Any]:
    """The shadow variants of an endpoint configuration's inputs (none when unknown)."""
    return [v for v in items(get(config_props, "shadowProductionVariants")) if v is not UNKNOWN]


def asynchronous(config_props: Any) -> bool:
    """Whether an endpoint configuration's inputs serve asynchronously."""
    return get(config_props, "asyncInferenceConfig") is not None


@resource_rule("sagemaker-async-output-encrypted", types=[ENDPOINT_CONFIG], severity="high",
               description="Asynchronous endpoints write responses and failures to S3 encrypted with a KMS key.",
               remediation="ModelEndpoint encrypts them with its context's key (the platform's data key); for raw "
                           "resources set async_inference_config.output_config.kms_key_id.")
def async_output_encrypted(props: Any, settings: Settings) -> Iterator[str]:
    output = get(props, "asyncInferenceConfig", "outputConfig")
    if output is None or output is UNKNOWN:
        return
    if get(output, "kmsKeyId") in (None, ""):
        yield "asynchronous responses are not encrypted (asyncInferenceConfig.outputConfig.kmsKeyId is not set)"


@resource_rule("sagemaker-async-failures-reported", types=[ENDPOINT_CONFIG], severity="medium",
               description="Asynchronous endpoints write failed requests to an S3 failure path and announce them on "
                           "an SNS error topic, so a failure is never silent.",
               remediation="ModelEndpoint writes failures under <output_prefix>failures/ and announces them on the "
                           "environment's alerts topic; for raw resources set output_config.s3_failure_path and "
                           "notification_config.error_topic.")
def async_failures_reported(props: Any, settings: Settings) -> Iterator[str]:
    output = get(props, "asyncInferenceConfig", "outputConfig")
    if output is None or output is UNKNOWN:
        return
    if get(output, "s3FailurePath") in (None, ""):
        yield "failed requests have no S3 failure path (asyncInferenceConfig.outputConfig.s3FailurePath)"
    if get(output, "notificationConfig", "errorTopic") in (None, ""):
        yield "failures are announced on no topic (asyncInferenceConfig.outputConfig.notificationConfig.errorTopic)"


@resource_rule("sagemaker-shadow-capture", types=[ENDPOINT_CONFIG], severity="medium",
               description="An endpoint with a shadow variant captures its traffic: the challenger is judged on the "
                           "captured requests and responses of both variants.",
               remediation="Leave models[].data_capture on (the default outside dev) for models with a shadow; for raw "
                           "resources set data_capture_config.enable_capture.")
def shadow_capture(props: Any, settings: Settings) -> Iterator[str]:
    shadows = shadow_variants(props)
    if not shadows:
        return
    capture = get(props, "dataCaptureConfig")
    if capture is UNKNOWN:
        return
    if capture is None or get(capture, "enableCapture") is False:
        names = ", ".join(repr(get(v, "variantName", default="?")) for v in shadows)
        yield f"shadow variant {names} is compared with production without captured data (dataCaptureConfig)"


POLICIES = [async_output_encrypted, async_failures_reported, shadow_capture]
