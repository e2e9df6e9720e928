"""AWS's own limits on values the settings pass to an API, read from botocore's service models.

A setting that feeds an API member is checked against that member's shape, so the stack file hears what AWS
would answer, before anything exists: SageMaker instance types by the enum of the API they go to (a hosting
type is not always a training or processing type), MIME content types by their string shapes and list sizes.
Messages name the value and the limit, never the whole enum.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Sequence

from emlops.catalog.aws import api_enum, api_limits

# What each kind of SageMaker instance is for, and the enum shape of the API member it feeds.
INSTANCE_TYPE_SHAPES = {
    "hosting": "ProductionVariantInstanceType",  # CreateEndpointConfig ProductionVariants[].InstanceType
    "training": "TrainingInstanceType",  # CreateTrainingJob ResourceConfig.InstanceType
    "processing": "ProcessingInstanceType",  # CreateProcessingJob / monitoring ClusterConfig.InstanceType
    "batch transform": "TransformInstanceType",  # CreateModelPackage SupportedTransformInstanceTypes
}
# A MIME type (RFC 6838 type and subtype names), with optional `; name=value` parameters.
_MIME_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_MIME_TYPE = re.compile(rf"^{_MIME_NAME}/{_MIME_NAME}(\s*;\s*{_MIME_NAME}=(\"[^\"\\\r\n]*\"|{_MIME_NAME}))*$")


@functools.lru_cache(maxsize=None)
def instance_types(kind: str) -> tuple[str, ...]:
    """The SageMaker instance types of `kind` (a key of INSTANCE_TYPE_SHAPES), from botocore's enum."""
    return api_enum("sagemaker", INSTANCE_TYPE_SHAPES[kind])


def check_instance_type(value: str, kind: str) -> str:
    """`value` if SageMaker takes it as an instance type of `kind`; else ValueError with the closest type."""
    allowed = instance_types(kind)
    if value not in allowed:
        close = [f"ml.{value}"] if f"ml.{value}" in allowed else difflib.get_close_matches(value, allowed, n=1)
        hint = (f"; did you mean {close[0]!r}?" if close
                else f" (see {INSTANCE_TYPE_SHAPES[kind]} in the SageMaker API)")
        raise ValueError(f"{value!r} is not a SageMaker {kind} instance type{hint}")
    return value


def check_instance_types(values: Sequence[str], *kinds: str) -> list[str]:
    """Each of `values` an instance type of every one of `kinds` (it feeds all of their API members), once."""
    for value in values:
        for kind in kinds:
            check_instance_type(value, kind)
    if len(set(values)) != len(values):
        raise ValueError(f"instance types must be unique; got {', '.join(values)}")
    return list(values)


def check_content_type(value: str, shape: str, service: str = "sagemaker") -> str:
    """One MIME type, within what the API's string shape `shape` allows."""
    limits = api_limits(service, shape)
    if not _MIME_TYPE.match(value):
        raise ValueError(f"{value!r} is not a MIME type like 'text/csv' or 'application/json'")
    if limits.max is not None and len(value) > limits.max:
        raise ValueError(f"{value!r} is {len(value)} characters; {shape} allows {limits.max}")
    return value


def check_content_types(values: Sequence[str], *list_shapes: str, service: str = "sagemaker") -> list[str]:
    """MIME types, each once, within what every API list shape of `list_shapes` (and its member) allows."""
    for shape in list_shapes:
        limits = api_limits(service, shape)
        if limits.max is not None and len(values) > limits.max:
            raise ValueError(f"at most {limits.max} content types ({shape} in the SageMaker API), got {len(values)}")
        if limits.min is not None and len(values) < limits.min:
            raise ValueError(f"at least {limits.min} content type(s) ({shape} in the SageMaker API)")
        member = api_limits(service, limits.member) if limits.member else None
        for value in values:
            if not _MIME_TYPE.match(value):
                raise ValueError(f"{value!r} is not a MIME type like 'text/csv' or 'application/json'")
            if member is not None and member.max is not None and len(value) > member.max:
                raise ValueError(f"{value!r} is {len(value)} characters; {limits.member} allows {member.max}")
            if member is not None and member.pattern and not re.fullmatch(member.pattern, value):
                raise ValueError(f"{value!r} is not a content type SageMaker takes here ({limits.member}: "
                                 f"{member.pattern})")
    if len(set(values)) != len(values):
        raise ValueError(f"content types must be unique; got {', '.join(values)}")
    return list(values)
