"""TrainingCluster: where models are trained, either SageMaker training jobs or an EKS GPU cluster.

kind `sagemaker` creates what a training job (or a SageMaker pipeline step) needs and nothing that
runs by itself: an image repository, input and output buckets, an execution role scoped to exactly
those, and a security group for the job's instances in private subnets. Jobs are started by
pipelines or people; their role ARN, image repository, S3 URIs and VPC config are the outputs.

kind `eks` creates a private EKS cluster with a GPU node group that scales from zero, a small
system node group, IRSA, and the Kubernetes baseline (namespaces, quotas, priority classes); its
children are built in `components.training_eks` (imported only for this kind, so a SageMaker-only
stack does not import pulumi_kubernetes).
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Optional

import pulumi
import pulumi_aws as aws

from emlops.catalog.aws import LOG_RETENTION_DAYS, api_enum
from emlops.components.aws_context import aws_context
from emlops.components.network_access import vpc_interface_statements
from emlops.components.settings import SUBNET_ID, VPC_ID
from emlops.components.iam import ServiceRole, ServiceRoleArgs, Statement, ecr_pull_statements, name_token
from emlops.components.kms import KmsKey, KmsKeyArgs
from emlops.components.options import child, merge_tags, type_token
from emlops.components.storage import SecureBucket, SecureBucketArgs

if TYPE_CHECKING:
    from emlops.components.kubernetes_baseline import TeamQuota

__all__ = ["TrainingCluster", "TrainingClusterArgs", "EKS_VERSIONS", "GPU_FAMILIES", "LOG_RETENTION_DAYS",
           "check_eks_version", "check_endpoint_cidr", "check_gpu_instance_type", "check_instance_type",
           "lifecycle_policy"]

# Kubernetes versions EKS offers in standard support (https://docs.aws.amazon.com/eks/latest/userguide/
# kubernetes-versions.html); older ones cost extended-support fees and are not offered. Update on each
# EKS release, together with kubernetes_validate (which must carry the version's schemas).
EKS_VERSIONS: tuple[str, ...] = ("1.31", "1.32", "1.33", "1.34")
# x86 NVIDIA GPU families the AL2023_x86_64_NVIDIA AMI supports (AMD g4ad and Graviton g5g need other AMIs).
GPU_FAMILIES: tuple[str, ...] = ("g4dn", "g5", "g6", "g6e", "p4d", "p4de", "p5", "p5e", "p5en", "p6-b200")
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
MAX_NAME = 32
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


def check_cluster_name(name: str) -> None:
    """Lowercase, so the same name works for ECR, S3, EKS and Kubernetes labels; short, for IAM names."""
    if not _NAME.match(name) or len(name) > MAX_NAME:
        raise ValueError(f"training cluster name {name!r} must be at most {MAX_NAME} lowercase letters, digits "
                         "and '-', starting and ending with a letter or digit")


@dataclass
class TrainingClusterArgs:
    """Arguments of a `TrainingCluster`. Fields marked (sagemaker) or (eks) are read by that kind only."""

    kind: Literal["sagemaker", "eks"]
    """`sagemaker`: ECR, buckets, role and security group for SageMaker training jobs; `eks`: an EKS GPU cluster."""
    vpc_id: Optional[pulumi.Input[str]] = None
    """VPC of `subnet_ids`; the security groups are created in it. Required (MlPlatform fills in its network's);
    TrainingCluster checks it is there before creating anything."""
    subnet_ids: Sequence[pulumi.Input[str]] = ()
    """Private subnets (at least two, in different AZs) for training instances or the cluster and its nodes."""
    kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key for the repository, buckets and volumes (sagemaker) or secrets and control-plane logs (eks; its
    policy must let `logs.<region>.amazonaws.com` use it). Default: a key is created for the cluster."""
    permissions_boundary_arn: Optional[str] = None
    """Permissions boundary of every role created. Default: none."""
    keep_images: int = 30
    """(sagemaker) Images the repository keeps; older ones expire (1-1000). Default: 30."""
    input_bucket: Optional[SecureBucket] = None
    """(sagemaker) Bucket training jobs read from. Default: a bucket `<name>-input` is created."""
    output_bucket: Optional[SecureBucket] = None
    """(sagemaker) Bucket training jobs write models and checkpoints to. Default: `<name>-output` is created."""
    kubernetes_version: str = "1.33"
    """(eks) Kubernetes version, one of `EKS_VERSIONS`. Default: 1.33."""
    region: Optional[str] = None
    """(eks) Region of the stack's AWS provider; the created key lets `logs.<region>.amazonaws.com` encrypt
    the control-plane logs (key policies take strings). Required for `eks` unless `kms_key_arn` is given."""
    admin_role_arns: Sequence[str] = ()
    """(eks) IAM roles given cluster-admin through EKS access entries. Required for `eks`: include the role
    Pulumi deploys with, since the Kubernetes baseline is applied through it."""
    endpoint_access_cidrs: Sequence[str] = ()
    """(eks) Private networks (VPN, CI runners) that may reach the private API endpoint on 443. Default: none
    (nodes reach it through the security group EKS manages)."""
    gpu_instance_types: Sequence[str] = ("g5.2xlarge",)
    """(eks) Instance types of the GPU node group (NVIDIA x86 families). Default: g5.2xlarge."""
    gpu_max_nodes: int = 4
    """(eks) Most GPU nodes (1-100); the group starts at 0 and scales from 0. Default: 4."""
    gpu_disk_size_gib: int = 200
    """(eks) Root volume of GPU nodes, room for CUDA images (20-16384). Default: 200."""
    system_instance_type: str = "m6i.large"
    """(eks) Instance type of the system node group (cluster add-ons, controllers). Default: m6i.large."""
    system_nodes: int = 2
    """(eks) System nodes (1-10); the group may grow by one. Default: 2."""
    teams: Sequence["TeamQuota"] = ()
    """(eks) Teams with a namespace and GPU/CPU/memory quota, passed to the Kubernetes baseline. Default: none."""
    log_retention_days: int = 365
    """(eks) Retention of the control-plane log group (a CloudWatch Logs value). Default: 365."""
    protect: bool = False
    """Protect stateful children (key, repository, buckets, cluster, log group) and retain them on delete."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of every taggable child. Default: none."""

    def __post_init__(self) -> None:
        if self.kind not in ("sagemaker", "eks"):
            raise ValueError(f"kind {self.kind!r} must be 'sagemaker' or 'eks'")
        if self.vpc_id is not None or self.subnet_ids:
            # neither given: a platform fills in its network later; TrainingCluster checks again
            self.check_network()
        if isinstance(self.kms_key_arn, str) and not _KEY_ARN.match(self.kms_key_arn):
            raise ValueError(f"kms_key_arn {self.kms_key_arn!r} must be a KMS key ARN "
                             "(arn:aws:kms:<region>:<account>:key/<id>)")
        if self.kind == "sagemaker":
            if not 1 <= self.keep_images <= 1000:
                raise ValueError(f"keep_images ({self.keep_images}) must be 1-1000")
        else:
            self._check_eks()

    def check_network(self) -> None:
        """A VPC and at least two distinct private subnets; ids given as strings must have AWS's shapes."""
        if self.vpc_id is None or (isinstance(self.vpc_id, str) and not VPC_ID.match(self.vpc_id)):
            raise ValueError(f"vpc_id {self.vpc_id!r} must be a VPC id like 'vpc-0123456789abcdef0'")
        if isinstance(self.subnet_ids, str) or len(self.subnet_ids) < 2:
            raise ValueError("subnet_ids needs at least two private subnets in different availability zones")
        known = [subnet for subnet in self.subnet_ids if isinstance(subnet, str)]
        for subnet in known:
            if not SUBNET_ID.match(subnet):
                raise ValueError(f"subnet id {subnet!r} must look like 'subnet-0123456789abcdef0'")
        if len(set(known)) != len(known):
            raise ValueError(f"subnet_ids must be unique; got {', '.join(known)}")

    def _check_eks(self) -> None:
        check_eks_version(self.kubernetes_version)
        if self.kms_key_arn is None and not self.region:
            raise ValueError("kind 'eks' needs region (the created key lets logs.<region>.amazonaws.com encrypt "
                             "the control-plane logs), or kms_key_arn")
        if self.region is not None and not re.match(r"^[a-z]{2}(-[a-z]+)+-[0-9]$", self.region):
            raise ValueError(f"region {self.region!r} must be an AWS region like 'eu-west-1'")
        if isinstance(self.admin_role_arns, str) or not self.admin_role_arns:
            raise ValueError("kind 'eks' needs admin_role_arns (include the role Pulumi deploys with: "
                             "the Kubernetes baseline is applied through it)")
        for arn in self.admin_role_arns:
            if not ROLE_ARN.match(arn):
                raise ValueError(f"admin role {arn!r} must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
        role_names = [name_token(arn.rsplit("/", 1)[-1]) for arn in self.admin_role_arns]
        if len(set(role_names)) != len(role_names):
            raise ValueError("admin_role_arns must name different roles (their access entries are named after them)")
        for cidr in self.endpoint_access_cidrs:
            check_endpoint_cidr(cidr)
        if isinstance(self.gpu_instance_types, str) or not self.gpu_instance_types:
            raise ValueError("gpu_instance_types needs at least one GPU instance type, e.g. ['g5.2xlarge']")
        for instance_type in self.gpu_instance_types:
            check_gpu_instance_type(instance_type)
        check_instance_type(self.system_instance_type)
        bounds = {"gpu_max_nodes": (1, 100), "gpu_disk_size_gib": (20, 16384), "system_nodes": (1, 10)}
        for label, (low, high) in bounds.items():
            if not low <= getattr(self, label) <= high:
                raise ValueError(f"{label} ({getattr(self, label)}) must be {low}-{high}")
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise ValueError(f"log_retention_days ({self.log_retention_days}) must be a CloudWatch Logs retention: "
                             f"{', '.join(map(str, LOG_RETENTION_DAYS))}")
        from emlops.components.training_eks import baseline_args

        baseline_args(self)  # the Kubernetes baseline's own checks (teams, quotas), before anything is created


class TrainingCluster(pulumi.ComponentResource):
    """SageMaker training infrastructure or an EKS GPU cluster (see the module docstring)."""

    kms_key_arn: pulumi.Output[str]
    subnet_ids: list[pulumi.Input[str]]
    # kind "sagemaker" (None for "eks")
    role_arn: Optional[pulumi.Output[str]] = None
    repository_url: Optional[pulumi.Output[str]] = None
    input_uri: Optional[pulumi.Output[str]] = None
    output_uri: Optional[pulumi.Output[str]] = None
    security_group_id: Optional[pulumi.Output[str]] = None
    # kind "eks" (None for "sagemaker")
    cluster_name: Optional[pulumi.Output[str]] = None
    cluster_arn: Optional[pulumi.Output[str]] = None
    cluster_endpoint: Optional[pulumi.Output[str]] = None
    oidc_provider_arn: Optional[pulumi.Output[str]] = None
    oidc_issuer_url: Optional[pulumi.Output[str]] = None
    kubernetes_provider: Optional[pulumi.ProviderResource] = None
    node_group_names: Optional[list[pulumi.Output[str]]] = None

    def __init__(self, name: str, args: TrainingClusterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        check_cluster_name(name)
        args.check_network()
        super().__init__(type_token("TrainingCluster"), name, None, opts)
        tags = merge_tags(args.tags, {"training-cluster": name})
        self.subnet_ids = list(args.subnet_ids)
        if args.kms_key_arn is None:
            services = [f"logs.{args.region}.amazonaws.com"] if args.kind == "eks" else []
            what = ("Kubernetes secrets and control-plane logs" if args.kind == "eks"
                    else "training images, data, models and volumes")
            self.kms_key_arn = KmsKey(f"{name}-key", KmsKeyArgs(
                description=f"Encrypts the {what} of the {name} training cluster",
                service_principals=services, protect=args.protect, tags=tags,
            ), opts=child(self)).arn
        else:
            self.kms_key_arn = pulumi.Output.from_input(args.kms_key_arn)

        if args.kind == "sagemaker":
            self._sagemaker(name, args, tags)
            outputs = {"roleArn": self.role_arn, "repositoryUrl": self.repository_url, "inputUri": self.input_uri,
                       "outputUri": self.output_uri, "securityGroupId": self.security_group_id}
        else:
            from emlops.components.training_eks import build_eks

            build_eks(self, name, args, tags)
            outputs = {"clusterName": self.cluster_name, "clusterArn": self.cluster_arn,
                       "clusterEndpoint": self.cluster_endpoint, "oidcProviderArn": self.oidc_provider_arn,
                       "oidcIssuerUrl": self.oidc_issuer_url, "nodeGroupNames": self.node_group_names}
        self.register_outputs({**outputs, "subnetIds": self.subnet_ids, "kmsKeyArn": self.kms_key_arn})

    # -- kind "sagemaker" ---------------------------------------------------------------------------

    def _sagemaker(self, name: str, args: TrainingClusterArgs, tags: dict) -> None:
        key_arn = self.kms_key_arn
        repository = aws.ecr.Repository(
            f"{name}-repository",
            image_scanning_configuration={"scan_on_push": True},
            image_tag_mutability="IMMUTABLE",
            encryption_configurations=[{"encryption_type": "KMS", "kms_key": key_arn}],
            force_delete=False,
            tags=tags,
            opts=child(self, protect=args.protect),
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-repository-lifecycle",
            repository=repository.name,
            policy=json.dumps(lifecycle_policy(args.keep_images)),
            opts=child(self),
        )
        buckets = {}
        for purpose, given in (("input", args.input_bucket), ("output", args.output_bucket)):
            buckets[purpose] = given or SecureBucket(f"{name}-{purpose}", SecureBucketArgs(
                kms_key_arn=key_arn, protect=args.protect, tags=tags), opts=child(self))
        security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description=f"SageMaker training jobs of {name}: only the job instances talk to each other",
            ingress=[{
                "description": "Distributed training between the instances of a job (NCCL, MPI, parameter servers)",
                "protocol": "-1", "from_port": 0, "to_port": 0, "self": True}],
            egress=[{
                "description": "HTTPS to the VPC endpoints and the S3 gateway (private subnets, no internet route)",
                "protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": ["0.0.0.0/0"]},
                    {"description": "Distributed training between the instances of a job",
                     "protocol": "-1", "from_port": 0, "to_port": 0, "self": True}],
            revoke_rules_on_delete=True,
            tags=tags,
            opts=child(self),
        )
        role = self._training_role(name, args, repository, buckets, tags)
        self.role_arn = role.arn
        self.repository_url = repository.repository_url
        self.input_uri = pulumi.Output.concat("s3://", buckets["input"].bucket_name, "/")
        self.output_uri = pulumi.Output.concat("s3://", buckets["output"].bucket_name, "/")
        self.security_group_id = security_group.id

    def _training_role(self, name: str, args: TrainingClusterArgs, repository: aws.ecr.Repository,
                       buckets: dict[str, SecureBucket], tags: dict) -> ServiceRole:
        context = aws_context(self)
        role = ServiceRole(f"{name}-training", ServiceRoleArgs(
            services=["sagemaker.amazonaws.com"],
            description=f"Runs the training jobs of {name}",
            permissions_boundary_arn=args.permissions_boundary_arn,
            tags=tags,
        ), opts=child(self))
        buckets["input"].grant_read(role)
        buckets["output"].grant_write(role)
        role.add_policy("pull-image", ecr_pull_statements([repository.arn]))
        log_group = context.arn("logs", "log-group:/aws/sagemaker/TrainingJobs")
        role.add_policy("logs", [
            Statement(actions=["logs:CreateLogGroup"], resources=[log_group]),
            Statement(actions=["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                      resources=[pulumi.Output.concat(log_group, ":log-stream:*")]),
            # PutMetricData has no resource; the namespace condition keeps the job to SageMaker's own.
            Statement(actions=["cloudwatch:PutMetricData"], resources=["*"],
                      conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}}),
        ])
        role.add_policy("volume-encryption", [
            # SageMaker encrypts the instances' volumes with the key through a grant it creates for them.
            Statement(actions=["kms:CreateGrant", "kms:DescribeKey"], resources=[self.kms_key_arn],
                      conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}),
        ])
        role.add_policy("vpc-access", vpc_interface_statements(context, args.vpc_id))
        return role


def lifecycle_policy(keep_images: int) -> dict:
    """ECR lifecycle policy: expire every image (tagged or not) beyond the newest `keep_images`."""
    return {"rules": [{
        "rulePriority": 1,
        "description": f"Keep the last {keep_images} images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep_images},
        "action": {"type": "expire"},
    }]}
