"""MlPlatform: composes one environment's platform from the reusable components.

The secure base every later part relies on (a data KMS key, the access-log, dataset and artifact
buckets, the role SageMaker jobs use to turn datasets into model artifacts), then one
ModelEndpoint per model, capturing into a shared capture bucket.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi

from components.aws_context import aws_context
from components.endpoint import ModelEndpoint, ModelEndpointArgs
from components.iam import ServiceRole, ServiceRoleArgs, Statement
from components.kms import KmsKey, KmsKeyArgs
from components.options import child, merge_tags, type_token
from components.storage import LifecycleRule, SecureBucket, SecureBucketArgs


@dataclass(frozen=True)
class PlatformModel:
    """A model the platform serves: its endpoint's arguments, and whether it captures data.

    The platform fills in what it owns (keys, capture bucket, tags, permissions boundary).
    """

    name: str
    """Model name; the endpoint is `<environment>-<name>`."""
    endpoint: ModelEndpointArgs
    """Everything else about the endpoint."""
    capture_data: bool = False
    """Capture requests and responses into the platform's capture bucket. Default: false."""

    def __post_init__(self) -> None:
        if not re.match(r"^[a-z0-9](-?[a-z0-9])*$", self.name):
            raise ValueError(f"model name {self.name!r} must be lowercase letters and digits, single '-' between")
        if self.capture_data and self.endpoint.serverless:
            raise ValueError(f"model {self.name!r}: serverless endpoints cannot capture data")


@dataclass
class MlPlatformArgs:
    """Arguments of an `MlPlatform`."""

    environment: str
    """Environment name (`dev`, `prod`, ...), used in names and tags."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags every resource carries (the stack's required tags). Default: none."""
    production: bool = False
    """Production: every stateful resource is protected and retained on delete. Default: false."""
    permissions_boundary_arn: Optional[str] = None
    """Permissions boundary of every role the platform creates. Default: none."""
    kms_deletion_window_days: int = 30
    """Deletion window of the platform's KMS keys (7-30). Default: 30."""
    noncurrent_version_retention_days: int = 90
    """Days overwritten object versions are kept in the data buckets. Default: 90."""
    access_log_retention_days: int = 365
    """Days S3 server access logs are kept. Default: 365."""
    models: Sequence[PlatformModel] = ()
    """Models to serve, each on its own endpoint. Default: none."""

    def __post_init__(self) -> None:
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be unique; got {', '.join(names)}")
        if not re.match(r"^[a-z][a-z0-9-]{0,14}[a-z0-9]$", self.environment):
            raise ValueError(f"environment {self.environment!r} must be 2-16 lowercase letters, digits or '-'")
        if not 7 <= self.kms_deletion_window_days <= 30:
            raise ValueError(f"kms_deletion_window_days ({self.kms_deletion_window_days}) must be 7-30")
        for label in ("noncurrent_version_retention_days", "access_log_retention_days"):
            if getattr(self, label) < 1:
                raise ValueError(f"{label} ({getattr(self, label)}) must be at least 1")


class MlPlatform(pulumi.ComponentResource):
    """One environment's MLOps platform."""

    data_key: KmsKey
    access_logs: SecureBucket
    datasets: SecureBucket
    artifacts: SecureBucket
    model_builder_role: ServiceRole

    def __init__(self, name: str, args: MlPlatformArgs, opts: Optional[pulumi.ResourceOptions] = None):
        tags = merge_tags(args.tags, {"environment": args.environment, "managed-by": "emlops"})
        protect = args.production
        keep_versions = LifecycleRule(
            id="expire-old-versions",
            noncurrent_version_expiration_days=args.noncurrent_version_retention_days,
        )
        # Every child's arguments are built (and so validated) before the first resource exists.
        key_args = KmsKeyArgs(
            description=f"Encrypts the datasets and model artifacts of the {args.environment} ML platform",
            deletion_window_days=args.kms_deletion_window_days,
            protect=protect,
            tags=tags,
        )
        logs_args = SecureBucketArgs(
            sse_algorithm="AES256",
            receives_access_logs=True,
            lifecycle_rules=[LifecycleRule(
                id="expire-access-logs",
                expiration_days=args.access_log_retention_days,
                noncurrent_version_expiration_days=1,
            )],
            protect=protect,
            tags=tags,
        )
        role_args = ServiceRoleArgs(
            services=["sagemaker.amazonaws.com"],
            description=f"SageMaker processing and training jobs of {args.environment}: "
                        "read datasets, write model artifacts",
            permissions_boundary_arn=args.permissions_boundary_arn,
            tags=tags,
        )

        super().__init__(type_token("MlPlatform"), name, None, opts)

        self.data_key = KmsKey(f"{name}-data", key_args, opts=child(self))
        self.access_logs = SecureBucket(f"{name}-access-logs", logs_args, opts=child(self))

        def data_bucket(purpose: str) -> SecureBucket:
            return SecureBucket(f"{name}-{purpose}", SecureBucketArgs(
                kms_key_arn=self.data_key.arn,
                access_log_bucket=self.access_logs.bucket_name,
                lifecycle_rules=[keep_versions],
                protect=protect,
                tags=tags,
            ), opts=child(self))

        self.datasets = data_bucket("datasets")
        self.artifacts = data_bucket("artifacts")

        self.model_builder_role = ServiceRole(f"{name}-model-builder", role_args, opts=child(self))
        self.datasets.grant_read(self.model_builder_role)
        self.artifacts.grant_read_write(self.model_builder_role, prefix="models/")
        self.model_builder_role.add_policy("logs", _sagemaker_job_logs(self))

        self.capture = None
        if any(model.capture_data for model in args.models):
            self.capture = data_bucket("capture")
        self.endpoints: dict[str, ModelEndpoint] = {}
        for model in args.models:
            endpoint_args = dataclasses.replace(
                model.endpoint,
                kms_key_arn=self.data_key.arn,
                data_capture_bucket=self.capture if model.capture_data else None,
                permissions_boundary_arn=args.permissions_boundary_arn,
                tags=merge_tags(tags, model.endpoint.tags),
            )
            self.endpoints[model.name] = ModelEndpoint(f"{name}-{model.name}", endpoint_args, opts=child(self))

        self.register_outputs({
            "dataKeyArn": self.data_key.arn,
            "accessLogsBucket": self.access_logs.bucket_name,
            "datasetsBucket": self.datasets.bucket_name,
            "artifactsBucket": self.artifacts.bucket_name,
            "modelBuilderRoleArn": self.model_builder_role.arn,
            "endpointNames": [endpoint.endpoint_name for endpoint in self.endpoints.values()],
        })


def _sagemaker_job_logs(parent: pulumi.Resource) -> list[Statement]:
    """CloudWatch Logs for SageMaker jobs, limited to SageMaker's own log groups in this account."""
    groups = aws_context(parent).arn("logs", "log-group:/aws/sagemaker/*")
    return [
        Statement(actions=["logs:CreateLogGroup"], resources=[groups]),
        Statement(actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                  resources=[pulumi.Output.concat(groups, ":log-stream:*")]),
    ]
