"""TrainingCluster: its settings (a stack file's `training` section) and context checks, both kinds' children and
inputs."""

from __future__ import annotations

import base64
import functools
import json
import re
from typing import Any, Callable

import pulumi
import pytest
from pydantic import ValidationError

import emlops.components.training_args as training_args
from emlops.components.kubernetes_args import BaselineContext, TeamSettings
from emlops.components.settings import Governance, Placement
from emlops.components.storage import SecureBucket, SecureBucketArgs
from emlops.components.training import TrainingCluster, TrainingContext, TrainingSettings
from emlops.components.training_args import EKS_VERSIONS
from emlops.catalog.requests import ApiRequest, validate_request
from emlops.offline.plan import Plan, PlanResource
from tests.conftest import (
    ACCOUNT, allow, api_problems, auto_name, policy_statements as statements, REGION, run_components,
)

STACK = "pulumi:pulumi:Stack"
COMPONENT = "emlops:index:TrainingCluster"
ROLE_COMPONENT = "emlops:index:ServiceRole"
KMS_COMPONENT = "emlops:index:KmsKey"
BUCKET_COMPONENT = "emlops:index:SecureBucket"
BASELINE = "emlops:index:KubernetesBaseline"
KEY, ALIAS = "aws:kms/key:Key", "aws:kms/alias:Alias"
REPOSITORY = "aws:ecr/repository:Repository"
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
SG = "aws:ec2/securityGroup:SecurityGroup"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ADDON = "aws:eks/addon:Addon"
ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
ACCESS_POLICY = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
OIDC = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
K8S_PROVIDER = "pulumi:providers:kubernetes"

