"""The retraining pipeline's definition, built by the SageMaker SDK v3 (`sagemaker-mlops`), offline.

Steps: Prepare (processing; its input the datasets prefix, or the feature store's point-in-time query run by
Athena) -> Train (training) -> Evaluate (processing, writes `evaluation.json`)
-> CheckMetric (condition on `metrics.<metric>.value`) -> Register (a model package in the model's
group, `PendingManualApproval`, with the data-quality baseline as drift-check baselines and its lineage as metadata:
`lineage_metadata`), or
MetricBelowThreshold (a fail step, so a model that is not good enough shows as a failed execution).

The SDK runs offline, without credentials, in the preview's one session for the region
(`components/sagemaker_sdk.py`); the session answers the artifacts bucket when `ModelBuilder.register` asks
for a default bucket. Importing the SDK costs ~1.5 s and ~150 MB, so it happens only when a stack has a
retraining pipeline whose definition was not built before with the same inputs and SDK (`definition`,
`components/built_cache.py`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from emlops.components import sagemaker_sdk
from emlops.components.built_cache import cached

STEP_NAMES = ("Prepare", "Train", "Evaluate", "CheckMetric")
REGISTER_STEP, FAIL_STEP = "Register", "MetricBelowThreshold"
EVALUATION_FILE = "evaluation.json"
# A registered version's lineage (CustomerMetadataProperties; `emlops lineage` reads them)
LINEAGE_EXECUTION, LINEAGE_STARTED = "emlops:pipeline-execution", "emlops:trained-at"
LINEAGE_FEATURE_GROUPS, LINEAGE_LABEL, LINEAGE_DATASET = "emlops:feature-groups", "emlops:label", "emlops:dataset"
_CONDITIONS = {">=": "ConditionGreaterThanOrEqualTo", ">": "ConditionGreaterThan",
               "<=": "ConditionLessThanOrEqualTo", "<": "ConditionLessThan"}


@dataclass(frozen=True)
class DefinitionSpec:
    """Everything the definition holds, as plain values (resolved Outputs)."""

    region: str
    role_arn: str
    package_group_name: str
    training_image_uri: str
    processing_image_uri: str
    input_s3_uri: str
    output_s3_uri: str
    kms_key_arn: str
    metric_name: str
    metric_threshold: float
    comparison: str
    processing_instance_type: str
    training_instance_type: str
    training_instance_count: int
    volume_size_gb: int
    max_runtime_seconds: int
    prepare_command: Sequence[str]
    evaluate_command: Sequence[str]
    content_types: Sequence[str]
    inference_instance_types: Sequence[str]
    baseline_statistics_s3_uri: Optional[str] = None
    baseline_constraints_s3_uri: Optional[str] = None
    subnet_ids: Sequence[str] = ()
    security_group_ids: Sequence[str] = ()
    model_output_s3_uri: Optional[str] = None
    """Where the Train step writes the model artifact. Default: `<output_s3_uri>/training`."""
    model_kms_key_arn: Optional[str] = None
    """Key of the model artifact. Default: `kms_key_arn`."""
    athena_query: Optional[str] = None
    """The training set's point-in-time query of the feature store (instead of `input_s3_uri`). Default: none."""
    athena_database: Optional[str] = None
    athena_workgroup: Optional[str] = None
    athena_output_s3_uri: Optional[str] = None
    """Where the query's results go: the workgroup's own (enforced) results location."""
    feature_groups: Sequence[str] = ()
    """SageMaker names of the feature groups the query reads (with `athena_query`), recorded in the lineage."""
    label: Optional[str] = None


def definition(spec: DefinitionSpec, pipeline_name: str) -> Union[str, Awaitable[str]]:
    """`build_definition`, built once per spec, SDK version and version of this module (`built_cache`;
    an awaitable of it where the build worker builds it)."""
    return cached("retraining-pipeline", {"spec": dataclasses.asdict(spec), "pipeline_name": pipeline_name},
                  packages=sagemaker_sdk.SDK_PACKAGES, source=(Path(__file__), sagemaker_sdk.SOURCE),
                  build=functools.partial(build_definition, spec, pipeline_name))


def build_definition(spec: DefinitionSpec, pipeline_name: str) -> str:
    """The pipeline definition JSON the SDK writes (same spec, byte-identical string)."""
    with sagemaker_sdk.offline_sdk(spec.region), _dataset_definitions_kept():
        return _build(spec, pipeline_name)


