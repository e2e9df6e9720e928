"""TrainingCluster: where models are trained, either SageMaker training jobs or an EKS GPU cluster.

kind `sagemaker` creates what a training job (or a SageMaker pipeline step) needs and nothing that
runs by itself: an image repository, input and output buckets, an execution role scoped to exactly
those, and a security group for the job's instances in private subnets. Jobs are started by
pipelines or people; their role ARN, image repository, S3 URIs and VPC config are the outputs.

kind `eks` creates a private EKS cluster with a GPU node group that scales from zero, a small
system node group, IRSA, and the Kubernetes baseline (namespaces, quotas, priority classes); its
children are built in `components.training_eks` (imported only for this kind, so a SageMaker-only
stack does not import pulumi_kubernetes). Its settings and context are in training_args.py.
"""

from __future__ import annotations

import json
import re
from typing import Optional

import pulumi
import pulumi_aws as aws

from emlops.components.aws_context import aws_context
from emlops.components.iam import ServiceRole, ServiceRoleArgs, Statement, ecr_pull_statements
from emlops.components.kms import KmsKey, KmsKeyArgs
from emlops.components.network_access import https_egress, vpc_interface_statements
from emlops.components.options import child, type_token
from emlops.components.outputs import concat
from emlops.components.storage import SecureBucket, SecureBucketArgs
from emlops.components.training_args import TrainingContext, TrainingSettings

__all__ = ["TrainingCluster", "TrainingContext", "TrainingSettings", "lifecycle_policy"]

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
MAX_NAME = 32