VPC = "vpc-0123456789abcdef0"
SUBNETS = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-4333-8444-555555555555"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/deployer"
PLATFORM_ADMIN = f"arn:aws:iam::{ACCOUNT}:role/platform/Platform-Admins"
TAGS = {"team": "ml", "training-cluster": "ml"}
VIA_S3 = {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
SOURCE_ACCOUNT = {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
MANAGED = "arn:aws:iam::aws:policy/"
GPU_FAMILIES = "g4dn, g5, g6, g6e, p4d, p4de, p5, p5e, p5en, p6-b200"
RETENTIONS = ("1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, "
              "3653")


def sagemaker(**changes: Any) -> TrainingSettings:
    """A stack file's `training` section of kind sagemaker (validated like one)."""
    return TrainingSettings.model_validate({"kind": "sagemaker", "sagemaker": changes})


def eks(**changes: Any) -> TrainingSettings:
    """A stack file's `training` section of kind eks with one admin role (validated like one)."""
    return TrainingSettings.model_validate({"kind": "eks", "eks": {"admin_role_arns": [DEPLOYER], **changes}})


def context(**changes: Any) -> TrainingContext:
    """What a platform supplies: two private subnets of a VPC and its region, by default."""
    return TrainingContext(**{"placement": Placement(VPC, SUBNETS), "region": REGION, **changes})


def error_of(factory: Callable[[], Any]) -> str:
    with pytest.raises(ValueError) as caught:
        factory()
    assert not isinstance(caught.value, ValidationError)
    return str(caught.value)


def trust(resource: PlanResource) -> list[dict[str, Any]]:
    return json.loads(resource.inputs["assumeRolePolicy"])["Statement"]


def key_arn_of(plan: Plan) -> str:
    """The ARN of the cluster's own key (its alias names the key's id)."""
    return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{plan.get('ml-key-alias', ALIAS).inputs['targetKeyId']}"


def protected(plan: Plan) -> set[str]:
    names = {r.name for r in plan.resources if r.protect}
    assert names == {r.name for r in plan.resources if r.retain_on_delete}
    return names


# -- settings and context ---------------------------------------------------------------------------

def settings_error(data: dict) -> tuple[tuple, str]:
    """The one error (where, what) validating `data` as a stack file's `training` section raises."""
    with pytest.raises(ValidationError) as caught:
        TrainingSettings.model_validate(data)
    errors = caught.value.errors()
    assert len(errors) == 1
    return errors[0]["loc"], errors[0]["msg"].removeprefix("Value error, ")


def eks_config(**changes: Any) -> dict:
    return {"kind": "eks", "eks": {"admin_role_arns": [DEPLOYER], **changes}}


def team(**changes: Any) -> dict:
    return {"name": "vision", "gpus": 8, "cpu": "64", "memory": "256Gi", **changes}


EKS_CONFIG = eks_config()
UNPINNED = "must be pinned to a version tag (not 'latest') or a digest, e.g. 'nvcr.io/nvidia/k8s-device-plugin:v0.17.0'"


@pytest.mark.parametrize("data, loc, message", [
    ({"kind": "eks"}, (), "kind 'eks' needs an eks section (at least eks.admin_role_arns)"),
    ({"eks": {"admin_role_arns": [DEPLOYER]}}, (),
     "an eks section is given but kind is 'sagemaker'; set kind: eks or drop eks"),
    ({**EKS_CONFIG, "sagemaker": {"keep_images": 5}}, (),
     "a sagemaker section is given but kind is 'eks'; set kind: sagemaker or drop sagemaker"),
    ({"kind": "slurm"}, ("kind",), "Input should be 'sagemaker' or 'eks'"),
    ({"sagemaker": {"keep_images": 0}}, ("sagemaker", "keep_images"), "Input should be greater than or equal to 1"),
    ({"sagemaker": {"keep_images": 1001}}, ("sagemaker", "keep_images"),
     "Input should be less than or equal to 1000"),
    ({"sagemaker": {"keep": 5}}, ("sagemaker", "keep"), "Extra inputs are not permitted"),
    (eks_config(kubernetes_version="1.20"), ("eks", "kubernetes_version"),
     "EKS version '1.20' is not supported; supported: 1.31, 1.32, 1.33, 1.34"),
    (eks_config(kubernetes_version="1.33.1"), ("eks", "kubernetes_version"),
     "EKS version '1.33.1' is not supported; supported: 1.31, 1.32, 1.33, 1.34"),
    (eks_config(kubernetes_version=1.3), ("eks", "kubernetes_version"),
     "must be a quoted string (YAML reads 1.3 unquoted as a number; write '1.3')"),
    (eks_config(admin_role_arns=[]), ("eks", "admin_role_arns"), "List should have at least 1 item after validation, "
                                                                 "not 0"),
    (eks_config(admin_role_arns=DEPLOYER), ("eks", "admin_role_arns"), "Input should be a valid list"),
    ({"kind": "eks", "eks": {}}, ("eks", "admin_role_arns"), "Field required"),
    (eks_config(admin_role_arns=["deployer"]), ("eks", "admin_role_arns"),
     "'deployer' must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)"),
    (eks_config(admin_role_arns=[f"arn:aws:iam::{ACCOUNT}:user/alice"]), ("eks", "admin_role_arns"),
     f"'arn:aws:iam::{ACCOUNT}:user/alice' must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)"),
    (eks_config(admin_role_arns=[DEPLOYER, "arn:aws:iam::210987654321:role/Deployer"]), ("eks", "admin_role_arns"),
     "must name different roles (their access entries are named after them)"),
    (eks_config(endpoint_access_cidrs=["10.0.0.0/33"]), ("eks", "endpoint_access_cidrs"),
     "'10.0.0.0/33' is not a CIDR block like '10.0.0.0/16'"),
    (eks_config(endpoint_access_cidrs=["0.0.0.0/0"]), ("eks", "endpoint_access_cidrs"),
     "'0.0.0.0/0' opens the Kubernetes API to every address; name your private networks"),
    (eks_config(gpu_instance_types=[]), ("eks", "gpu_instance_types"),
     "List should have at least 1 item after validation, not 0"),
    (eks_config(gpu_instance_types="g5.2xlarge"), ("eks", "gpu_instance_types"), "Input should be a valid list"),
    (eks_config(gpu_instance_types=["g5.3xlarge"]), ("eks", "gpu_instance_types"),
     "'g5.3xlarge' is not an EC2 instance type; did you mean 'g5.xlarge'?"),
    (eks_config(gpu_instance_types=["p5.48xlarg"]), ("eks", "gpu_instance_types"),
     "'p5.48xlarg' is not an EC2 instance type; did you mean 'p5.48xlarge'?"),
    (eks_config(gpu_instance_types=["g5.2xlarge", "m5.large"]), ("eks", "gpu_instance_types"),
     f"'m5.large' is not an NVIDIA GPU instance type; families: {GPU_FAMILIES}"),
    (eks_config(gpu_instance_types=["g5g.2xlarge"]), ("eks", "gpu_instance_types"),
     f"'g5g.2xlarge' is not an NVIDIA GPU instance type; families: {GPU_FAMILIES}"),
    (eks_config(system_instance_type="m6i.larg"), ("eks", "system_instance_type"),
     "'m6i.larg' is not an EC2 instance type; did you mean 'm6i.large'?"),
    (eks_config(gpu_max_nodes=0), ("eks", "gpu_max_nodes"), "Input should be greater than or equal to 1"),
    (eks_config(gpu_max_nodes=101), ("eks", "gpu_max_nodes"), "Input should be less than or equal to 100"),
    (eks_config(gpu_disk_size_gib=19), ("eks", "gpu_disk_size_gib"), "Input should be greater than or equal to 20"),
    (eks_config(system_nodes=0), ("eks", "system_nodes"), "Input should be greater than or equal to 1"),
    (eks_config(system_nodes=11), ("eks", "system_nodes"), "Input should be less than or equal to 10"),
    (eks_config(log_retention_days=10), ("eks", "log_retention_days"),
     f"10 is not a CloudWatch Logs retention; allowed: {RETENTIONS}"),
    (eks_config(teams=[team(), team(name="nlp"), team()]), ("eks", "teams"),
     "team names must be unique; repeated: vision"),
    (eks_config(teams=[team(name="Vision")]), ("eks", "teams", 0, "name"),
     "must be at most 58 lowercase letters, digits and '-', starting and ending with a letter or digit"),
    (eks_config(teams=[team(cpu="64 cores")]), ("eks", "teams", 0, "cpu"),
     "'64 cores' is not a positive Kubernetes quantity like '64', '500m' or '256Gi'"),
    (eks_config(teams=[team(memory="256GB")]), ("eks", "teams", 0, "memory"),
     "'256GB' is not a positive Kubernetes quantity like '64', '500m' or '256Gi'"),
    (eks_config(teams=[team(cpu="0")]), ("eks", "teams", 0, "cpu"),
     "'0' is not a positive Kubernetes quantity like '64', '500m' or '256Gi'"),
    (eks_config(teams=[team(name="a" * 59)]), ("eks", "teams", 0, "name"),
     "String should have at most 58 characters"),
    (eks_config(teams=[team(pod_security="privileged")]), ("eks", "teams", 0, "pod_security"),
     "Input should be 'restricted' or 'baseline'"),
    (eks_config(teams=[team(memory="4Gi")]), ("eks",),
     "team 'vision': memory (4Gi) is smaller than default_memory_limit (8Gi); raise memory or lower "
     "default_memory_limit"),
    (eks_config(teams=[team(gpus=-1)]), ("eks", "teams", 0, "gpus"), "Input should be greater than or equal to 0"),
    # the Kubernetes baseline's own keys live in the same section
    (eks_config(device_plugin_image="nvcr.io/nvidia/k8s-device-plugin:latest"), ("eks", "device_plugin_image"),
     f"'nvcr.io/nvidia/k8s-device-plugin:latest' {UNPINNED}"),
    (eks_config(default_cpu_request="5"), ("eks",),
     "default_cpu_request (5) is larger than default_cpu_limit (4); lower the request or raise the limit"),
    (eks_config(gpu_node_taint_key="gpu"), ("eks", "gpu_node_taint_key"), "Extra inputs are not permitted"),
])
def test_training_settings_reject_with_a_message(data, loc, message):
    assert settings_error(data) == (loc, message)


def test_training_settings_default_to_sagemaker():
    defaults = TrainingSettings.model_validate({})
    assert (defaults.kind, defaults.sagemaker.keep_images, defaults.eks) == ("sagemaker", 30, None)


def test_eks_settings_defaults_and_the_teams_of_the_section():
    section = TrainingSettings.model_validate(eks_config(
        teams=[team(cpu=64), team(name="nlp", gpus=0, cpu="500m", memory=" 8Gi ", pod_security="baseline")]))
    eks = section.eks
    assert (eks.kubernetes_version, eks.admin_role_arns, eks.endpoint_access_cidrs, eks.gpu_instance_types,
            eks.gpu_max_nodes, eks.gpu_disk_size_gib, eks.system_instance_type, eks.system_nodes,
            eks.log_retention_days) == ("1.33", [DEPLOYER], [], ["g5.2xlarge"], 4, 200, "m6i.large", 2, 365)
    assert (eks.install_device_plugin, eks.default_cpu_request, eks.default_memory_limit) == (True, "500m", "8Gi")
    assert eks.teams == [
        TeamSettings(name="vision", gpus=8, cpu="64", memory="256Gi"),
        TeamSettings(name="nlp", gpus=0, cpu="500m", memory="8Gi", pod_security="baseline")]
    assert [t.namespace for t in eks.teams] == ["team-vision", "team-nlp"]


def test_every_supported_eks_version_has_kubernetes_schemas():
    from kubernetes_validate import utils

    schemas = {utils.major_minor(v) for v in utils.all_versions()}
    assert set(EKS_VERSIONS) <= schemas
    for version in EKS_VERSIONS:
        assert eks(kubernetes_version=version).eks.kubernetes_version == version


def test_eks_version_needs_kubernetes_validate_schemas(monkeypatch):
    from kubernetes_validate import __version__

    monkeypatch.setattr(training_args, "_schema_versions", lambda: ("1.31", "1.32", "1.33"))
    assert settings_error(eks_config(kubernetes_version="1.34")) == (("eks", "kubernetes_version"), (
        f"EKS version '1.34' has no schemas in kubernetes-validate {__version__}; upgrade kubernetes-validate"))


PLACEMENT_NEEDS = "a placement needs vpc_id and a list of subnet_ids"


@pytest.mark.parametrize("vpc_id, subnet_ids", [("", SUBNETS), (None, SUBNETS), (VPC, SUBNETS[0]), (VPC, [])])
def test_placement_needs_a_vpc_and_a_list_of_subnets(vpc_id, subnet_ids):
    assert error_of(lambda: Placement(vpc_id, subnet_ids)) == PLACEMENT_NEEDS


@pytest.mark.parametrize("vpc_id, subnet_ids, message", [
    ("vpc-123", SUBNETS, "vpc_id 'vpc-123' must be a VPC id like 'vpc-0123456789abcdef0'"),
    (VPC, [SUBNETS[0], "subnet-x"], "subnet id 'subnet-x' must look like 'subnet-0123456789abcdef0'"),
])
def test_placement_ids_have_their_ec2_shapes(vpc_id, subnet_ids, message):
    assert error_of(lambda: Placement(vpc_id, subnet_ids)) == message


@pytest.mark.parametrize("section, changes, message", [
    ("sagemaker", {"placement": Placement(VPC, SUBNETS[:1])},
     "training needs at least two private subnets in different availability zones"),
    ("eks", {"placement": Placement(VPC, SUBNETS[:1])},
     "training needs at least two private subnets in different availability zones"),
    ("sagemaker", {"placement": Placement(VPC, [SUBNETS[0], SUBNETS[0]])},
     f"subnet ids must be unique; got {SUBNETS[0]}, {SUBNETS[0]}"),
    ("sagemaker", {"kms_key_arn": "alias/ml"},
     "kms_key_arn 'alias/ml' must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)"),
    ("eks", {"region": None}, "kind 'eks' needs region (the created key lets logs.<region>.amazonaws.com encrypt the "
                              "control-plane logs), or kms_key_arn"),
])
def test_context_is_checked_before_anything_is_created(section, changes, message):
    chosen = sagemaker() if section == "sagemaker" else eks()
    assert error_of(lambda: context(**changes).check(chosen)) == message
    # the component checks it first (outside the mocks: nothing may be registered)
    assert error_of(lambda: TrainingCluster("ml", chosen, context(**changes))) == message


def test_eks_region_is_optional_with_a_given_key():
    assert context(region=None, kms_key_arn=KEY_ARN).check(eks()) is None
    assert context(region=None).check(sagemaker()) is None


@pytest.mark.parametrize("name", ["ML", "ml_cluster", "-ml", "ml-", "", "a" * 33])
def test_name_is_checked_before_anything_is_created(name):
    assert error_of(lambda: TrainingCluster(name, sagemaker(), context())) == (
        f"training cluster name {name!r} must be at most 32 lowercase letters, digits and '-', starting and "
        "ending with a letter or digit")


# -- kind "sagemaker" -------------------------------------------------------------------------------

@functools.cache
def sagemaker_plan(protect: bool = False) -> Plan:
    def program() -> None:
        cluster = TrainingCluster("ml", sagemaker(keep_images=10),
                                  context(governance=Governance({"team": "ml"}, protect=protect)))
        for output in ("role_arn", "repository_url", "input_uri", "output_uri", "security_group_id", "subnet_ids",
                       "kms_key_arn"):
            pulumi.export(output, getattr(cluster, output))
        pulumi.export("eks_outputs_unset", [getattr(cluster, output) for output in (
            "cluster_name", "cluster_arn", "cluster_endpoint", "oidc_provider_arn", "oidc_issuer_url",
            "kubernetes_provider", "node_group_names")] == [None] * 7)
    return run_components(program)


def test_sagemaker_children_are_named_after_the_cluster():
    plan = sagemaker_plan()
    component = plan.get("ml", COMPONENT)
    assert component.parent == plan.get("emlops-test", STACK).urn
    assert [(r.type, r.name) for r in plan.children(component.urn)] == [
        (KMS_COMPONENT, "ml-key"), (REPOSITORY, "ml-repository"), (LIFECYCLE, "ml-repository-lifecycle"),
        (BUCKET_COMPONENT, "ml-input"), (BUCKET_COMPONENT, "ml-output"), (SG, "ml-sg"), (ROLE_COMPONENT, "ml-training")]
    assert [(r.type, r.name) for r in plan.children(plan.get("ml-training", ROLE_COMPONENT).urn)] == [
        (ROLE, "ml-training-role")] + [(ROLE_POLICY, f"ml-training-{p}") for p in (
            "read-ml-input", "write-ml-output", "pull-image", "logs", "volume-encryption", "vpc-access")]
    # (the buckets' and the key's own children are SecureBucket's and KmsKey's, tested with them)
    assert {t: n for t, n in plan.type_counts().items() if not t.startswith("aws:s3/")} == {
        STACK: 1, COMPONENT: 1, KMS_COMPONENT: 1, KEY: 1, ALIAS: 1, REPOSITORY: 1, LIFECYCLE: 1, BUCKET_COMPONENT: 2,
        SG: 1, ROLE_COMPONENT: 1, ROLE: 1, ROLE_POLICY: 6}


def test_repository_scans_on_push_keeps_tags_and_encrypts_with_the_key():
    plan = sagemaker_plan()
    repository = plan.get("ml-repository")
    assert repository.inputs == {
        "name": auto_name(repository), "imageScanningConfiguration": {"scanOnPush": True},
        "imageTagMutability": "IMMUTABLE", "forceDelete": False, "tags": TAGS,
        "encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": key_arn_of(plan)}]}
    assert api_problems(repository) == []