@contextlib.contextmanager
def _dataset_definitions_kept() -> Iterator[None]:
    """The SDK (sagemaker-core 2.x) writes a ProcessingInput's S3Input into the request and drops its
    DatasetDefinition (an Athena query's input); while a definition is built, the request keeps it too."""
    from sagemaker.core import processing

    original = processing._processing_input_to_request_dict

    def to_request(processing_input: Any) -> dict:
        request = original(processing_input)
        if processing_input.dataset_definition is not None:
            request["DatasetDefinition"] = _request_shape(processing_input.dataset_definition)
        return request

    processing._processing_input_to_request_dict = to_request
    try:
        yield
    finally:
        processing._processing_input_to_request_dict = original


def lineage_metadata(spec: DefinitionSpec) -> dict[str, Any]:
    """What a registered version was trained on, in its CustomerMetadataProperties (`emlops lineage` reads them): the
    execution that trained it and when it started, and the feature groups it read then (point in time) with its
    label, or the datasets prefix it read (whose object versions current at that time the bucket keeps)."""
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join

    metadata: dict[str, Any] = {
        LINEAGE_EXECUTION: ExecutionVariables.PIPELINE_EXECUTION_ARN,
        LINEAGE_STARTED: Join(on="", values=[ExecutionVariables.START_DATETIME])}
    if spec.athena_query is not None:
        metadata[LINEAGE_FEATURE_GROUPS] = ",".join(spec.feature_groups)
        metadata[LINEAGE_LABEL] = spec.label or ""
    else:
        metadata[LINEAGE_DATASET] = spec.input_s3_uri
    return metadata


def _request_shape(shape: Any) -> Any:
    """A sagemaker-core shape as the API's request members: PascalCase names, unset members left out."""
    if not hasattr(shape, "model_fields"):
        return shape
    return {"".join(part.capitalize() for part in name.split("_")): _request_shape(value)
            for name in shape.model_fields if (value := getattr(shape, name)) is not None}


