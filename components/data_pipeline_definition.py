"""The data pipeline's definition, built by the SageMaker SDK v3 (`sagemaker-mlops`), offline.

Claim (Lambda: move what landed to this run's batch folder) -> HasBatch (condition: anything claimed?) ->
Validate (processing: SageMaker Model Monitor's analyzer checks the batch against the declared constraints) ->
Gate (Lambda: violations move the batch to quarantine) -> IsValid (condition) -> Transform (processing: the team's
image) -> Ingest (Lambda: the transformed records into the feature group); or, when the batch is invalid,
ValidationFailed (a fail step naming the violations and where the batch went: the run fails, and the alerts topic
hears of it). The Lambda function's code is `components/data_pipeline_steps.py`.

Both processing jobs run in the private subnets, encrypted with the datasets key (volumes and outputs), the
analyzer with network isolation (it reads and writes only its S3 channels), the transformation as configured. The
SDK runs in the preview's one session for the region (`components/sagemaker_sdk.py`); definitions are kept by their
inputs (`components/built_cache.py`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from emlops.components import sagemaker_sdk
from emlops.components.built_cache import cached

STEP_NAMES = ("Claim", "HasBatch", "Validate", "Gate", "IsValid", "Transform", "Ingest")
FAIL_STEP = "ValidationFailed"
INPUT, OUTPUT, BASELINE = "/opt/ml/processing/input", "/opt/ml/processing/output", "/opt/ml/processing/baseline"


@dataclass(frozen=True)
class DataPipelineSpec:
    """Everything the definition holds, as plain values (resolved Outputs)."""

    region: str
    role_arn: str
    function_arn: str
    kms_key_arn: str
    landing_uri: str
    """`s3://<datasets bucket>/<landing prefix>`."""
    runs_uri: str
    """`s3://<datasets bucket>/data-pipelines/<name>/`: batches/, reports/, transformed/, quarantine/ below."""
    feature_group_name: str
    constraints_s3_uri: str
    dataset_format: str
    analyzer_image_uri: str
    validation_instance_type: str
    validation_volume_size_gb: int
    validation_max_runtime_seconds: int
    transformation_image_uri: str
    transformation_command: Sequence[str]
    transformation_instance_type: str
    transformation_volume_size_gb: int
    transformation_max_runtime_seconds: int
    transformation_network_isolation: bool
    quarantine: bool
    subnet_ids: Sequence[str] = ()
    security_group_ids: Sequence[str] = ()


def definition(spec: DataPipelineSpec, pipeline_name: str) -> Union[str, Awaitable[str]]:
    """`build_definition`, built once per spec, SDK version and version of the modules that drive it
    (`built_cache`; an awaitable of it where the build worker builds it)."""
    return cached("data-pipeline", {"spec": dataclasses.asdict(spec), "pipeline_name": pipeline_name},
                  packages=sagemaker_sdk.SDK_PACKAGES, source=(Path(__file__), sagemaker_sdk.SOURCE),
                  build=functools.partial(build_definition, spec, pipeline_name))


def build_definition(spec: DataPipelineSpec, pipeline_name: str) -> str:
    """The pipeline definition JSON the SDK writes (same spec, byte-identical string)."""
    with sagemaker_sdk.offline_sdk(spec.region):
        return _build(spec, pipeline_name)


def analyzer_environment(dataset_format: str, constraints_file: str) -> dict[str, str]:
    """The analyzer container's contract: where the batch and the constraints are, where the report goes."""
    formats = {"csv": {"csv": {"header": True}}, "json": {"json": {"line": True}}}
    return {"dataset_format": json.dumps(formats[dataset_format], sort_keys=True),
            "dataset_source": f"{INPUT}/batch", "output_path": OUTPUT,
            "baseline_constraints": f"{BASELINE}/{constraints_file}", "publish_cloudwatch_metrics": "Disabled"}


