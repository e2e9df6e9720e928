"""The provider SDK module and class of a resource type token: `aws:s3/bucket:Bucket` is `pulumi_aws.s3.Bucket`,
`aws-native:sagemaker:ModelCard` is `pulumi_aws_native.sagemaker.ModelCard`, `kubernetes:core/v1:Namespace` is
`pulumi_kubernetes.core.v1.Namespace`; a module named like a Python keyword ends in "_" (`pulumi_aws.lambda_`).
Read by the mocks (which outputs a type has), the tagging rule (which types take tags) and the benchmark."""

from __future__ import annotations

import functools
import importlib
from types import ModuleType
from typing import Optional

PACKAGES = {"aws": "pulumi_aws", "aws-native": "pulumi_aws_native", "kubernetes": "pulumi_kubernetes"}


@functools.lru_cache(maxsize=None)
def sdk_module(token: str) -> Optional[ModuleType]:
    """The SDK module of a type token, or None (not a provider SDK's type, or no such module)."""
    parts = token.split(":")
    if len(parts) != 3 or parts[0] not in PACKAGES:
        return None
    path = parts[1].split("/") if parts[0] == "kubernetes" else parts[1].split("/")[:1]
    path = [part for part in path if part != "index"]
    for last in ([path[-1]], [f"{path[-1]}_"]) if path else ([],):
        try:
            return importlib.import_module(".".join([PACKAGES[parts[0]], *path[:-1], *last]))
        except ImportError:
            continue
    return None


def sdk_class(token: str, suffix: str = "") -> Optional[type]:
    """The SDK class of a type token (`suffix="Args"`: its arguments class), or None."""
    module = sdk_module(token)
    return getattr(module, token.split(":")[2] + suffix, None) if module is not None else None
