"""The primary container of a SageMaker Model, as endpoints and batch transforms create it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

import pulumi

from emlops.components.endpoint_args import ModelArtifact


def model_container(artifact: ModelArtifact, image_uri: Optional[pulumi.Input[str]],
                    environment: Mapping[str, pulumi.Input[str]], multi_model: bool = False) -> dict:
    """A SageMaker Model's primary container: the model package, or the image with the model data (and
    `environment`); with `multi_model`, every model archive under the artifact's prefix (callers name one with
    TargetModel)."""
    if artifact.package_arn is not None:
        return {"model_package_name": artifact.package_arn}
    container: dict = {"image": image_uri, "mode": "MultiModel" if multi_model else "SingleModel"}
    if environment:
        container["environment"] = dict(environment)
    if multi_model or artifact.compressed:
        container["model_data_url"] = artifact.uri
    else:
        # MLflow models are directories: SageMaker loads them uncompressed from the prefix.
        # (the provider models the API's single S3DataSource as a one-element list)
        container["model_data_source"] = {"s3_data_sources": [{
            "s3_uri": artifact.uri, "s3_data_type": "S3Prefix", "compression_type": "None",
        }]}
    return container