def check_cluster_name(name: str) -> None:
    """Lowercase, so the same name works for ECR, S3, EKS and Kubernetes labels; short, for IAM names."""
    if not _NAME.match(name) or len(name) > MAX_NAME:
        raise ValueError(f"training cluster name {name!r} must be at most {MAX_NAME} lowercase letters, digits "
                         "and '-', starting and ending with a letter or digit")


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

    def __init__(self, name: str, settings: TrainingSettings, context: TrainingContext,
                 opts: Optional[pulumi.ResourceOptions] = None):
        check_cluster_name(name)
        context.check(settings)
        super().__init__(type_token("TrainingCluster"), name, None, opts)
        governance = context.governance.with_tags({"training-cluster": name})
        tags = dict(governance.tags)
        self.subnet_ids = list(context.placement.subnet_ids)
        eks = settings.kind == "eks"
        if context.kms_key_arn is None:
            services = [f"logs.{context.region}.amazonaws.com"] if eks else []
            what = "Kubernetes secrets and control-plane logs" if eks else "training images, data, models and volumes"
            self.kms_key_arn = KmsKey(f"{name}-key", KmsKeyArgs(
                description=f"Encrypts the {what} of the {name} training cluster",
                service_principals=services, protect=governance.protect, tags=tags,
            ), opts=child(self)).arn
        else:
            self.kms_key_arn = pulumi.Output.from_input(context.kms_key_arn)

        if not eks:
            self._sagemaker(name, settings, context, governance)
            outputs = {"roleArn": self.role_arn, "repositoryUrl": self.repository_url, "inputUri": self.input_uri,
                       "outputUri": self.output_uri, "securityGroupId": self.security_group_id}
        else:
            from emlops.components.training_eks import build_eks

            build_eks(self, name, settings.eks, context, governance)
            outputs = {"clusterName": self.cluster_name, "clusterArn": self.cluster_arn,
                       "clusterEndpoint": self.cluster_endpoint, "oidcProviderArn": self.oidc_provider_arn,
                       "oidcIssuerUrl": self.oidc_issuer_url, "nodeGroupNames": self.node_group_names}
        self.register_outputs({**outputs, "subnetIds": self.subnet_ids, "kmsKeyArn": self.kms_key_arn})

    # -- kind "sagemaker" ---------------------------------------------------------------------------

    def _sagemaker(self, name: str, settings: TrainingSettings, context: TrainingContext, governance) -> None:
        key_arn, tags, protect = self.kms_key_arn, dict(governance.tags), governance.protect
        repository = aws.ecr.Repository(
            f"{name}-repository",
            image_scanning_configuration={"scan_on_push": True},
            image_tag_mutability="IMMUTABLE",
            encryption_configurations=[{"encryption_type": "KMS", "kms_key": key_arn}],
            force_delete=False,
            tags=tags,
            opts=child(self, protect=protect),
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-repository-lifecycle",
            repository=repository.name,
            policy=json.dumps(lifecycle_policy(settings.sagemaker.keep_images)),
            opts=child(self),
        )
        buckets = {}
        for purpose, given in (("input", context.input_bucket), ("output", context.output_bucket)):
            buckets[purpose] = given or SecureBucket(f"{name}-{purpose}", SecureBucketArgs(
                kms_key_arn=key_arn, protect=protect, tags=tags), opts=child(self))
        security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=context.placement.vpc_id,
            description=f"SageMaker training jobs of {name}: only the job instances talk to each other",
            ingress=[{
                "description": "Distributed training between the instances of a job (NCCL, MPI, parameter servers)",
                "protocol": "-1", "from_port": 0, "to_port": 0, "self": True}],
            egress=[*https_egress(context.endpoint_egress),
                    {"description": "Distributed training between the instances of a job",
                     "protocol": "-1", "from_port": 0, "to_port": 0, "self": True}],
            revoke_rules_on_delete=True,
            tags=tags,
            opts=child(self),
        )
        role = self._training_role(name, context, repository, buckets, governance)
        self.role_arn = role.arn
        self.repository_url = repository.repository_url
        self.input_uri = concat("s3://", buckets["input"].bucket_name, "/", context.input_prefix)
        self.output_uri = concat("s3://", buckets["output"].bucket_name, "/", context.output_prefix)
        self.security_group_id = security_group.id

    def _training_role(self, name: str, context: TrainingContext, repository: aws.ecr.Repository,
                       buckets: dict[str, SecureBucket], governance) -> ServiceRole:
        aws_facts = aws_context(self)
        role = ServiceRole(f"{name}-training", ServiceRoleArgs(
            services=["sagemaker.amazonaws.com"],
            description=f"Runs the training jobs of {name}",
            permissions_boundary_arn=governance.permissions_boundary_arn,
            tags=dict(governance.tags),
        ), opts=child(self))
        # people pass this role to their jobs: it reads and writes only the prefixes they may
        buckets["input"].grant_read(role, prefix=context.input_prefix)
        buckets["output"].grant_write(role, prefix=context.output_prefix)
        role.add_policy("pull-image", ecr_pull_statements([repository.arn]))
        log_group = aws_facts.arn("logs", "log-group:/aws/sagemaker/TrainingJobs")
        role.add_policy("logs", [
            Statement(actions=["logs:CreateLogGroup"], resources=[log_group]),
            Statement(actions=["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                      resources=[concat(log_group, ":log-stream:*")]),
            # PutMetricData has no resource; the namespace condition keeps the job to SageMaker's own.
            Statement(actions=["cloudwatch:PutMetricData"], resources=["*"],
                      conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}}),
        ])
        role.add_policy("volume-encryption", [
            # SageMaker encrypts the instances' volumes with the key through a grant it creates for them.
            Statement(actions=["kms:CreateGrant"], resources=[self.kms_key_arn],
                      conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}),
            # DescribeKey is no grant operation: under the grant condition it would never be allowed.
            Statement(actions=["kms:DescribeKey"], resources=[self.kms_key_arn]),
        ])
        role.add_policy("vpc-access", vpc_interface_statements(aws_facts, context.placement.vpc_id))
        return role


def lifecycle_policy(keep_images: int) -> dict:
    """ECR lifecycle policy: expire every image (tagged or not) beyond the newest `keep_images`."""
    return {"rules": [{
        "rulePriority": 1,
        "description": f"Keep the last {keep_images} images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep_images},
        "action": {"type": "expire"},
    }]}
