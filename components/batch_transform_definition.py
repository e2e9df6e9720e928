"""The batch transform pipeline's definition, built by the SageMaker SDK v3 (`sagemaker-mlops`), offline.

One step, Transform: a transform job of the model over every object under the input prefix, writing
`<object>.out` under the output prefix, encrypted (results, and volumes unless the instance type's storage is
local NVMe, which its hardware encrypts) with the key, and, monitored, capturing
its inputs for the data-quality monitor. The job runs as the model's execution role, in the model's VPC with its
network isolation (CreateTransformJob takes neither: they are the model's).

The SDK runs in the preview's one session for the region (`components/sagemaker_sdk.py`); the transformer is
given a job name prefix so that it never asks SageMaker for the model's image to name the job after (a pipeline
names its jobs itself). Definitions are kept by their inputs (`components/built_cache.py`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from emlops.catalog.aws import has_local_storage
from emlops.components import sagemaker_sdk
from emlops.components.built_cache import cached

STEP_NAME = "Transform"


@dataclass(frozen=True)
class TransformSpec:
    """Everything the definition holds, as plain values (resolved Outputs)."""

    region: str
    model_name: str
    input_s3_uri: str
    output_s3_uri: str
    kms_key_arn: str
    instance_type: str
    instance_count: int
    max_payload_mb: int
    max_concurrent_transforms: int
    """0: not set (SageMaker asks the container, else 1)."""
    batch_strategy: Optional[str]
    """None with split type `None` (each object is one request)."""
    split_type: str
    content_type: str
    accept: str
    assemble_with: str
    environment: Sequence[tuple[str, str]] = ()
    capture_s3_uri: Optional[str] = None
    """Where the job captures its inputs for the monitor. Default: no capture."""


def definition(spec: TransformSpec, pipeline_name: str) -> Union[str, Awaitable[str]]:
    """`build_definition`, built once per spec, SDK version and version of the modules that drive it
    (`built_cache`; an awaitable of it where the build worker builds it)."""
    return cached("batch-transform-pipeline", {"spec": dataclasses.asdict(spec), "pipeline_name": pipeline_name},
                  packages=sagemaker_sdk.SDK_PACKAGES, source=(Path(__file__), sagemaker_sdk.SOURCE),
                  build=functools.partial(build_definition, spec, pipeline_name))


def build_definition(spec: TransformSpec, pipeline_name: str) -> str:
    """The pipeline definition JSON the SDK writes (same spec, byte-identical string)."""
    with sagemaker_sdk.offline_sdk(spec.region):
        return _build(spec, pipeline_name)


def _build(spec: TransformSpec, pipeline_name: str) -> str:
    from sagemaker.core.shapes import BatchDataCaptureConfig
    from sagemaker.core.transformer import Transformer
    from sagemaker.mlops.workflow import Pipeline, TransformStep

    output_bucket = spec.output_s3_uri[len("s3://"):].split("/", 1)[0]
    session = sagemaker_sdk.pipeline_session(spec.region, output_bucket)
    transformer = Transformer(
        model_name=spec.model_name, instance_count=spec.instance_count, instance_type=spec.instance_type,
        strategy=spec.batch_strategy, assemble_with=spec.assemble_with, output_path=spec.output_s3_uri,
        output_kms_key=spec.kms_key_arn, accept=spec.accept,
        max_concurrent_transforms=spec.max_concurrent_transforms or None, max_payload=spec.max_payload_mb,
        env=dict(spec.environment) or None, base_transform_job_name=pipeline_name, sagemaker_session=session,
        # instances with local NVMe storage encrypt it in hardware, and SageMaker refuses a volume key for them
        volume_kms_key=None if has_local_storage(spec.instance_type) else spec.kms_key_arn)
    capture = None
    if spec.capture_s3_uri is not None:
        capture = BatchDataCaptureConfig(destination_s3_uri=spec.capture_s3_uri, kms_key_id=spec.kms_key_arn,
                                         generate_inference_id=True)
    step = TransformStep(name=STEP_NAME, step_args=transformer.transform(
        data=spec.input_s3_uri, data_type="S3Prefix", content_type=spec.content_type, split_type=spec.split_type,
        batch_data_capture_config=capture))
    return Pipeline(name=pipeline_name, steps=[step], sagemaker_session=session).definition()
