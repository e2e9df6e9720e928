"""What a `TrainingCluster` takes: its settings (a stack file's `training` section) and its context.

    training:
      kind: eks                 # or sagemaker (training images, buckets, role, security group)
      eks:
        kubernetes_version: "1.33"
        admin_role_arns: [arn:aws:iam::123456789012:role/emlops-deploy]
        gpu_instance_types: [g5.2xlarge]
        teams:
          - {name: fraud, gpus: 4, cpu: "64", memory: 256Gi}
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Optional  # noqa: F401

import pulumi
from pydantic import Field, field_validator, model_validator

from emlops.catalog.aws import api_enum
from emlops.components.iam import name_token
from emlops.components.kubernetes_args import BaselineSettings
from emlops.components.settings import SUBNET_ID, Governance, Placement, Settings, check_log_retention

if TYPE_CHECKING:
    from emlops.components.network_access import EndpointEgress
    from emlops.components.storage import SecureBucket

# Kubernetes versions EKS offers in standard support (https://docs.aws.amazon.com/eks/latest/userguide/
# kubernetes-versions.html); older ones cost extended-support fees and are not offered. Update on each
# EKS release, together with kubernetes_validate (which must carry the version's schemas).
EKS_VERSIONS: tuple[str, ...] = ("1.31", "1.32", "1.33", "1.34")
# x86 NVIDIA GPU families the AL2023_x86_64_NVIDIA AMI supports (AMD g4ad and Graviton g5g need other AMIs).
GPU_FAMILIES: tuple[str, ...] = ("g4dn", "g5", "g6", "g6e", "p4d", "p4de", "p5", "p5e", "p5en", "p6-b200")
ROLE_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role/[\w+=,.@/-]+$")
_KEY_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]{36}$")


@functools.lru_cache(maxsize=1)
def _ec2_instance_types() -> tuple[str, ...]:
    """EC2's own list of instance types (botocore's `InstanceType` enum)."""
    return api_enum("ec2", "InstanceType")


def _schema_versions() -> tuple[str, ...]:
    """`major.minor` versions kubernetes_validate has schemas for (the baseline's manifests are checked with it)."""
    from emlops.catalog.kubernetes import supported_kubernetes_versions

    return supported_kubernetes_versions()


def check_eks_version(version: str) -> None:
    if version not in EKS_VERSIONS:
        raise ValueError(f"EKS version {version!r} is not supported; supported: {', '.join(EKS_VERSIONS)}")
    if version not in _schema_versions():
        from importlib.metadata import version as installed

        raise ValueError(f"EKS version {version!r} has no schemas in kubernetes-validate "
                         f"{installed('kubernetes-validate')}; upgrade kubernetes-validate")


def check_instance_type(instance_type: str) -> None:
    allowed = _ec2_instance_types()
    if instance_type not in allowed:
        close = difflib.get_close_matches(instance_type, allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{instance_type!r} is not an EC2 instance type{hint}")


def check_gpu_instance_type(instance_type: str) -> None:
    check_instance_type(instance_type)
    if instance_type.split(".")[0] not in GPU_FAMILIES:
        raise ValueError(f"{instance_type!r} is not an NVIDIA GPU instance type; families: {', '.join(GPU_FAMILIES)}")


def check_endpoint_cidr(cidr: str) -> None:
    try:
        network = ipaddress.ip_network(cidr)
    except ValueError:
        raise ValueError(f"{cidr!r} is not a CIDR block like '10.0.0.0/16'") from None
    if network.prefixlen == 0:
        raise ValueError(f"{cidr!r} opens the Kubernetes API to every address; name your private networks")


class SageMakerTrainingSettings(Settings):
    """Settings of kind `sagemaker`."""

    keep_images: int = Field(30, ge=1, le=1000, description="Training images the repository keeps; older ones "
                             "expire. Default: 30.")


class EksClusterSettings(Settings):
    """The EKS cluster of kind `eks` (its tenancy is `BaselineSettings`)."""

    kubernetes_version: str = Field("1.33", description="Kubernetes version, quoted (e.g. `'1.33'`). Default: 1.33.")
    admin_role_arns: list[str] = Field(min_length=1, description="IAM roles with cluster-admin (EKS access "
                                       "entries); include the role Pulumi deploys with.")
    endpoint_access_cidrs: list[str] = Field(default_factory=list, description="Private networks (VPN, CI runners) "
                                             "that may reach the private API endpoint. Default: none.")
    gpu_instance_types: list[str] = Field(default_factory=lambda: ["g5.2xlarge"], min_length=1,
                                          description="GPU node instance types (NVIDIA). Default: [g5.2xlarge].")
    gpu_max_nodes: int = Field(4, ge=1, le=100, description="Most GPU nodes; the group scales from 0. Default: 4.")
    gpu_disk_size_gib: int = Field(200, ge=20, le=16384, description="Root volume of GPU nodes. Default: 200.")
    system_instance_type: str = Field("m6i.large", description="System node instance type. Default: m6i.large.")
    system_nodes: int = Field(2, ge=1, le=10, description="System nodes. Default: 2.")
    log_retention_days: int = Field(365, description="Control-plane log retention (a CloudWatch Logs value). "
                                    "Default: 365.")

    @field_validator("kubernetes_version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise ValueError(f"must be a quoted string (YAML reads {value!r} unquoted as a number; write '{value}')")
        check_eks_version(value)
        return value

    @field_validator("admin_role_arns")
    @classmethod
    def _roles(cls, values: list[str]) -> list[str]:
        for value in values:
            if not ROLE_ARN.match(value):
                raise ValueError(f"{value!r} must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
        return values

    @field_validator("endpoint_access_cidrs")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        for value in values:
            check_endpoint_cidr(value)
        return values

    @field_validator("gpu_instance_types")
    @classmethod
    def _gpu_types(cls, values: list[str]) -> list[str]:
        for value in values:
            check_gpu_instance_type(value)
        return values

    @field_validator("system_instance_type")
    @classmethod
    def _system_type(cls, value: str) -> str:
        check_instance_type(value)
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return check_log_retention(value)

    @field_validator("admin_role_arns")
    @classmethod
    def _distinct_roles(cls, values: list[str]) -> list[str]:
        names = [name_token(arn.rsplit("/", 1)[-1]) for arn in values]
        if len(set(names)) != len(names):
            raise ValueError("must name different roles (their access entries are named after them)")
        return values


# BaselineSettings first in the bases puts the cluster's keys first in the schema and in error messages.
class EksSettings(BaselineSettings, EksClusterSettings):
    """Settings of kind `eks`: the cluster, and the tenancy the Kubernetes baseline applies to it."""


class TrainingSettings(Settings):
    """Where models are trained: SageMaker training jobs or an EKS GPU cluster."""

    kind: Literal["sagemaker", "eks"] = Field("sagemaker", description="`sagemaker` (ECR, buckets, role, security "
                                              "group for training jobs) or `eks` (a GPU cluster). Default: sagemaker.")
    sagemaker: SageMakerTrainingSettings = Field(default_factory=SageMakerTrainingSettings,
                                               description="Settings of kind sagemaker. Default: defaults.")
    eks: Optional[EksSettings] = Field(None, description="Settings of kind eks; required for it. Default: none.")

    @model_validator(mode="after")
    def _settings_match_kind(self) -> "TrainingSettings":
        if self.kind == "eks" and self.eks is None:
            raise ValueError("kind 'eks' needs an eks section (at least eks.admin_role_arns)")
        if self.kind == "sagemaker" and self.eks is not None:
            raise ValueError("an eks section is given but kind is 'sagemaker'; set kind: eks or drop eks")
        if self.kind == "eks" and "sagemaker" in self.model_fields_set:
            raise ValueError("a sagemaker section is given but kind is 'eks'; set kind: sagemaker or drop sagemaker")
        return self


@dataclass(frozen=True)
class TrainingContext:
    """What the platform supplies to a `TrainingCluster`."""

    placement: Placement
    """Private subnets (at least two, in different zones) for training instances or the cluster and its nodes;
    the security groups are created in its VPC."""
    kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key for the repository, buckets and volumes (sagemaker) or secrets and control-plane logs (eks; its policy
    must let `logs.<region>.amazonaws.com` use it). Default: a key is created for the cluster."""
    input_bucket: Optional["SecureBucket"] = None
    """(sagemaker) Bucket training jobs read from. Default: a bucket `<name>-input` is created."""
    output_bucket: Optional["SecureBucket"] = None
    """(sagemaker) Bucket training jobs write models and checkpoints to. Default: `<name>-output` is created."""
    input_prefix: str = ""
    """(sagemaker) The only prefix of the input bucket the training role reads (people pass the role to their jobs:
    it reads no more than they may). Default: the whole bucket."""
    endpoint_egress: Optional["EndpointEgress"] = None
    """(sagemaker) Where the jobs' HTTPS goes: the VPC endpoints' group and the S3 prefix list. Default: any address
    on 443 (a VPC you bring decides the route)."""
    output_prefix: str = ""
    """(sagemaker) The only prefix of the output bucket the training role writes (never the registry's `models/`
    when the bucket holds registered versions). Default: the whole bucket."""
    region: Optional[str] = None
    """(eks) Region of the stack's provider; the created key lets `logs.<region>.amazonaws.com` encrypt the
    control-plane logs (key policies take strings). Required for `eks` unless `kms_key_arn` is given."""
    governance: Governance = field(default_factory=Governance)
    """Tags, the roles' permissions boundary, and protection of the key, repository, buckets, cluster and logs."""

    def check(self, settings: "TrainingSettings") -> None:
        """ValueError in one line when the context cannot work with the settings (before anything exists)."""
        subnets = self.placement.subnet_ids
        if len(subnets) < 2:
            raise ValueError("training needs at least two private subnets in different availability zones")
        known = [subnet for subnet in subnets if isinstance(subnet, str)]
        for subnet in known:
            if not SUBNET_ID.match(subnet):
                raise ValueError(f"subnet id {subnet!r} must look like 'subnet-0123456789abcdef0'")
        if len(set(known)) != len(known):
            raise ValueError(f"subnet ids must be unique; got {', '.join(known)}")
        if isinstance(self.kms_key_arn, str) and not _KEY_ARN.match(self.kms_key_arn):
            raise ValueError(f"kms_key_arn {self.kms_key_arn!r} must be a KMS key ARN "
                             "(arn:aws:kms:<region>:<account>:key/<id>)")
        if self.placement.security_group_ids:
            raise ValueError("training creates its own security group (its instances talk to each other); give a "
                             "placement without security_group_ids")
        if self.region is not None and not re.match(r"^[a-z]{2}(-[a-z]+)+-[0-9]$", self.region):
            raise ValueError(f"region {self.region!r} must be an AWS region like 'eu-west-1'")
        if settings.kind == "eks" and self.kms_key_arn is None and not self.region:
            raise ValueError("kind 'eks' needs region (the created key lets logs.<region>.amazonaws.com encrypt "
                             "the control-plane logs), or kms_key_arn")
