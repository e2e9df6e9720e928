"""Data rules: the processing jobs of SageMaker pipelines, the Lambda functions beside them, quarantine, and the Athena
workgroups training sets are queried through.

A processing job is no resource of its own: a pipeline's definition holds each Processing step's
`CreateProcessingJob` request (a data pipeline's validation and transformation, retraining's prepare and evaluate),
which encrypts its volumes and outputs and places it in the VPC. A data pipeline's gate step (a Lambda step whose
action is `gate`) moves a batch that fails validation to quarantine when it is given a quarantine location.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from emlops.catalog import resources_operations as operations
from emlops.catalog import resources_sagemaker as sagemaker
from emlops.catalog import resources_storage as storage
from emlops.catalog.aws import has_local_storage
from emlops.guardrails.helpers import Settings, get, items, pipeline_steps, resource_rule, text

PIPELINE = sagemaker.PIPELINE.token
FUNCTION = operations.LAMBDA_FUNCTION.token
ATHENA_WORKGROUP = storage.ATHENA_WORKGROUP.token


@resource_rule("sagemaker-processing-steps-encrypted", types=[PIPELINE], severity="high",
               description="Processing jobs of SageMaker pipelines (validation, transformation, prepare, evaluate) "
                           "encrypt their instances' volumes and their outputs with a KMS key.",
               remediation="DataPipeline and RetrainingPipeline use the platform's data key; in a definition of your "
                           "own give the processor volume_kms_key (none for instance types with local NVMe storage) "
                           "and output_kms_key.")
def processing_steps_encrypted(props: Any, settings: Settings) -> Iterator[str]:
    for step, arguments in pipeline_steps(props, "Processing"):
        cluster = get(arguments, "ProcessingResources", "ClusterConfig")
        instance_type = text(get(cluster, "InstanceType"))
        local = isinstance(instance_type, str) and has_local_storage(instance_type)
        if not local and get(cluster, "VolumeKmsKeyId") in (None, ""):
            yield (f"processing step {step!r} has volumes without a KMS key "
                   "(ProcessingResources.ClusterConfig.VolumeKmsKeyId)")
        if get(arguments, "ProcessingOutputConfig") is not None and get(
                arguments, "ProcessingOutputConfig", "KmsKeyId") in (None, ""):
            yield f"processing step {step!r} writes its outputs without a KMS key (ProcessingOutputConfig.KmsKeyId)"


@resource_rule("sagemaker-processing-steps-in-vpc", types=[PIPELINE], severity="high",
               description="Processing jobs of SageMaker pipelines run in the VPC's private subnets.",
               remediation="DataPipeline and RetrainingPipeline place their jobs in the platform's private subnets; in "
                           "a definition of your own give the processor a NetworkConfig with subnets and security "
                           "groups.")
def processing_steps_in_vpc(props: Any, settings: Settings) -> Iterator[str]:
    for step, arguments in pipeline_steps(props, "Processing"):
        if not items(get(arguments, "NetworkConfig", "VpcConfig", "Subnets")):
            yield f"processing step {step!r} runs outside the VPC (NetworkConfig.VpcConfig.Subnets)"


@resource_rule("lambda-in-vpc", types=[FUNCTION], severity="high",
               description="Lambda functions run in the VPC's private subnets (they reach AWS through its endpoints).",
               remediation="DataPipeline places its steps' function in the platform's private subnets; give a function "
                           "of your own vpc_config with subnet_ids and security_group_ids.")
def lambda_in_vpc(props: Any, settings: Settings) -> Iterator[str]:
    if not items(get(props, "vpcConfig", "subnetIds")):
        yield "the function runs outside the VPC (vpcConfig.subnetIds)"


@resource_rule("data-pipeline-quarantine", types=[PIPELINE], severity="high",
               description="In production, a data pipeline's gate moves a batch that fails validation to quarantine.",
               remediation="Keep quarantine: true on the stack file's data_pipelines entry.")
def data_pipeline_quarantine(props: Any, settings: Settings) -> Iterator[str]:
    if not settings.production:
        return
    for step, arguments in pipeline_steps(props, "Lambda"):
        if get(arguments, "action") == "gate" and get(arguments, "quarantine_uri") in (None, ""):
            yield f"gate step {step!r} leaves a batch that fails validation where it is (no quarantine_uri)"



@resource_rule("athena-workgroup-results-encrypted", types=[ATHENA_WORKGROUP], severity="high",
               description="Athena workgroups encrypt query results with a KMS key in their own results location, "
                           "and enforce it (queries cannot send results elsewhere, or unencrypted).",
               remediation="RetrainingPipeline's workgroup does (enforce_workgroup_configuration, SSE_KMS with the "
                           "platform's key); give a workgroup of your own the same configuration.")
def athena_workgroup_results_encrypted(props: Any, settings: Settings) -> Iterator[str]:
    configuration = get(props, "configuration")
    if get(configuration, "enforceWorkgroupConfiguration") is not True:
        yield "queries may override the workgroup's results location and encryption (enforceWorkgroupConfiguration)"
    results = get(configuration, "resultConfiguration")
    if get(results, "outputLocation") in (None, ""):
        yield "the workgroup has no results location of its own (resultConfiguration.outputLocation)"
    encryption = get(results, "encryptionConfiguration")
    if get(encryption, "encryptionOption") not in ("SSE_KMS", "CSE_KMS") or get(encryption, "kmsKeyArn") in (None, ""):
        yield "query results are not encrypted with a KMS key (resultConfiguration.encryptionConfiguration)"


POLICIES = [processing_steps_encrypted, processing_steps_in_vpc, lambda_in_vpc, data_pipeline_quarantine,
            athena_workgroup_results_encrypted]
