"""Stack config section `training`: SageMaker training infrastructure or an EKS GPU cluster.

Integration (for `infra/config.py` and `infra/program.py`):

    # PlatformConfig
    training: Optional[TrainingConfig] = Field(None, description="Training infrastructure. Default: none.")
    # (kind `eks` and kind `sagemaker` both need `network`: check `network is not None` when `training` is set)

    # program
    TrainingCluster(f"{config.environment}-training", training_cluster_args(
        config.training, vpc_id=config.network.vpc_id, subnet_ids=config.network.private_subnet_ids,
        region=config.region, permissions_boundary_arn=config.permission_boundary_arn,
        protect=config.production, tags=tags), opts=...)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Optional

from pydantic import Field, field_validator, model_validator

from emlops.components.settings import Settings, check_log_retention

from emlops.components.training import (
    ROLE_ARN,
    TrainingClusterArgs,
    check_eks_version,
    check_endpoint_cidr,
    check_gpu_instance_type,
    check_instance_type,
)

_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


class TeamConfig(Settings):
    """A team with its own namespace (`team-<name>`) and a quota on the GPU cluster."""

    name: str = Field(pattern=_DNS_LABEL, max_length=58, description="Team name; its namespace is `team-<name>` "
                      "(a DNS-1123 label of at most 63 characters).",
                      json_schema_extra={"errorMessage": "must be at most 58 lowercase letters, digits and '-', "
                                         "starting and ending with a letter or digit"})
    gpus: int = Field(ge=0, le=1024, description="GPUs (`requests.nvidia.com/gpu`) the team may use at once.")
    cpu: str = Field(description="CPU the team may request, a Kubernetes quantity, e.g. `64` or `500m`.")
    memory: str = Field(description="Memory the team may request, a Kubernetes quantity, e.g. `256Gi`.")
    pod_security: Literal["restricted", "baseline"] = Field(
        "restricted", description="Pod Security level enforced in the namespace (`baseline` for images that must "
        "run as root). Default: restricted.")

    @field_validator("cpu", "memory", mode="before")
    @classmethod
    def _quantity(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # `cpu: 64` in YAML is a number; as a quantity it is "64"
        if isinstance(value, str):
            from emlops.components.kubernetes_baseline import parse_quantity

            parsed = parse_quantity(value.strip())
            if parsed is None or parsed <= 0:
                raise ValueError(f"{value!r} is not a positive Kubernetes quantity like '64', '500m' or '256Gi'")
        return value


class SageMakerTrainingConfig(Settings):
    """Settings of kind `sagemaker`."""

    keep_images: int = Field(30, ge=1, le=1000, description="Training images the repository keeps; older ones "
                             "expire. Default: 30.")


class EksTrainingConfig(Settings):
    """Settings of kind `eks`."""

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
    teams: list[TeamConfig] = Field(default_factory=list, description="Teams with namespaces and quotas. "
                                    "Default: none.")

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

    @field_validator("teams")
    @classmethod
    def _unique_teams(cls, teams: list[TeamConfig]) -> list[TeamConfig]:
        names = [team.name for team in teams]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"team names must be unique; repeated: {', '.join(repeated)}")
        return teams

    @model_validator(mode="after")
    def _baseline_accepts_the_teams(self) -> "EksTrainingConfig":
        # the baseline's own cross-checks (e.g. a team's memory fits the default container limit), at config time
        if self.teams:
            from emlops.components.kubernetes_baseline import KubernetesBaselineArgs

            KubernetesBaselineArgs(kubernetes_version=self.kubernetes_version, teams=team_quotas(self.teams))
        return self


class TrainingConfig(Settings):
    """Where models are trained: SageMaker training jobs or an EKS GPU cluster."""

    kind: Literal["sagemaker", "eks"] = Field("sagemaker", description="`sagemaker` (ECR, buckets, role, security "
                                              "group for training jobs) or `eks` (a GPU cluster). Default: sagemaker.")
    sagemaker: SageMakerTrainingConfig = Field(default_factory=SageMakerTrainingConfig,
                                               description="Settings of kind sagemaker. Default: defaults.")
    eks: Optional[EksTrainingConfig] = Field(None, description="Settings of kind eks; required for it. Default: none.")

    @model_validator(mode="after")
    def _settings_match_kind(self) -> "TrainingConfig":
        if self.kind == "eks" and self.eks is None:
            raise ValueError("kind 'eks' needs an eks section (at least eks.admin_role_arns)")
        if self.kind == "sagemaker" and self.eks is not None:
            raise ValueError("an eks section is given but kind is 'sagemaker'; set kind: eks or drop eks")
        if self.kind == "eks" and "sagemaker" in self.model_fields_set:
            raise ValueError("a sagemaker section is given but kind is 'eks'; set kind: sagemaker or drop sagemaker")
        return self


def training_cluster_args(config: TrainingConfig, *, vpc_id: str, subnet_ids: Sequence[str], region: str,
                          permissions_boundary_arn: Optional[str] = None, protect: bool = False,
                          tags: Optional[Mapping[str, str]] = None) -> TrainingClusterArgs:
    """The `TrainingClusterArgs` of a validated `training` section and the stack's network and region."""
    common: dict[str, Any] = dict(kind=config.kind, vpc_id=vpc_id, subnet_ids=list(subnet_ids),
                                  permissions_boundary_arn=permissions_boundary_arn, protect=protect,
                                  tags=dict(tags or {}))
    if config.kind == "sagemaker":
        return TrainingClusterArgs(**common, keep_images=config.sagemaker.keep_images)
    eks = config.eks
    return TrainingClusterArgs(
        **common, region=region, kubernetes_version=eks.kubernetes_version, admin_role_arns=list(eks.admin_role_arns),
        endpoint_access_cidrs=list(eks.endpoint_access_cidrs), gpu_instance_types=list(eks.gpu_instance_types),
        gpu_max_nodes=eks.gpu_max_nodes, gpu_disk_size_gib=eks.gpu_disk_size_gib,
        system_instance_type=eks.system_instance_type, system_nodes=eks.system_nodes,
        log_retention_days=eks.log_retention_days,
        teams=team_quotas(eks.teams),
    )


def team_quotas(teams: Sequence[TeamConfig]) -> list:
    """The baseline's `TeamQuota`s of the configured teams."""
    from emlops.components.kubernetes_baseline import TeamQuota

    return [TeamQuota(t.name, t.gpus, t.cpu.strip(), t.memory.strip(), pod_security=t.pod_security) for t in teams]
