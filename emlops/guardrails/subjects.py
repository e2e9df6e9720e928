"""What each rule judges: the resources an evidence report lists as passing when a rule finds nothing wrong.

A resource rule judges the resources of its `types` (`resource_rule` records them on the policy); a rule
on every resource says which ones it means (required-tags: taggable ones). A stack rule reads the whole
stack and reports the resources it finds at fault, so the types it passes judgement on are named here; a
stack rule not named here is reported by its violations only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

from emlops.catalog import resources_iam as iam
from emlops.catalog import resources_network as network
from emlops.catalog import resources_sagemaker as sagemaker
from emlops.catalog import resources_storage as storage
from emlops.guardrails.governance import is_taggable
from emlops.guardrails.helpers import pipeline_steps

_BUCKETS = (storage.BUCKET.token, storage.BUCKET_V2.token)

STACK_RULE_SUBJECTS: dict[str, tuple[str, ...]] = {
    "s3-bucket-sse-kms": _BUCKETS,
    "s3-bucket-versioning": _BUCKETS,
    "s3-bucket-public-access-blocked": _BUCKETS,
    "s3-bucket-tls-only": _BUCKETS,
    "sagemaker-model-network-isolation": (sagemaker.MODEL.token,),
    "sagemaker-model-vpc": (sagemaker.MODEL.token,),
    "sagemaker-pipeline-role-not-shared": (sagemaker.PIPELINE.token,),
    "sagemaker-prod-endpoint-autoscaling": (sagemaker.ENDPOINT.token,),
    "sagemaker-prod-endpoint-monitoring": (sagemaker.ENDPOINT.token,),
    "sagemaker-batch-transform-network-isolation": (sagemaker.PIPELINE.token,),
    "sagemaker-batch-transform-vpc": (sagemaker.PIPELINE.token,),
    "iam-data-roles-off-the-admin-path": (iam.ROLE.token,),
    "sagemaker-approval-by-people-only": (iam.ROLE.token,),
    "sagemaker-people-jobs-isolated": (iam.ROLE.token,),
    "iam-passrole-no-widening": (iam.ROLE.token,),
    "ec2-egress-to-vpc-endpoints": (network.SECURITY_GROUP.token,),
    "sagemaker-prod-model-card": (sagemaker.ENDPOINT.token,),
}

# Resource rules that run on every resource and judge only some.
_ALL_TYPES_SUBJECTS: dict[str, Callable[[str], bool]] = {"required-tags": is_taggable}


def judged_by(policy) -> Optional[Callable[[str], bool]]:
    """Whether POLICY passes judgement on a resource of a type (None: not known, for an unnamed stack rule)."""
    types = getattr(policy, "resource_types", None)
    if types is None:
        types = STACK_RULE_SUBJECTS.get(policy.name)
        return None if types is None else frozenset(types).__contains__
    if not types:
        return _ALL_TYPES_SUBJECTS.get(policy.name, lambda resource_type: True)
    return frozenset(types).__contains__


# Rules on pipelines that judge the steps of one kind in their definitions (a transform job, a processing job, a data
# pipeline's gate): a pipeline without such a step is none of theirs, and passing it would say nothing.
PIPELINE_STEP_SUBJECTS: dict[str, str] = {
    "sagemaker-batch-transform-output-encrypted": "Transform",
    "sagemaker-batch-transform-network-isolation": "Transform",
    "sagemaker-batch-transform-vpc": "Transform",
    "sagemaker-processing-steps-encrypted": "Processing",
    "sagemaker-processing-steps-in-vpc": "Processing",
    "data-pipeline-quarantine": "Lambda",
}


def judges_resource(policy) -> Optional[Callable[[str, Any], bool]]:
    """Whether POLICY passes judgement on a resource of a type with its inputs (None: not known, for an unnamed
    stack rule): its types, and for the rules of PIPELINE_STEP_SUBJECTS a definition with a step of their kind."""
    by_type = judged_by(policy)
    if by_type is None:
        return None
    kind = PIPELINE_STEP_SUBJECTS.get(policy.name)
    if kind is None:
        return lambda resource_type, inputs: by_type(resource_type)
    return lambda resource_type, inputs: by_type(resource_type) and bool(pipeline_steps(inputs, kind))
