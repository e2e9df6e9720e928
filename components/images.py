"""Inference image URIs from the SageMaker SDK's catalogue (never a hard-coded registry account).

The SDK is imported only here and only when a model names a framework whose image no earlier preview kept
(components/built_cache.py): importing its image-URI module costs about a second, and a stack without
framework images, or a preview that kept the answer, must not pay for it.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import re
from pathlib import Path
from typing import Optional

import pulumi

from emlops.catalog.aws import partition_of

SOURCE = Path(__file__)
"""This module: how emlops asks the SDK for an image is part of each kept answer's key."""
ECR_IMAGE = re.compile(r"^(?P<account>[0-9]{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/"
                       r"(?P<repo>[a-z0-9._/-]+?)(?P<tag>:[\w.-]+|@sha256:[0-9a-f]{64})?$")


def repository_arn(image_uri: str, partition: str) -> str:
    """The ARN of the ECR repository an image URI points into."""
    match = ECR_IMAGE.match(image_uri)
    if not match:
        raise ValueError(f"image {image_uri!r} is not an ECR image URI")
    return f"arn:{partition}:ecr:{match['region']}:{match['account']}:repository/{match['repo']}"


def repository_arn_output(image_uri: pulumi.Input[str], partition: pulumi.Input[str]) -> pulumi.Output[str]:
    """`repository_arn` for values that may be Outputs."""
    return pulumi.Output.all(image_uri, partition).apply(lambda values: repository_arn(*values))

# Serverless endpoints run on CPU; the SDK picks CPU images from a CPU instance type.
SERVERLESS_CPU_INSTANCE = "ml.m5.large"


@functools.lru_cache(maxsize=256)
def framework_image_uri(framework: str, version: str, region: str, instance_type: Optional[str] = None,
                        py_version: Optional[str] = None, base_framework_version: Optional[str] = None) -> str:
    """The SageMaker inference image of `framework` `version` in `region`; ValueError in one line if unknown.

    The answer is kept like a pipeline definition (built_cache.py: by these arguments, the SDK's version and this
    module's source), so that a preview that kept it does not import `sagemaker.core` (~0.9 s) again."""
    from emlops.components import built_cache, sagemaker_sdk

    inputs = {"framework": framework, "version": version, "region": region, "instance_type": instance_type,
              "py_version": py_version, "base_framework_version": base_framework_version}
    return built_cache.cached_now("framework-image", inputs, packages=sagemaker_sdk.SDK_PACKAGES, source=SOURCE,
                                  build=lambda: _retrieve(framework, version, region, instance_type, py_version,
                                                          base_framework_version))


def _retrieve(framework: str, version: str, region: str, instance_type: Optional[str], py_version: Optional[str],
              base_framework_version: Optional[str]) -> str:
    logging.getLogger("sagemaker").setLevel(logging.ERROR)  # the SDK logs defaults it fills in at INFO/WARNING
    from sagemaker.core import image_uris

    try:
        return image_uris.retrieve(
            framework=framework, region=region, version=version, image_scope="inference",
            instance_type=instance_type or SERVERLESS_CPU_INSTANCE, py_version=py_version,
            base_framework_version=base_framework_version,
        )
    except (ValueError, KeyError) as exc:
        reason = " ".join(str(exc).split())
        reason = reason.replace(" You may need to upgrade your SDK version (pip install -U sagemaker) for newer "
                                f"{framework} versions.", "")
        raise ValueError(f"no SageMaker {framework} {version} inference image in {region}: {reason}") from None


@functools.lru_cache(maxsize=None)
def sdk_image_catalogue(name: str) -> dict:
    """The SageMaker SDK's own image catalogue file `image_uri_config/<name>.json`, read without importing the SDK:
    importing sagemaker.core's image_uris costs ~190 MB and seconds, which a stack with dozens of monitors must not
    pay. Tests check the images it gives are exactly what `image_uris.retrieve(<name>, region)` answers."""
    spec = importlib.util.find_spec("sagemaker")
    path = Path(spec.submodule_search_locations[0]) / "core" / "image_uri_config" / f"{name}.json"
    return json.loads(path.read_text())


def catalogue_image_uri(version: dict, region: str, label: str, tag: str = "") -> str:
    """The image of one `version` entry of an SDK catalogue (its registries and repository) in `region`; a region
    the catalogue lacks fails as the SDK does."""
    registries = version["registries"]
    if region not in registries:
        raise ValueError(f"no SageMaker {label} image in {region}: Unsupported region: {region}. "
                         f"Supported region(s): {', '.join(registries)}.")
    uri = f"{registries[region]}.dkr.ecr.{region}.{partition_of(region).dns_suffix}/{version['repository']}"
    return f"{uri}:{tag}" if tag else uri


def _monitor_catalogue() -> dict:
    return sdk_image_catalogue("model-monitor")["versions"][""]


def monitor_image_uri(region: str) -> str:
    """The Model Monitor analyzer image of `region`, from the SageMaker SDK's image catalogue."""
    return catalogue_image_uri(_monitor_catalogue(), region, "Model Monitor")
