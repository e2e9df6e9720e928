"""Batch transform rules: SageMaker pipelines whose definition runs transform jobs.

A transform job is no resource of its own: a pipeline's definition (the JSON document the SageMaker SDK writes)
holds each Transform step's `CreateTransformJob` request, which encrypts the job's results and volumes. The job's
network isolation and VPC are its model's (`CreateTransformJob` takes neither), so those rules judge the Model
the step names, found in the stack by its name; a model the stack does not create cannot be shown to comply.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pulumi_policy import PolicyResource

from emlops.catalog import resources_sagemaker as sagemaker
from emlops.catalog.aws import has_local_storage
from emlops.guardrails.helpers import (UNKNOWN, Finding, Settings, get, items, of_type, pipeline_steps,
                                       resource_rule, stack_rule, text)

PIPELINE = sagemaker.PIPELINE.token
MODEL = sagemaker.MODEL.token


@resource_rule("sagemaker-batch-transform-output-encrypted", types=[PIPELINE], severity="high",
               description="Batch transform jobs (a pipeline's Transform steps) encrypt their results, their "
                           "instances' volumes and what they capture with a KMS key.",
               remediation="BatchTransform encrypts them with the key of its context (the platform's data key); in a "
                           "definition of your own give the transformer output_kms_key and volume_kms_key (none for "
                           "instance types with local NVMe storage) and the capture config's kms_key_id.")
def batch_transform_output_encrypted(props: Any, settings: Settings) -> Iterator[str]:
    for step, arguments in pipeline_steps(props, "Transform"):
        if get(arguments, "TransformOutput", "KmsKeyId") in (None, ""):
            yield f"transform step {step!r} writes its results without a KMS key (TransformOutput.KmsKeyId)"
        instance_type = get(arguments, "TransformResources", "InstanceType")
        local = isinstance(text(instance_type), str) and has_local_storage(instance_type)
        if not local and get(arguments, "TransformResources", "VolumeKmsKeyId") in (None, ""):
            yield f"transform step {step!r} has volumes without a KMS key (TransformResources.VolumeKmsKeyId)"
        capture = get(arguments, "DataCaptureConfig")
        if capture not in (None, UNKNOWN) and get(capture, "KmsKeyId") in (None, ""):
            yield f"transform step {step!r} captures its data without a KMS key (DataCaptureConfig.KmsKeyId)"


def _transform_models(resources: list[PolicyResource]) -> Iterator[tuple[PolicyResource, str, str, Any]]:
    """(pipeline, step, model name, the model's props or None when the stack does not create it) of every Transform
    step whose model's name is known."""
    models = {text(get(m.props, "name")): m for m in of_type(resources, MODEL)}
    for pipeline in of_type(resources, PIPELINE):
        for step, arguments in pipeline_steps(pipeline.props, "Transform"):
            name = text(get(arguments, "ModelName"))
            if name is None:
                continue
            model = models.get(name)
            if model is None and None in models:
                continue  # a model whose name is not known yet may be this one
            yield pipeline, step, name, model.props if model is not None else None


@stack_rule("sagemaker-batch-transform-network-isolation", severity="high",
            description="Batch transform jobs run their model with network isolation (the Model a pipeline's "
                        "Transform step names has enable_network_isolation).",
            remediation="BatchTransform creates its model with network isolation; transform with a model of this "
                        "stack that sets enable_network_isolation.")
def batch_transform_network_isolation(resources: list[PolicyResource], settings: Settings) -> Iterator[Finding]:
    for pipeline, step, name, model in _transform_models(resources):
        if model is None:
            yield (f"pipeline {pipeline.name!r} step {step!r} transforms with model {name!r}, which this stack does "
                   "not create: its network isolation cannot be checked", pipeline.urn)
        elif get(model, "enableNetworkIsolation", default=False) is False:
            yield (f"pipeline {pipeline.name!r} step {step!r} transforms with model {name!r}, which runs without "
                   "network isolation", pipeline.urn)


@stack_rule("sagemaker-batch-transform-vpc", severity="high",
            description="Batch transform jobs run in private subnets (the Model a pipeline's Transform step names has "
                        "a vpcConfig with subnets and security groups).",
            remediation="BatchTransform places its model in the platform's private subnets; transform with a model "
                        "of this stack that sets vpc_config.")
def batch_transform_vpc(resources: list[PolicyResource], settings: Settings) -> Iterator[Finding]:
    for pipeline, step, name, model in _transform_models(resources):
        if model is None:
            yield (f"pipeline {pipeline.name!r} step {step!r} transforms with model {name!r}, which this stack does "
                   "not create: its network cannot be checked", pipeline.urn)
            continue
        vpc = get(model, "vpcConfig")
        if vpc is UNKNOWN or UNKNOWN in (get(vpc, "subnets"), get(vpc, "securityGroupIds")):
            continue
        if vpc is None or not items(get(vpc, "subnets")) or not items(get(vpc, "securityGroupIds")):
            yield (f"pipeline {pipeline.name!r} step {step!r} transforms with model {name!r}, which does not run "
                   "in a VPC", pipeline.urn)


POLICIES = [batch_transform_output_encrypted, batch_transform_network_isolation, batch_transform_vpc]