def _build(spec: DefinitionSpec, pipeline_name: str) -> str:
    from sagemaker.core.drift_check_baselines import DriftCheckBaselines
    from sagemaker.core.model_metrics import MetricsSource
    from sagemaker.core.network import NetworkConfig
    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import ProcessingInput, ProcessingOutput, ProcessingS3Input, ProcessingS3Output
    from sagemaker.core.workflow import conditions
    from sagemaker.core.workflow.functions import JsonGet
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow import ConditionStep, FailStep, ModelStep, Pipeline, ProcessingStep, TrainingStep
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.core.training.configs import Compute, InputData, Networking, OutputDataConfig, StoppingCondition
    from sagemaker.train.model_trainer import ModelTrainer

    artifacts_bucket = spec.output_s3_uri[len("s3://"):].split("/", 1)[0]
    session = sagemaker_sdk.pipeline_session(spec.region, artifacts_bucket)
    prefix = spec.output_s3_uri.rstrip("/")

    def s3_input(name: str, uri, path: str):
        return ProcessingInput(input_name=name, s3_input=ProcessingS3Input(
            s3_uri=uri, local_path=path, s3_data_type="S3Prefix", s3_input_mode="File"))

    def s3_output(name: str, path: str):
        return ProcessingOutput(output_name=name, s3_output=ProcessingS3Output(
            s3_uri=f"{prefix}/{name}", local_path=path, s3_upload_mode="EndOfJob"))

    network = None
    if spec.subnet_ids:
        network = NetworkConfig(subnets=list(spec.subnet_ids), security_group_ids=list(spec.security_group_ids),
                                encrypt_inter_container_traffic=True)

    def processor(command: Sequence[str]):
        return Processor(role=spec.role_arn, image_uri=spec.processing_image_uri, instance_count=1,
                         instance_type=spec.processing_instance_type, entrypoint=list(command),
                         volume_size_in_gb=spec.volume_size_gb, volume_kms_key=spec.kms_key_arn,
                         output_kms_key=spec.kms_key_arn, max_runtime_in_seconds=spec.max_runtime_seconds,
                         network_config=network, sagemaker_session=session)

    training_set = s3_input("input", spec.input_s3_uri, "/opt/ml/processing/input")
    if spec.athena_query is not None:  # the processing job runs the query and hands the job its results
        from sagemaker.core.shapes import AthenaDatasetDefinition, DatasetDefinition

        training_set = ProcessingInput(input_name="input", dataset_definition=DatasetDefinition(
            athena_dataset_definition=AthenaDatasetDefinition(
                catalog="AwsDataCatalog", database=spec.athena_database, query_string=spec.athena_query,
                work_group=spec.athena_workgroup, output_s3_uri=spec.athena_output_s3_uri,
                kms_key_id=spec.kms_key_arn, output_format="PARQUET"),
            local_path="/opt/ml/processing/input", data_distribution_type="FullyReplicated", input_mode="File"))
    prepare = ProcessingStep(name="Prepare", step_args=processor(spec.prepare_command).run(
        inputs=[training_set],
        outputs=[s3_output("train", "/opt/ml/processing/train"), s3_output("test", "/opt/ml/processing/test")]))
    outputs = prepare.properties.ProcessingOutputConfig.Outputs
    trainer = ModelTrainer(
        training_image=spec.training_image_uri, role=spec.role_arn, sagemaker_session=session,
        compute=Compute(instance_type=spec.training_instance_type, instance_count=spec.training_instance_count,
                        volume_size_in_gb=spec.volume_size_gb, volume_kms_key_id=spec.kms_key_arn),
        networking=Networking(subnets=list(spec.subnet_ids), security_group_ids=list(spec.security_group_ids),
                              enable_inter_container_traffic_encryption=True) if spec.subnet_ids else None,
        output_data_config=OutputDataConfig(
            s3_output_path=spec.model_output_s3_uri.rstrip("/") if spec.model_output_s3_uri else f"{prefix}/training",
            kms_key_id=spec.model_kms_key_arn or spec.kms_key_arn),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=spec.max_runtime_seconds),
        input_data_config=[InputData(channel_name="train", data_source=outputs["train"].S3Output.S3Uri)],
    )
    train = TrainingStep(name="Train", step_args=trainer.train())
    model_uri = train.properties.ModelArtifacts.S3ModelArtifacts
    report = PropertyFile(name="EvaluationReport", output_name="evaluation", path=EVALUATION_FILE)
    evaluate = ProcessingStep(name="Evaluate", property_files=[report], step_args=processor(spec.evaluate_command).run(
        inputs=[s3_input("model", model_uri, "/opt/ml/processing/model"),
                s3_input("test", outputs["test"].S3Output.S3Uri, "/opt/ml/processing/test")],
        outputs=[s3_output("evaluation", "/opt/ml/processing/evaluation")]))

    baselines = None
    if spec.baseline_statistics_s3_uri:
        baselines = DriftCheckBaselines(
            model_data_statistics=MetricsSource(content_type="application/json",
                                                s3_uri=spec.baseline_statistics_s3_uri),
            model_data_constraints=MetricsSource(content_type="application/json",
                                                 s3_uri=spec.baseline_constraints_s3_uri))
    builder = ModelBuilder(image_uri=spec.training_image_uri, s3_model_data_url=model_uri, role_arn=spec.role_arn,
                           sagemaker_session=session)
    register = ModelStep(name=REGISTER_STEP, step_args=builder.register(
        model_package_group_name=spec.package_group_name, approval_status="PendingManualApproval",
        content_types=list(spec.content_types), response_types=list(spec.content_types),
        inference_instances=list(spec.inference_instance_types),
        transform_instances=list(spec.inference_instance_types), drift_check_baselines=baselines,
        customer_metadata_properties=lineage_metadata(spec)))
    metric = JsonGet(step_name=evaluate.name, property_file=report, json_path=f"metrics.{spec.metric_name}.value")
    condition = getattr(conditions, _CONDITIONS[spec.comparison])(left=metric, right=spec.metric_threshold)
    fail = FailStep(name=FAIL_STEP, error_message=(
        f"{spec.metric_name} did not reach {spec.comparison} {spec.metric_threshold}; no model package registered"))
    check = ConditionStep(name="CheckMetric", conditions=[condition], if_steps=[register], else_steps=[fail])
    return Pipeline(name=pipeline_name, steps=[prepare, train, evaluate, check], sagemaker_session=session).definition()
