"""The retraining pipeline's definition, built by the SageMaker SDK v3 (`sagemaker-mlops`), offline.

Steps: Prepare (processing) -> Train (training) -> Evaluate (processing, writes `evaluation.json`)
-> CheckMetric (condition on `metrics.<metric>.value`) -> Register (a model package in the model's
group, `PendingManualApproval`, with the data-quality baseline as drift-check baselines), or
MetricBelowThreshold (a fail step, so a model that is not good enough shows as a failed execution).

The SDK is built for notebooks with credentials; four of its habits are switched off here so the
definition is built with no network call and no credentials:
- importing `sagemaker.mlops` creates a boto3 client at import time, which needs a region
  (`AWS_DEFAULT_REGION` is set to the stack's region while importing and building);
- botocore looks for credentials in the EC2 instance metadata service (`AWS_EC2_METADATA_DISABLED`);
- `ModelTrainer` checks the role with IAM's policy simulator (`SAGEMAKER_VALIDATE_ROLE=false`);
- `ModelBuilder.register` asks the session for a default bucket, which the SDK creates if it is
  missing (the session here answers with the artifacts bucket and never calls S3), and every call
  sends telemetry unless `TelemetryOptOut` is set in the SDK config.
Importing the SDK costs ~1.5 s and ~150 MB, so it happens only when a stack has a retraining pipeline whose
definition was not built before with the same inputs and SDK (`definition`, `components/built_cache.py`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from emlops.components.built_cache import cached

STEP_NAMES = ("Prepare", "Train", "Evaluate", "CheckMetric")
REGISTER_STEP, FAIL_STEP = "Register", "MetricBelowThreshold"
EVALUATION_FILE = "evaluation.json"
_SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}
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


@contextlib.contextmanager
def _offline_sdk(region: str) -> Iterator[None]:
    """Environment and logging the SDK needs to build a definition without credentials or network."""
    # The import-time client would look for credentials in the EC2 instance metadata service (IMDS).
    wanted = {"AWS_DEFAULT_REGION": region, "SAGEMAKER_VALIDATE_ROLE": "false", "AWS_EC2_METADATA_DISABLED": "true"}
    saved = {key: os.environ.get(key) for key in wanted}
    os.environ.update(wanted)
    # The SDK's loggers set their own levels; its notices ("Running within a PipelineSession", "Popping
    # out 'ProcessingJobName'", "Applied value from config key") would be printed into every preview.
    disabled = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), _schema_checked_once(), _one_botocore_loader():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", DeprecationWarning)  # the SDK's own modules moving within it
            yield
    finally:
        logging.disable(disabled)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_LOADERS: dict[Optional[str], object] = {}


@contextlib.contextmanager
def _one_botocore_loader() -> Iterator[None]:
    """Every botocore session the SDK makes shares one data loader, so each service model is decoded once.

    A build makes a PipelineSession and, for each processing step, a local-mode session of its own (the SDK
    instantiates `LocalSagemakerClient` only to read a method's name): every new botocore session would
    decode the same service-model JSON files again (~1.4 s per definition). The loader only reads files
    that ship with botocore, and caches what it decodes, so sharing it changes nothing but the time.
    """
    import botocore.session
    from botocore.loaders import create_loader

    def shared_loader(search_paths: Optional[str] = None):
        if search_paths not in _LOADERS:
            _LOADERS[search_paths] = create_loader(search_paths)
        return _LOADERS[search_paths]

    botocore.session.create_loader = shared_loader
    try:
        yield
    finally:
        botocore.session.create_loader = create_loader


@contextlib.contextmanager
def _schema_checked_once() -> Iterator[None]:
    """Validate the SDK config against its schema without re-checking the schema itself each time.

    The SDK calls `jsonschema.validate(config, schema)` on every config look-up (~90 per build) and when it
    makes a session, and each call first checks the 2020-12 schema itself (~0.45 s): 40 s per definition.
    One validator built once still validates every look-up.
    """
    import jsonschema
    from sagemaker.core.config.config_manager import SageMakerConfig
    from sagemaker.core.config.config_schema import SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA

    import sagemaker.core.config.config as config_module
    import sagemaker.core.helper.session_helper as session_module
    import sagemaker.core.local.local_session as local_module

    validator_class = jsonschema.validators.validator_for(SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA)
    validator = validator_class(SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA)

    def validate(config=None) -> None:
        validator.validate(config)

    # the method, and the function as the session modules imported it (by name)
    patched = [(SageMakerConfig, "validate_sagemaker_config", staticmethod(validate))]
    patched += [(module, "validate_sagemaker_config", validate)
                for module in (config_module, session_module, local_module)]
    originals = [(owner, name, owner.__dict__[name]) for owner, name, _ in patched]
    for owner, name, value in patched:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in originals:
            setattr(owner, name, value)


SDK_PACKAGES = ("sagemaker-core", "sagemaker-mlops", "sagemaker-train", "sagemaker-serve", "boto3", "botocore")
"""The distributions that build a definition: a new version of any of them is a new build."""


def definition(spec: DefinitionSpec, pipeline_name: str) -> str:
    """`build_definition`, built once per spec, SDK version and version of this module (`built_cache`)."""
    return cached("retraining-pipeline", {"spec": dataclasses.asdict(spec), "pipeline_name": pipeline_name},
                  packages=SDK_PACKAGES, source=Path(__file__), build=lambda: build_definition(spec, pipeline_name))


def build_definition(spec: DefinitionSpec, pipeline_name: str) -> str:
    """The pipeline definition JSON the SDK writes (same spec, byte-identical string)."""
    with _offline_sdk(spec.region):
        return _build(spec, pipeline_name)


def _build(spec: DefinitionSpec, pipeline_name: str) -> str:
    import boto3
    from sagemaker.core.drift_check_baselines import DriftCheckBaselines
    from sagemaker.core.model_metrics import MetricsSource
    from sagemaker.core.network import NetworkConfig
    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import ProcessingInput, ProcessingOutput, ProcessingS3Input, ProcessingS3Output
    from sagemaker.core.workflow import conditions
    from sagemaker.core.workflow.functions import JsonGet
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow import ConditionStep, FailStep, ModelStep, Pipeline, ProcessingStep, TrainingStep
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.core.training.configs import Compute, InputData, Networking, OutputDataConfig, StoppingCondition
    from sagemaker.train.model_trainer import ModelTrainer

    artifacts_bucket = spec.output_s3_uri[len("s3://"):].split("/", 1)[0]

    class OfflineSession(PipelineSession):
        def default_bucket(self) -> str:  # the SDK would create `sagemaker-<region>-<account>` if missing
            return artifacts_bucket

    # Static dummy keys: botocore signs nothing here, and no client makes a call.
    boto = boto3.Session(region_name=spec.region, aws_access_key_id="offline", aws_secret_access_key="offline")
    session = OfflineSession(boto_session=boto, default_bucket=artifacts_bucket, sagemaker_config=_SDK_CONFIG)
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

    prepare = ProcessingStep(name="Prepare", step_args=processor(spec.prepare_command).run(
        inputs=[s3_input("input", spec.input_s3_uri, "/opt/ml/processing/input")],
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
        transform_instances=list(spec.inference_instance_types), drift_check_baselines=baselines))
    metric = JsonGet(step_name=evaluate.name, property_file=report, json_path=f"metrics.{spec.metric_name}.value")
    condition = getattr(conditions, _CONDITIONS[spec.comparison])(left=metric, right=spec.metric_threshold)
    fail = FailStep(name=FAIL_STEP, error_message=(
        f"{spec.metric_name} did not reach {spec.comparison} {spec.metric_threshold}; no model package registered"))
    check = ConditionStep(name="CheckMetric", conditions=[condition], if_steps=[register], else_steps=[fail])
    return Pipeline(name=pipeline_name, steps=[prepare, train, evaluate, check], sagemaker_session=session).definition()