def _build(spec: DataPipelineSpec, pipeline_name: str) -> str:
    from sagemaker.core.lambda_helper import Lambda
    from sagemaker.core.network import NetworkConfig
    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import ProcessingInput, ProcessingOutput, ProcessingS3Input, ProcessingS3Output
    from sagemaker.core.workflow.conditions import ConditionEquals, ConditionGreaterThan
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow import ConditionStep, FailStep, LambdaStep, Pipeline, ProcessingStep
    from sagemaker.mlops.workflow.lambda_step import LambdaOutput, LambdaOutputTypeEnum

    datasets_bucket = spec.runs_uri[len("s3://"):].split("/", 1)[0]
    session = sagemaker_sdk.pipeline_session(spec.region, datasets_bucket)
    steps = Lambda(function_arn=spec.function_arn, session=session)

    def run_uri(kind: str) -> Join:
        return Join(on="", values=[f"{spec.runs_uri}{kind}/", ExecutionVariables.PIPELINE_EXECUTION_ID, "/"])

    def outputs(**kinds: LambdaOutputTypeEnum) -> list:
        return [LambdaOutput(output_name=name, output_type=kind) for name, kind in kinds.items()]

    def processor(image: str, instance_type: str, volume_gb: int, runtime: int, isolated: bool, **options):
        network = NetworkConfig(enable_network_isolation=isolated, subnets=list(spec.subnet_ids) or None,
                                security_group_ids=list(spec.security_group_ids) or None,
                                encrypt_inter_container_traffic=True)
        return Processor(role=spec.role_arn, image_uri=image, instance_count=1, instance_type=instance_type,
                         volume_size_in_gb=volume_gb, volume_kms_key=spec.kms_key_arn, output_kms_key=spec.kms_key_arn,
                         max_runtime_in_seconds=runtime, network_config=network, sagemaker_session=session, **options)

    def s3_input(name: str, uri, path: str, data_type: str = "S3Prefix"):
        return ProcessingInput(input_name=name, s3_input=ProcessingS3Input(
            s3_uri=uri, local_path=path, s3_data_type=data_type, s3_input_mode="File"))

    def s3_output(name: str, uri) -> ProcessingOutput:
        return ProcessingOutput(output_name=name, s3_output=ProcessingS3Output(
            s3_uri=uri, local_path=OUTPUT, s3_upload_mode="EndOfJob"))

    batch = run_uri("batches")
    claim = LambdaStep(name="Claim", lambda_func=steps, outputs=outputs(objects=LambdaOutputTypeEnum.Integer), inputs={
        "action": "claim", "landing_uri": spec.landing_uri, "batch_uri": batch, "kms_key_id": spec.kms_key_arn,
        "claims_uri": f"{spec.runs_uri}claims/"})

    constraints_file = spec.constraints_s3_uri.rsplit("/", 1)[1]
    analyzer = processor(spec.analyzer_image_uri, spec.validation_instance_type, spec.validation_volume_size_gb,
                         spec.validation_max_runtime_seconds, True,
                         env=analyzer_environment(spec.dataset_format, constraints_file))
    validate = ProcessingStep(name="Validate", step_args=analyzer.run(
        inputs=[s3_input("batch", batch, f"{INPUT}/batch"),
                s3_input("constraints", spec.constraints_s3_uri, BASELINE, "S3Prefix")],
        outputs=[s3_output("report", run_uri("reports"))]))
    report = validate.properties.ProcessingOutputConfig.Outputs["report"].S3Output.S3Uri
    gate = LambdaStep(name="Gate", lambda_func=steps, inputs={
        "action": "gate", "report_uri": report, "batch_uri": batch, "kms_key_id": spec.kms_key_arn,
        "quarantine_uri": run_uri("quarantine") if spec.quarantine else ""},
        outputs=outputs(valid=LambdaOutputTypeEnum.Boolean, violations=LambdaOutputTypeEnum.Integer,
                        summary=LambdaOutputTypeEnum.String, quarantine_uri=LambdaOutputTypeEnum.String))

    transformer = processor(spec.transformation_image_uri, spec.transformation_instance_type,
                            spec.transformation_volume_size_gb, spec.transformation_max_runtime_seconds,
                            spec.transformation_network_isolation, entrypoint=list(spec.transformation_command))
    transform = ProcessingStep(name="Transform", step_args=transformer.run(
        inputs=[s3_input("batch", batch, INPUT)], outputs=[s3_output("features", run_uri("transformed"))]))
    features = transform.properties.ProcessingOutputConfig.Outputs["features"].S3Output.S3Uri
    ingest = LambdaStep(name="Ingest", lambda_func=steps, outputs=outputs(records=LambdaOutputTypeEnum.Integer),
                        inputs={"action": "ingest", "output_uri": features, "feature_group": spec.feature_group_name})

    where = (["; quarantined at ", gate.properties.Outputs["quarantine_uri"]] if spec.quarantine
             else ["; the batch stays at ", batch])
    fail = FailStep(name=FAIL_STEP, error_message=Join(on="", values=[
        "The batch failed validation: ", gate.properties.Outputs["violations"], " violations (",
        gate.properties.Outputs["summary"], ")", *where]))
    is_valid = ConditionStep(name="IsValid", conditions=[ConditionEquals(left=gate.properties.Outputs["valid"],
                                                                         right=True)],
                             if_steps=[transform, ingest], else_steps=[fail])
    has_batch = ConditionStep(name="HasBatch", conditions=[ConditionGreaterThan(
        left=claim.properties.Outputs["objects"], right=0)], if_steps=[validate, gate, is_valid], else_steps=[])
    return Pipeline(name=pipeline_name, steps=[claim, has_batch], sagemaker_session=session).definition()