def test_lifecycle_policy_keeps_the_last_images():
    plan = sagemaker_plan()
    lifecycle = plan.get("ml-repository-lifecycle")
    assert lifecycle.inputs["repository"] == plan.get("ml-repository").inputs["name"]
    assert json.loads(lifecycle.inputs["policy"]) == {"rules": [{
        "rulePriority": 1, "description": "Keep the last 10 images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 10},
        "action": {"type": "expire"}}]}


@pytest.mark.parametrize("purpose", ["input", "output"])
def test_buckets_are_encrypted_with_the_cluster_key(purpose):
    plan = sagemaker_plan()
    encryption = plan.get(f"ml-{purpose}-encryption").inputs
    assert encryption["rules"][0]["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms", "kmsMasterKeyId": key_arn_of(plan)}
    assert plan.get(f"ml-{purpose}-bucket").inputs["tags"] == TAGS
    assert plan.children(plan.get(f"ml-{purpose}", BUCKET_COMPONENT).urn)[0].name == f"ml-{purpose}-bucket"


def test_training_role_reads_inputs_writes_outputs_and_pulls_only_its_image():
    plan = sagemaker_plan()
    role = plan.get("ml-training-role")
    assert trust(role) == [{"Effect": "Allow", "Principal": {"Service": ["sagemaker.amazonaws.com"]},
                            "Action": ["sts:AssumeRole"], "Condition": SOURCE_ACCOUNT}]
    assert role.inputs["description"] == "Runs the training jobs of ml"
    key = key_arn_of(plan)
    inputs, outputs = (f"arn:aws:s3:::{plan.get(f'ml-{p}-bucket').inputs['bucket']}" for p in ("input", "output"))
    assert statements(plan, "ml-training-read-ml-input") == [
        allow(["s3:ListBucket"], [inputs]), allow(["s3:GetObject", "s3:GetObjectVersion"], [f"{inputs}/*"]),
        allow(["kms:DescribeKey", "kms:Decrypt"], [key], {"StringEquals": VIA_S3})]
    assert statements(plan, "ml-training-write-ml-output") == [
        allow(["s3:AbortMultipartUpload", "s3:PutObject"], [f"{outputs}/*"]),
        allow(["kms:DescribeKey", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom",
               "kms:ReEncryptTo"], [key], {"StringEquals": VIA_S3})]
    repository = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{plan.get('ml-repository').inputs['name']}"
    assert statements(plan, "ml-training-pull-image") == [
        allow(["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], [repository]),
        allow(["ecr:GetAuthorizationToken"], ["*"])]
    log_group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/TrainingJobs"
    assert statements(plan, "ml-training-logs") == [
        allow(["logs:CreateLogGroup"], [log_group]),
        allow(["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"], [f"{log_group}:log-stream:*"]),
        allow(["cloudwatch:PutMetricData"], ["*"],
              {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}})]
    assert statements(plan, "ml-training-volume-encryption") == [
        allow(["kms:CreateGrant"], [key], {"Bool": {"kms:GrantIsForAWSResource": "true"}}),
        allow(["kms:DescribeKey"], [key])]
    assert statements(plan, "ml-training-vpc-access") == [
        allow(["ec2:DescribeDhcpOptions", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroups",
               "ec2:DescribeSubnets", "ec2:DescribeVpcs"], ["*"]),
        allow(["ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
               "ec2:DeleteNetworkInterfacePermission"], ["*"],
              {"ArnEquals": {"ec2:Vpc": f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/{VPC}"}})]


def test_training_security_group_only_lets_a_job_talk_to_itself():
    plan = sagemaker_plan()
    sg = plan.get("ml-sg")
    peers = {"protocol": "-1", "fromPort": 0, "toPort": 0, "self": True}
    assert sg.inputs == {
        "name": auto_name(sg), "vpcId": VPC, "revokeRulesOnDelete": True, "tags": TAGS,
        "description": "SageMaker training jobs of ml: only the job instances talk to each other",
        "ingress": [{"description": "Distributed training between the instances of a job (NCCL, MPI, parameter "
                                    "servers)", **peers}],
        "egress": [{"description": "HTTPS to the VPC endpoints and the S3 gateway (private subnets, no internet route)",
                    "protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]},
                   {"description": "Distributed training between the instances of a job", **peers}]}


def test_sagemaker_outputs_are_what_a_training_job_needs():
    plan = sagemaker_plan()
    buckets = {p: plan.get(f"ml-{p}-bucket").inputs["bucket"] for p in ("input", "output")}
    assert plan.outputs == {
        "role_arn": f"arn:aws:iam::{ACCOUNT}:role/{plan.get('ml-training-role').inputs['name']}",
        "repository_url": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{plan.get('ml-repository').inputs['name']}",
        "input_uri": f"s3://{buckets['input']}/", "output_uri": f"s3://{buckets['output']}/",
        "security_group_id": plan.outputs["security_group_id"], "subnet_ids": SUBNETS, "kms_key_arn": key_arn_of(plan),
        "eks_outputs_unset": True}
    assert re.fullmatch(r"sg-[0-9a-f]{17}", plan.outputs["security_group_id"])


def test_sagemaker_protects_only_stateful_children():
    assert protected(sagemaker_plan()) == set()
    assert protected(sagemaker_plan(protect=True)) == {
        "ml-key-key", "ml-repository", "ml-input-bucket", "ml-output-bucket"}


def test_given_key_and_buckets_are_used_instead_of_created():
    def program() -> None:
        data = SecureBucket("data", SecureBucketArgs(kms_key_arn=KEY_ARN))
        models = SecureBucket("models", SecureBucketArgs(kms_key_arn=KEY_ARN))
        TrainingCluster("ml", sagemaker(), context(kms_key_arn=KEY_ARN, input_bucket=data, output_bucket=models))
    plan = run_components(program)
    assert [(r.type, r.name) for r in plan.children(plan.get("ml", COMPONENT).urn)] == [
        (REPOSITORY, "ml-repository"), (LIFECYCLE, "ml-repository-lifecycle"), (SG, "ml-sg"),
        (ROLE_COMPONENT, "ml-training")]
    assert plan.type_counts()[KEY] == 0
    assert plan.get("ml-repository").inputs["encryptionConfigurations"][0]["kmsKey"] == KEY_ARN
    data = f"arn:aws:s3:::{plan.get('data-bucket').inputs['bucket']}"
    assert statements(plan, "ml-training-read-data")[0] == allow(["s3:ListBucket"], [data])
    assert statements(plan, "ml-training-write-models")[0]["Action"] == ["s3:AbortMultipartUpload", "s3:PutObject"]


# -- kind "eks" -------------------------------------------------------------------------------------

@pytest.fixture
def baseline_module():
    """The Kubernetes baseline the EKS kind applies (components/kubernetes_baseline.py)."""
    return pytest.importorskip("emlops.components.kubernetes_baseline")


@functools.cache
def eks_plan(protect: bool = False) -> Plan:
    def program() -> None:
        cluster = TrainingCluster("ml", eks(
            admin_role_arns=[DEPLOYER, PLATFORM_ADMIN], endpoint_access_cidrs=["10.20.0.0/16"],
            gpu_instance_types=["g5.2xlarge", "g6.2xlarge"], gpu_max_nodes=8, system_nodes=3, teams=[team()],
            log_retention_days=90), context(governance=Governance({"team": "ml"}, protect=protect)))
        for output in ("cluster_name", "cluster_arn", "cluster_endpoint", "oidc_provider_arn", "oidc_issuer_url",
                       "node_group_names", "subnet_ids", "kms_key_arn"):
            pulumi.export(output, getattr(cluster, output))
        pulumi.export("sagemaker_outputs_unset", [getattr(cluster, output) for output in (
            "role_arn", "repository_url", "input_uri", "output_uri", "security_group_id")] == [None] * 5)
        pulumi.export("provider_is_kubernetes", cluster.kubernetes_provider.package == "kubernetes")
    return run_components(program)


ADMIN_NAMES = ["ml-admin-deployer", "ml-admin-platform-admins"]


def test_eks_children_are_named_after_the_cluster(baseline_module):
    plan = eks_plan()
    component = plan.get("ml", COMPONENT)
    admins = [(kind, f"{admin}{suffix}") for admin in ADMIN_NAMES
              for kind, suffix in ((ACCESS_ENTRY, ""), (ACCESS_POLICY, "-policy"))]
    assert [(r.type, r.name) for r in plan.children(component.urn)] == [
        (KMS_COMPONENT, "ml-key"), (LOG_GROUP, "ml-cluster-logs"), (ROLE_COMPONENT, "ml-control-plane"),
        (ATTACHMENT, "ml-control-plane-eks-policy"), (SG, "ml-cluster-sg"), (CLUSTER, "ml-cluster"), (OIDC, "ml-oidc"),
        (ROLE, "ml-vpc-cni-role"), (ATTACHMENT, "ml-vpc-cni-policy"), (ADDON, "ml-vpc-cni"), (ROLE, "ml-node-role"),
        (ATTACHMENT, "ml-node-worker-policy"), (ATTACHMENT, "ml-node-ecr-pull"), (NODE_GROUP, "ml-gpu"),
        (NODE_GROUP, "ml-system"), *admins, (K8S_PROVIDER, "ml-k8s"), (BASELINE, "ml-baseline")]
    assert [(r.type, r.name) for r in plan.children(plan.get("ml-control-plane", ROLE_COMPONENT).urn)] == [
        (ROLE, "ml-control-plane-role"), (ROLE_POLICY, "ml-control-plane-secrets-encryption")]
    counts = plan.type_counts()
    assert {t: counts[t] for t in (CLUSTER, NODE_GROUP, ROLE, ATTACHMENT, ROLE_POLICY, OIDC, ADDON, ACCESS_ENTRY,
                                   ACCESS_POLICY, SG, LOG_GROUP, KEY, K8S_PROVIDER, BASELINE, REPOSITORY)} == {
        CLUSTER: 1, NODE_GROUP: 2, ROLE: 3, ATTACHMENT: 4, ROLE_POLICY: 1, OIDC: 1, ADDON: 1, ACCESS_ENTRY: 2,
        ACCESS_POLICY: 2, SG: 1, LOG_GROUP: 1, KEY: 1, K8S_PROVIDER: 1, BASELINE: 1, REPOSITORY: 0}


def test_cluster_is_private_encrypted_and_logs_everything(baseline_module):
    plan = eks_plan()
    cluster = plan.get("ml-cluster")
    security_group = _sg_id(cluster)
    assert cluster.inputs == {
        "name": "ml", "version": "1.33", "tags": TAGS, "deletionProtection": False,
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/{plan.get('ml-control-plane-role').inputs['name']}",
        "vpcConfig": {"subnetIds": SUBNETS, "securityGroupIds": [security_group],
                      "endpointPrivateAccess": True, "endpointPublicAccess": False},
        "encryptionConfig": {"provider": {"keyArn": key_arn_of(plan)}, "resources": ["secrets"]},
        "enabledClusterLogTypes": ["api", "audit", "authenticator", "controllerManager", "scheduler"],
        "accessConfig": {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False},
        "upgradePolicy": {"supportType": "STANDARD"}}
    assert api_problems(cluster) == []
    waits_for = {plan.get(n).urn for n in ("ml-cluster-logs", "ml-control-plane-eks-policy",
                                           "ml-control-plane-secrets-encryption", "ml-control-plane-role",
                                           "ml-cluster-sg", "ml-key-key")}
    assert set(cluster.dependencies) == waits_for


def _sg_id(cluster: PlanResource) -> str:
    security_group = cluster.inputs["vpcConfig"]["securityGroupIds"][0]
    assert re.fullmatch(r"sg-[0-9a-f]{17}", security_group)
    return security_group


def test_cluster_inputs_the_mapping_ignores_are_valid_for_the_api(baseline_module):
    # the provider's log types and single encryption block have no renaming onto CreateCluster
    # (see _MAPPINGS); they are checked here against the API's own shapes.
    import botocore.session

    plan = eks_plan()
    cluster = plan.get("ml-cluster").inputs
    eks = botocore.session.get_session().get_service_model("eks")
    assert set(cluster["enabledClusterLogTypes"]) == set(eks.shape_for("LogType").enum)
    request = ApiRequest("eks", "CreateCluster", {
        "name": "ml", "roleArn": cluster["roleArn"], "resourcesVpcConfig": {"subnetIds": SUBNETS},
        "logging": {"clusterLogging": [{"types": cluster["enabledClusterLogTypes"], "enabled": True}]},
        "encryptionConfig": [cluster["encryptionConfig"]]})
    assert validate_request(request) == []


def test_cluster_security_group_admits_only_the_listed_networks(baseline_module):
    plan = eks_plan()
    sg = plan.get("ml-cluster-sg")
    assert sg.inputs == {
        "name": auto_name(sg), "vpcId": VPC, "revokeRulesOnDelete": True, "tags": TAGS, "egress": [],
        "description": "EKS control plane of ml: API from the listed private networks only; node traffic uses the "
                       "cluster security group EKS manages",
        "ingress": [{"description": "Kubernetes API from private networks (VPN, CI runners)", "protocol": "tcp",
                     "fromPort": 443, "toPort": 443, "cidrBlocks": ["10.20.0.0/16"]}]}


def test_no_endpoint_networks_means_no_ingress(baseline_module):
    plan = run_components(lambda: TrainingCluster("ml", eks(), context()))
    assert plan.get("ml-cluster-sg").inputs["ingress"] == []


def test_control_plane_logs_go_to_an_encrypted_log_group_created_first(baseline_module):
    plan = eks_plan()
    assert plan.get("ml-cluster-logs").inputs == {
        "name": "/aws/eks/ml/cluster", "retentionInDays": 90, "kmsKeyId": key_arn_of(plan), "tags": TAGS}
    key_policy = json.loads(plan.get("ml-key-key").inputs["policy"])["Statement"]
    assert key_policy[1] == {
        "Sid": "CloudWatchLogsUseKeyForThisAccount", "Effect": "Allow",
        "Principal": {"Service": [f"logs.{REGION}.amazonaws.com"]},
        "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
        "Resource": ["*"],
        "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:*"}}}


def test_control_plane_role_has_the_eks_policy_and_uses_the_key_for_secrets(baseline_module):
    plan = eks_plan()
    role = plan.get("ml-control-plane-role")
    assert trust(role) == [{"Effect": "Allow", "Principal": {"Service": ["eks.amazonaws.com"]},
                            "Action": ["sts:AssumeRole"], "Condition": SOURCE_ACCOUNT}]
    assert plan.get("ml-control-plane-eks-policy").inputs == {
        "role": role.inputs["name"], "policyArn": f"{MANAGED}AmazonEKSClusterPolicy"}
    assert statements(plan, "ml-control-plane-secrets-encryption") == [
        allow(["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:ListGrants"], [key_arn_of(plan)])]


def test_node_role_can_join_and_pull_images_but_has_no_cni_permissions(baseline_module):
    plan = eks_plan()
    role = plan.get("ml-node-role")
    assert role.inputs == {"name": auto_name(role), "description": "Nodes of the ml EKS cluster", "tags": TAGS,
                           "assumeRolePolicy": role.inputs["assumeRolePolicy"]}
    assert trust(role) == [{"Effect": "Allow", "Principal": {"Service": ["ec2.amazonaws.com"]},
                            "Action": ["sts:AssumeRole"]}]
    attached = {r.inputs["policyArn"] for r in plan.by_type(ATTACHMENT) if r.inputs["role"] == role.inputs["name"]}
    assert attached == {f"{MANAGED}AmazonEKSWorkerNodePolicy", f"{MANAGED}AmazonEC2ContainerRegistryPullOnly"}


def test_vpc_cni_gets_its_permissions_through_irsa(baseline_module):
    plan = eks_plan()
    issuer = plan.outputs["oidc_issuer_url"]
    host = issuer.removeprefix("https://")
    assert re.fullmatch(rf"oidc\.eks\.{REGION}\.amazonaws\.com/id/[0-9A-F]{{32}}", host)
    assert plan.get("ml-oidc").inputs == {"url": issuer, "clientIdLists": ["sts.amazonaws.com"], "tags": TAGS}
    oidc_arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}"
    assert plan.outputs["oidc_provider_arn"] == oidc_arn
    role = plan.get("ml-vpc-cni-role")
    assert trust(role) == [{"Effect": "Allow", "Principal": {"Federated": [oidc_arn]},
                            "Action": ["sts:AssumeRoleWithWebIdentity"], "Condition": {"StringEquals": {
                                f"{host}:sub": "system:serviceaccount:kube-system:aws-node",
                                f"{host}:aud": "sts.amazonaws.com"}}}]
    assert plan.get("ml-vpc-cni-policy").inputs == {
        "role": role.inputs["name"], "policyArn": f"{MANAGED}AmazonEKS_CNI_Policy"}
    assert plan.get("ml-vpc-cni").inputs == {
        "clusterName": "ml", "addonName": "vpc-cni", "resolveConflictsOnCreate": "OVERWRITE", "tags": TAGS,
        "serviceAccountRoleArn": f"arn:aws:iam::{ACCOUNT}:role/{role.inputs['name']}"}


def test_gpu_node_group_scales_from_zero_and_is_tainted(baseline_module):
    plan = eks_plan()
    gpu = plan.get("ml-gpu")
    node_role = f"arn:aws:iam::{ACCOUNT}:role/{plan.get('ml-node-role').inputs['name']}"
    common = {"clusterName": "ml", "nodeRoleArn": node_role, "subnetIds": SUBNETS, "capacityType": "ON_DEMAND",
              "updateConfig": {"maxUnavailable": 1}, "nodeRepairConfig": {"enabled": True}, "tags": TAGS}
    assert gpu.inputs == {
        **common, "nodeGroupName": auto_name(gpu, "nodeGroupName"), "instanceTypes": ["g5.2xlarge", "g6.2xlarge"],
        "amiType": "AL2023_x86_64_NVIDIA", "diskSize": 200,
        "scalingConfig": {"minSize": 0, "desiredSize": 0, "maxSize": 8},
        "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}],
        "labels": {"emlops.dev/node-pool": "gpu"}}
    system = plan.get("ml-system")
    assert system.inputs == {
        **common, "nodeGroupName": auto_name(system, "nodeGroupName"), "instanceTypes": ["m6i.large"],
        "amiType": "AL2023_x86_64_STANDARD", "scalingConfig": {"minSize": 3, "desiredSize": 3, "maxSize": 4},
        "labels": {"emlops.dev/node-pool": "system"}}
    for group in (gpu, system):
        assert api_problems(group) == []
        assert set(group.dependencies) >= {plan.get(n).urn for n in (
            "ml-node-worker-policy", "ml-node-ecr-pull", "ml-vpc-cni", "ml-cluster", "ml-node-role")}
    assert plan.outputs["node_group_names"] == [gpu.inputs["nodeGroupName"], system.inputs["nodeGroupName"]]


def test_admins_get_access_entries_and_nobody_else_is_admin(baseline_module):
    plan = eks_plan()
    for name, arn in zip(ADMIN_NAMES, (DEPLOYER, PLATFORM_ADMIN)):
        assert plan.get(name).inputs == {"clusterName": "ml", "principalArn": arn, "type": "STANDARD", "tags": TAGS}
        assert plan.get(f"{name}-policy").inputs == {
            "clusterName": "ml", "principalArn": arn, "accessScope": {"type": "cluster"},
            "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"}


def test_kubernetes_provider_uses_exec_auth_against_the_private_endpoint(baseline_module):
    plan = eks_plan()
    provider = plan.get("ml-k8s", K8S_PROVIDER)
    endpoint = plan.outputs["cluster_endpoint"]
    assert re.fullmatch(rf"https://[0-9A-F]{{32}}\.gr7\.{REGION}\.eks\.amazonaws\.com", endpoint)
    config = json.loads(provider.inputs["kubeconfig"])
    ca = config["clusters"][0]["cluster"]["certificate-authority-data"]
    assert base64.b64decode(ca).decode().startswith("-----BEGIN CERTIFICATE-----")
    assert config == {
        "apiVersion": "v1", "kind": "Config", "current-context": "ml",
        "clusters": [{"name": "ml", "cluster": {"server": endpoint, "certificate-authority-data": ca}}],
        "contexts": [{"name": "ml", "context": {"cluster": "ml", "user": "ml"}}],
        "users": [{"name": "ml", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", "ml", "--region", REGION, "--output", "json"],
            "interactiveMode": "Never"}}}]}
    # the deploying role can use the API only once its access policy is associated
    assert set(provider.dependencies) >= {plan.get(f"{n}-policy").urn for n in ADMIN_NAMES}


def test_baseline_is_applied_through_the_cluster_provider(baseline_module):
    plan = eks_plan()
    provider = plan.get("ml-k8s", K8S_PROVIDER)
    baseline = plan.get("ml-baseline", BASELINE)
    assert baseline.parent == plan.get("ml", COMPONENT).urn

    def descendants(urn: str) -> list[PlanResource]:
        return [d for c in plan.children(urn) for d in [c, *descendants(c.urn)]]
    kubernetes_resources = [r for r in descendants(baseline.urn) if r.custom]
    assert kubernetes_resources
    assert all(r.provider.startswith(provider.urn) for r in kubernetes_resources)
    assert all(r.type.startswith("kubernetes:") for r in kubernetes_resources)


def test_baseline_gets_the_version_teams_and_the_gpu_pool(baseline_module, monkeypatch):
    import emlops.components.training_eks as training_eks

    seen = []

    class Recording(training_eks.KubernetesBaseline):
        def __init__(self, name, settings, context, opts=None):
            seen.append((settings, context))
            super().__init__(name, settings, context, opts)
    monkeypatch.setattr(training_eks, "KubernetesBaseline", Recording)
    section = eks(kubernetes_version="1.32", teams=[team()], default_memory_limit="16Gi")
    run_components(lambda: TrainingCluster("ml", section, context(governance=Governance(protect=True))))
    # the baseline reads its own keys of the section (teams, container defaults, device plugin)
    assert seen == [(section.eks, BaselineContext(
        kubernetes_version="1.32", gpu_node_taint_key="nvidia.com/gpu", gpu_node_label=("emlops.dev/node-pool", "gpu"),
        protect=True))]
    assert seen[0][0].teams == [TeamSettings(name="vision", gpus=8, cpu="64", memory="256Gi")]
    assert seen[0][0].default_memory_limit == "16Gi"


def test_eks_outputs(baseline_module):
    plan = eks_plan()
    assert plan.outputs["cluster_name"] == "ml"
    assert plan.outputs["cluster_arn"] == f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/ml"
    assert plan.outputs["subnet_ids"] == SUBNETS
    assert plan.outputs["kms_key_arn"] == key_arn_of(plan)
    assert plan.outputs["sagemaker_outputs_unset"] is True
    assert plan.outputs["provider_is_kubernetes"] is True


def test_eks_protects_only_stateful_children(baseline_module):
    assert protected(eks_plan()) == set()
    plan = eks_plan(protect=True)
    # (and the team namespaces, which the baseline protects when asked)
    assert protected(plan) == {"ml-key-key", "ml-cluster-logs", "ml-cluster", "ml-baseline-vision-namespace"}
    assert plan.get("ml-cluster").inputs["deletionProtection"] is True


def test_eks_with_a_given_key_creates_none(baseline_module):
    plan = run_components(lambda: TrainingCluster("ml", eks(), context(region=None, kms_key_arn=KEY_ARN)))
    assert plan.type_counts()[KEY] == 0
    assert plan.get("ml-cluster-logs").inputs["kmsKeyId"] == KEY_ARN
    assert plan.get("ml-cluster").inputs["encryptionConfig"]["provider"] == {"keyArn": KEY_ARN}


def test_the_training_role_reads_and_writes_only_its_prefixes_and_sends_https_to_the_vpc_endpoints():
    """People pass the training role to their jobs: it reads and writes no more than they may, and its group sends
    HTTPS to the endpoints' group and the S3 prefix list (the network says where they are)."""
    from emlops.components.network_access import EndpointEgress

    plan = run_components(lambda: TrainingCluster("ml", sagemaker(), context(
        input_prefix="curated/", output_prefix="experiments/",
        endpoint_egress=EndpointEgress("sg-0123456789abcdef1", "pl-6da54004"))))
    inputs, outputs = (f"arn:aws:s3:::{plan.get(f'ml-{p}-bucket').inputs['bucket']}" for p in ("input", "output"))
    assert statements(plan, "ml-training-read-ml-input-curated")[:2] == [
        allow(["s3:ListBucket"], [inputs], {"StringLike": {"s3:prefix": ["curated/*"]}}),
        allow(["s3:GetObject", "s3:GetObjectVersion"], [f"{inputs}/curated/*"])]
    assert statements(plan, "ml-training-write-ml-output-experiments")[0] == allow(
        ["s3:AbortMultipartUpload", "s3:PutObject"], [f"{outputs}/experiments/*"])
    assert plan.get("ml-sg").inputs["egress"] == [
        {"description": "HTTPS to the interface VPC endpoints", "fromPort": 443, "protocol": "tcp",
         "securityGroups": ["sg-0123456789abcdef1"], "toPort": 443},
        {"description": "HTTPS to S3 through the gateway endpoint", "fromPort": 443, "prefixListIds": ["pl-6da54004"],
         "protocol": "tcp", "toPort": 443},
        {"description": "Distributed training between the instances of a job", "fromPort": 0, "protocol": "-1",
         "self": True, "toPort": 0}]
