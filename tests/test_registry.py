"""ModelRegistry: package groups and their cross-account policies, the MLflow server of each kind, checks, settings."""

from __future__ import annotations

import functools
import json
from typing import Any, Callable

import pulumi
import pulumi_kubernetes as k8s
import pytest
from pydantic import ValidationError

from emlops.components.registry import ModelRegistry
from emlops.components.registry_args import (
    ENTITY_NAME_PATTERN, MLFLOW_IMAGE, ClusterAccess, MlflowSettings, RegistryContext, RegistrySettings,
)
from emlops.components.settings import Governance
from emlops.components.storage import SecureBucket, SecureBucketArgs
from emlops.catalog.requests import to_api_request, validate_request
from emlops.offline.plan import Plan, PlanResource
from emlops.program.config_models import RegistryConfig
from tests.conftest import ACCOUNT, REGION, run_components

STACK = "pulumi:pulumi:Stack"
REGISTRY = "emlops:index:ModelRegistry"
GROUP = "aws:sagemaker/modelPackageGroup:ModelPackageGroup"
GROUP_POLICY = "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy"
SERVER = "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
BUCKET_COMPONENT, ROLE_COMPONENT = "emlops:index:SecureBucket", "emlops:index:ServiceRole"
K8S_COMPONENT, WORKLOAD_ROLE = "emlops:index:MlflowOnKubernetes", "emlops:index:WorkloadRole"
K8S_PROVIDER = "urn:pulumi:test::emlops::pulumi:providers:kubernetes::k8s"
STAGING, PROD = "210987654321", "333344445555"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-4333-8444-555555555555"
ISSUER_HOST = f"oidc.eks.{REGION}.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"
OIDC_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER_HOST}"
DB_URI = "postgresql://mlflow:s3cr3t-pa55@mlflow-db.cluster-abc.eu-west-1.rds.amazonaws.com:5432/mlflow"
TAGS = {"team": "ml", "model-registry": "registry"}
VIA_S3 = {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
KMS_USE = ["kms:DescribeKey", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom",
           "kms:ReEncryptTo"]
NO_MLFLOW = {"mlflow": {"kind": "none"}}


def error_of(factory: Callable[[], Any]) -> str:
    with pytest.raises(ValueError) as caught:
        factory()
    assert not isinstance(caught.value, ValidationError)
    return str(caught.value)


def statements(resource: PlanResource, key: str = "policy") -> list[dict[str, Any]]:
    document = json.loads(resource.inputs[key])
    assert document["Version"] == "2012-10-17"
    return document["Statement"]


def settings(**section: Any) -> RegistrySettings:
    """Settings from a dict shaped like a stack file's `registry` section."""
    return RegistrySettings.model_validate(section)


def kubernetes_settings(**mlflow: Any) -> RegistrySettings:
    return settings(mlflow={"kind": "kubernetes", **mlflow})


def kubernetes_context(provider: pulumi.ProviderResource, **changes: Any) -> RegistryContext:
    # no Output is made here: the contexts of the check tests are built outside any Pulumi program
    return RegistryContext(**{
        "account_id": ACCOUNT, "model_groups": ["churn"],
        "cluster": ClusterAccess(provider, OIDC_ARN, f"https://{ISSUER_HOST}"),
        "backend_store_uri": DB_URI, "governance": Governance({"team": "ml"}), **changes,
    })


def unregistered_provider() -> k8s.Provider:
    """A provider object that was never registered: for checks that must fail before anything is."""
    return k8s.Provider.__new__(k8s.Provider)


def names_and_types(plan: Plan, urn: str) -> list[tuple[str, str]]:
    return [(r.type, r.name) for r in plan.children(urn)]


# -- settings (the stack file's `registry` section) ----------------------------------------------------

def test_group_names_follow_the_api_pattern_of_model_package_group_names():
    import botocore.session

    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for("EntityName")
    assert shape.metadata == {"min": 1, "max": 63, "pattern": ENTITY_NAME_PATTERN}
    operation = botocore.session.get_session().get_service_model("sagemaker").operation_model("CreateModelPackageGroup")
    assert operation.input_shape.members["ModelPackageGroupName"].name == "EntityName"


def test_settings_defaults():
    assert RegistrySettings().model_dump() == {
        "mlflow": {"kind": "sagemaker", "size": "Small", "maintenance_window": None, "version": None,
                   "namespace": "mlflow", "image": MLFLOW_IMAGE, "replicas": 2, "cpu_request": "500m",
                   "cpu_limit": "2", "memory": "2Gi"},
        "consumer_account_ids": [], "publisher_account_ids": [], "package_groups": [], "image_repositories": []}
    # the stack file's section is the component's settings plus where the stack's registry lives
    assert RegistryConfig().model_dump() == {**RegistrySettings().model_dump(), "shared_stack": None,
                                             "mlflow_tracking_uri": None}


WINDOW_PATTERN = "must look like 'Tue:03:30' (day, then UTC hour and minute)"


@pytest.mark.parametrize("section, loc, message", [
    ({"package_groups": ["churn_v2"]}, ("package_groups",),
     "Value error, 'churn_v2' is not a model package group name (1-63 letters, digits and '-', starting and ending "
     "with a letter or digit)"),
    ({"package_groups": "churn"}, ("package_groups",), "Input should be a valid list"),
    ({"package_groups": ["churn", "fraud", "churn"]}, ("package_groups",),
     "Value error, group names must be unique; repeated: churn"),
    ({"consumer_account_ids": ["21098765432"]}, ("consumer_account_ids",),
     "Value error, '21098765432' is not a 12-digit AWS account id (quote it: '123456789012')"),
    ({"consumer_account_ids": [210987654321]}, ("consumer_account_ids", 0), "Input should be a valid string"),
    ({"consumer_account_ids": STAGING}, ("consumer_account_ids",), "Input should be a valid list"),
    ({"consumer_account_ids": [STAGING, PROD, STAGING]}, ("consumer_account_ids",),
     f"Value error, account ids must be unique; repeated: {STAGING}"),
    ({"publisher_account_ids": ["1"]}, ("publisher_account_ids",),
     "Value error, '1' is not a 12-digit AWS account id (quote it: '123456789012')"),
    ({"image_repositories": ["Churn"]}, ("image_repositories",),
     "Value error, 'Churn' is not an ECR repository name (2-256 lowercase letters, digits and '.', '_', '-', '/' "
     "between them)"),
    ({"mlflow": {"kind": "ec2"}}, ("mlflow", "kind"), "Input should be 'sagemaker', 'kubernetes' or 'none'"),
    ({"mlflow": {"size": "XLarge"}}, ("mlflow", "size"), "Input should be 'Small', 'Medium' or 'Large'"),
    ({"mlflow": {"maintenance_window": "Tuesday:03:30"}}, ("mlflow", "maintenance_window"), WINDOW_PATTERN),
    ({"mlflow": {"maintenance_window": "Tue:24:00"}}, ("mlflow", "maintenance_window"), WINDOW_PATTERN),
    ({"mlflow": {"version": "latest"}}, ("mlflow", "version"),
     "must be an MLflow version like '3.0' or '2.16.2'"),
    ({"mlflow": {"version": "3.0." + "1" * 13}}, ("mlflow", "version"), "String should have at most 16 characters"),
    ({"mlflow": {"kind": "kubernetes", "version": "3.0"}}, ("mlflow",),
     "Value error, version only apply to kind 'sagemaker' (got kind 'kubernetes')"),
    ({"mlflow": {"kind": "kubernetes", "namespace": "ML_flow"}}, ("mlflow", "namespace"),
     "must be a Kubernetes namespace name (lowercase letters, digits, '-')"),
    ({"mlflow": {"kind": "kubernetes", "replicas": 0}}, ("mlflow", "replicas"),
     "Input should be greater than or equal to 1"),
    ({"mlflow": {"kind": "kubernetes", "cpu_limit": "two"}}, ("mlflow", "cpu_limit"), "must be a Kubernetes quantity like '2'"),
    ({"mlflow": {"kind": "kubernetes", "memory": "2GB"}}, ("mlflow", "memory"), "must be a Kubernetes quantity like '2Gi'"),
    ({"mlflow": {"sizes": "Small"}}, ("mlflow", "sizes"), "Extra inputs are not permitted"),
])
def test_settings_reject_with_the_failing_fields_message(section, loc, message):
    with pytest.raises(ValidationError) as caught:
        RegistrySettings.model_validate(section)
    assert [(error["loc"], error["msg"]) for error in caught.value.errors()] == [(loc, message)]


def test_the_stack_files_section_is_the_components_settings():
    config = RegistryConfig.model_validate({"mlflow": {"size": "Large", "maintenance_window": "Sat:04:00",
                                                       "version": "3.0"}, "consumer_account_ids": [STAGING, PROD]})
    assert isinstance(config, RegistrySettings) and isinstance(config.mlflow, MlflowSettings)
    assert (config.mlflow.size, config.mlflow.maintenance_window, config.consumer_account_ids) == (
        "Large", "Sat:04:00", [STAGING, PROD])


# -- context (what the platform supplies) ---------------------------------------------------------------

BAD_GROUP = ("model package group {!r} must be 1-63 ASCII letters, digits and '-', starting and ending with a letter "
             "or digit")


@pytest.mark.parametrize("section, changes, message", [
    *[({}, {"model_groups": [bad]}, BAD_GROUP.format(bad))
      for bad in ("churn_v2", "-churn", "churn-", "a" * 64, "", "modèle")],
    ({}, {"account_id": "12345"}, "account_id '12345' must be a 12-digit AWS account id"),
    ({"consumer_account_ids": [STAGING, ACCOUNT]}, {},
     f"consumer_account_ids: {ACCOUNT!r} is the registry's own account; list only the accounts that consume it"),
    ({"publisher_account_ids": [ACCOUNT]}, {},
     f"publisher_account_ids: {ACCOUNT!r} is the registry's own account; list only the accounts that publish into "
     "it"),
    ({}, {"descriptions": {"fraud": "x"}},
     "announced_groups and descriptions name groups the registry does not hold: fraud"),
    ({"package_groups": ["pricing"]}, {"announced_groups": ["pricing", "fraud"], "descriptions": {"aaa": "x"}},
     "announced_groups and descriptions name groups the registry does not hold: aaa, fraud"),
])
def test_context_is_checked_before_anything_is_created(section, changes, message):
    context = RegistryContext(**{"account_id": ACCOUNT, "model_groups": ["churn"], **changes})
    assert error_of(lambda: context.check(settings(**section))) == message
    # outside a Pulumi program registering the component would fail: the error comes before any registration
    assert error_of(lambda: ModelRegistry("registry", settings(**section), context)) == message


KUBERNETES_NEEDS = ("mlflow kind 'kubernetes' needs the EKS cluster (cluster) and a secret backend store URI "
                    "(backend_store_uri)")


@pytest.mark.parametrize("changes", [{"cluster": None}, {"backend_store_uri": None},
                                     {"cluster": None, "backend_store_uri": None}])
def test_kubernetes_kind_needs_the_cluster_and_a_backend_store(changes):
    context = kubernetes_context(unregistered_provider(), **changes)
    assert error_of(lambda: ModelRegistry("registry", kubernetes_settings(), context)) == KUBERNETES_NEEDS


@pytest.mark.parametrize("name, kind, message", [
    ("ml_registry", "sagemaker", "registry name 'ml_registry' must be at most 64 ASCII letters, digits and '-', "
                                 "starting and ending with a letter or digit"),
    ("Registry", "kubernetes", "registry name 'Registry' must be at most 50 lowercase letters, digits and '-', "
                               "starting with a letter (it names Kubernetes objects)"),
])
def test_registry_name_is_checked_before_anything_is_created(name, kind, message):
    if kind == "sagemaker":
        registry_settings, context = settings(), RegistryContext(account_id=ACCOUNT, model_groups=["churn"])
    else:
        registry_settings, context = kubernetes_settings(), kubernetes_context(unregistered_provider())
    # outside a Pulumi program registering the component would fail: the error comes before any registration
    assert error_of(lambda: ModelRegistry(name, registry_settings, context)) == message


# -- package groups and cross-account promotion ---------------------------------------------------------

def groups_plan(consumers: list[str], protect: bool = False) -> Plan:
    return run_components(lambda: ModelRegistry(
        "registry", settings(**NO_MLFLOW, consumer_account_ids=consumers),
        RegistryContext(account_id=ACCOUNT, model_groups=["churn", "Fraud-Detector"],
                        descriptions={"churn": "Customer churn classifier"},
                        governance=Governance({"team": "ml"}, protect=protect))))


def consumer_policy(roots: list[str], group: str) -> list[dict[str, Any]]:
    principal = {"AWS": roots}
    return [
        {"Sid": "ConsumerAccountsDescribeGroup", "Effect": "Allow", "Principal": principal,
         "Action": ["sagemaker:DescribeModelPackageGroup"],
         "Resource": [f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/{group}"]},
        {"Sid": "ConsumerAccountsDeployVersions", "Effect": "Allow", "Principal": principal,
         # deploying, never approving (sagemaker:UpdateModelPackage stays with the registry's account)
         "Action": ["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages", "sagemaker:CreateModel"],
         "Resource": [f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{group}/*"]},
    ]


def test_each_model_gets_a_group_named_exactly_like_the_model():
    plan = groups_plan([])
    registry = plan.get("registry", REGISTRY)
    assert names_and_types(plan, registry.urn) == [(GROUP, "registry-churn-group"),
                                                   (GROUP, "registry-Fraud-Detector-group")]
    assert plan.get("registry-churn-group").inputs == {
        "modelPackageGroupName": "churn", "modelPackageGroupDescription": "Customer churn classifier", "tags": TAGS}
    assert plan.get("registry-Fraud-Detector-group").inputs == {
        "modelPackageGroupName": "Fraud-Detector",
        "modelPackageGroupDescription": "Versions of the Fraud-Detector model",
        "tags": TAGS}
    assert plan.by_type(GROUP_POLICY) == []


def test_the_models_groups_then_the_settings_package_groups_are_held_each_once():
    plan = run_components(lambda: ModelRegistry(
        "registry", settings(**NO_MLFLOW, package_groups=["fraud", "pricing"]),
        RegistryContext(account_id=ACCOUNT, model_groups=["churn", "fraud"])))
    assert [g.inputs["modelPackageGroupName"] for g in plan.by_type(GROUP)] == ["churn", "fraud", "pricing"]


@pytest.mark.parametrize("consumers", [[STAGING], [STAGING, PROD], [PROD, STAGING]])
def test_group_policies_name_exactly_the_consumer_accounts(consumers):
    plan = groups_plan(consumers)
    roots = [f"arn:aws:iam::{account}:root" for account in consumers]
    for model, group in (("churn", "churn"), ("Fraud-Detector", "fraud-detector")):
        policy = plan.get(f"registry-{model}-group-policy", GROUP_POLICY)
        assert policy.parent == plan.get("registry", REGISTRY).urn
        assert policy.inputs["modelPackageGroupName"] == model
        assert set(policy.inputs) == {"modelPackageGroupName", "resourcePolicy"}
        assert statements(policy, "resourcePolicy") == consumer_policy(roots, group)
    assert len(plan.by_type(GROUP_POLICY)) == 2


@pytest.mark.parametrize("protect", [False, True])
def test_groups_are_protected_and_retained_only_when_asked(protect):
    plan = groups_plan([STAGING], protect=protect)
    for group in plan.by_type(GROUP):
        assert (group.protect, group.retain_on_delete) == (protect, protect)
    for policy in plan.by_type(GROUP_POLICY):
        assert (policy.protect, policy.retain_on_delete) == (False, False)


def test_groups_match_the_create_api():
    for group in groups_plan([STAGING]).by_type(GROUP):
        assert validate_request(to_api_request(GROUP, group.inputs)) == []


def test_no_mlflow_means_no_bucket_and_no_tracking_uri():
    plan = groups_plan([])
    assert plan.type_counts() == {STACK: 1, REGISTRY: 1, GROUP: 2}


# -- MLflow on SageMaker ------------------------------------------------------------------------------

@functools.cache
def sagemaker_plan(protect: bool = False) -> Plan:
    def program() -> None:
        registry = ModelRegistry(
            "registry", settings(mlflow={"size": "Medium", "maintenance_window": "Sun:02:00", "version": "3.0"}),
            RegistryContext(account_id=ACCOUNT, model_groups=["churn"], kms_key_arn=KEY_ARN,
                            governance=Governance({"team": "ml"}, protect=protect)))
        pulumi.export("trackingUri", registry.tracking_uri)
        pulumi.export("trackingServerUrl", registry.tracking_server_url)
        pulumi.export("artifactUri", registry.artifact_uri)
        pulumi.export("groupArns", registry.package_group_arns)
        pulumi.export("groupNames", registry.package_group_names)

    return run_components(program)


def test_sagemaker_kind_children():
    plan = sagemaker_plan()
    assert names_and_types(plan, plan.get("registry", REGISTRY).urn) == [
        (GROUP, "registry-churn-group"), (BUCKET_COMPONENT, "registry-artifacts"), (ROLE_COMPONENT, "registry-mlflow"),
        (SERVER, "registry-tracking-server")]
    role = plan.get("registry-mlflow", ROLE_COMPONENT)
    assert names_and_types(plan, role.urn) == [
        ("aws:iam/role:Role", "registry-mlflow-role"),
        (ROLE_POLICY, "registry-mlflow-read-write-registry-artifacts-mlflow"),
        (ROLE_POLICY, "registry-mlflow-model-registration")]
    # the given key encrypts the bucket: no key of its own
    assert "emlops:index:KmsKey" not in plan.type_counts()


def test_tracking_server_inputs_and_outputs():
    plan = sagemaker_plan()
    server = plan.get("registry-tracking-server", SERVER)
    bucket = plan.get("registry-artifacts-bucket").inputs["bucket"]
    role_name = plan.get("registry-mlflow-role").inputs["name"]
    assert server.inputs == {
        "trackingServerName": "registry-mlflow",
        "artifactStoreUri": f"s3://{bucket}/mlflow/",
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/{role_name}",
        "trackingServerSize": "Medium",
        "automaticModelRegistration": True,
        "weeklyMaintenanceWindowStart": "Sun:02:00",
        "mlflowVersion": "3.0",
        "tags": TAGS,
    }
    assert set(server.dependencies) >= {plan.get("registry-mlflow-read-write-registry-artifacts-mlflow").urn,
                                        plan.get("registry-mlflow-model-registration").urn}
    server_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:mlflow-tracking-server/registry-mlflow"
    assert plan.outputs["trackingUri"] == server_arn
    assert plan.outputs["trackingServerUrl"].endswith(f".{REGION}.experiments.sagemaker.aws")
    assert plan.outputs["artifactUri"] == f"s3://{bucket}/mlflow/"
    assert plan.outputs["groupNames"] == {"churn": "churn"}
    assert plan.outputs["groupArns"] == {"churn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/churn"}
    assert validate_request(to_api_request(SERVER, server.inputs)) == []


def test_tracking_server_role_reaches_only_the_artifact_prefix_and_this_registrys_groups():
    plan = sagemaker_plan()
    trust = statements(plan.get("registry-mlflow-role"), "assumeRolePolicy")
    assert trust == [{"Effect": "Allow", "Principal": {"Service": ["sagemaker.amazonaws.com"]},
                      "Action": ["sts:AssumeRole"], "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]
    bucket_arn = f"arn:aws:s3:::{plan.get('registry-artifacts-bucket').inputs['bucket']}"
    assert statements(plan.get("registry-mlflow-read-write-registry-artifacts-mlflow")) == [
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [bucket_arn],
         "Condition": {"StringLike": {"s3:prefix": ["mlflow/*"]}}},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"], "Resource": [f"{bucket_arn}/mlflow/*"]},
        {"Effect": "Allow", "Action": ["s3:AbortMultipartUpload", "s3:PutObject"],
         "Resource": [f"{bucket_arn}/mlflow/*"]},
        {"Effect": "Allow", "Action": KMS_USE, "Resource": [KEY_ARN], "Condition": {"StringEquals": VIA_S3}},
    ]
    groups = [f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/churn",
              f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/churn/*"]
    # MLflow registers versions for approval and updates them, but never approves one
    assert statements(plan.get("registry-mlflow-model-registration")) == [
        {"Sid": "RegisterForApprovalOnly", "Effect": "Allow",
         "Action": ["sagemaker:AddTags", "sagemaker:CreateModelPackageGroup", "sagemaker:CreateModelPackage",
                    "sagemaker:DescribeModelPackageGroup"], "Resource": groups,
         "Condition": {"StringEqualsIfExists": {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}}},
        {"Sid": "UpdateWithoutApproving", "Effect": "Allow", "Action": ["sagemaker:UpdateModelPackage"],
         "Resource": groups, "Condition": {"Null": {"sagemaker:ModelApprovalStatus": "true"}}},
    ]


def test_the_artifact_bucket_is_secure_and_uses_the_given_key():
    plan = sagemaker_plan()
    encryption = plan.get("registry-artifacts-encryption").inputs["rules"]
    assert encryption[0]["applyServerSideEncryptionByDefault"] == {"kmsMasterKeyId": KEY_ARN, "sseAlgorithm": "aws:kms"}
    assert plan.get("registry-artifacts-bucket").inputs["tags"] == TAGS


@pytest.mark.parametrize("protect", [False, True])
def test_stateful_children_are_protected_only_when_asked(protect):
    plan = sagemaker_plan(protect)
    stateful = {"registry-churn-group", "registry-artifacts-bucket", "registry-tracking-server"}
    for resource in plan.resources:
        expected = protect and resource.name in stateful
        assert (resource.name, resource.protect, resource.retain_on_delete) == (resource.name, expected, expected)


def test_a_given_bucket_is_used_and_no_bucket_is_created():
    def program() -> None:
        bucket = SecureBucket("shared", SecureBucketArgs(kms_key_arn=KEY_ARN))
        ModelRegistry("registry", settings(), RegistryContext(account_id=ACCOUNT, artifact_bucket=bucket))

    plan = run_components(program)
    assert [r.name for r in plan.by_type(BUCKET_COMPONENT)] == ["shared"]
    assert plan.get("registry-tracking-server").inputs["artifactStoreUri"] == (
        f"s3://{plan.get('shared-bucket').inputs['bucket']}/mlflow/")
    # no models: nothing to register into, so no registration policy
    assert [r.name for r in plan.by_type(ROLE_POLICY)] == ["registry-mlflow-read-write-shared-mlflow"]


# -- MLflow on Kubernetes -----------------------------------------------------------------------------

@functools.cache
def kubernetes_plan() -> Plan:
    def program() -> None:
        # the caller marks the URI secret (the component also does, see below)
        registry = ModelRegistry("registry", kubernetes_settings(), kubernetes_context(
            k8s.Provider("k8s", kubeconfig="{}"), backend_store_uri=pulumi.Output.secret(DB_URI)))
        pulumi.export("trackingUri", registry.tracking_uri)

    return run_components(program)


K8S_CHILDREN = [
    (WORKLOAD_ROLE, "registry-mlflow-irsa"),
    ("kubernetes:core/v1:Namespace", "registry-mlflow-namespace"),
    ("kubernetes:core/v1:ServiceAccount", "registry-mlflow-service-account"),
    ("kubernetes:core/v1:Secret", "registry-mlflow-backend-store"),
    ("kubernetes:apps/v1:Deployment", "registry-mlflow-deployment"),
    ("kubernetes:core/v1:Service", "registry-mlflow-service"),
]
LABELS = {"app.kubernetes.io/name": "mlflow", "app.kubernetes.io/instance": "registry-mlflow",
          "app.kubernetes.io/managed-by": "pulumi"}
SELECTOR = {"app.kubernetes.io/name": "mlflow", "app.kubernetes.io/instance": "registry-mlflow"}
META = {"name": "registry-mlflow", "namespace": "mlflow", "labels": LABELS}


def test_kubernetes_kind_children_use_the_cluster_provider():
    plan = kubernetes_plan()
    registry = plan.get("registry", REGISTRY)
    assert names_and_types(plan, registry.urn) == [
        (GROUP, "registry-churn-group"), (BUCKET_COMPONENT, "registry-artifacts"), (K8S_COMPONENT, "registry-mlflow")]
    assert names_and_types(plan, plan.get("registry-mlflow", K8S_COMPONENT).urn) == K8S_CHILDREN
    for resource in plan.resources:
        expected = K8S_PROVIDER if resource.type.startswith("kubernetes:") else None
        assert (resource.name, resource.provider) == (resource.name, expected)
    assert SERVER not in plan.type_counts()
    assert plan.outputs["trackingUri"] == "http://registry-mlflow.mlflow.svc.cluster.local:5000"


def test_namespace_enforces_the_restricted_pod_security_standard():
    assert kubernetes_plan().get("registry-mlflow-namespace").inputs == {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mlflow", "labels": {
            **LABELS, "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest"}}}


def test_service_account_is_annotated_with_an_irsa_role_only_it_can_assume():
    plan = kubernetes_plan()
    role = plan.get("registry-mlflow-irsa-role")
    assert plan.get("registry-mlflow-service-account").inputs == {
        "apiVersion": "v1", "kind": "ServiceAccount", "automountServiceAccountToken": False,
        "metadata": {**META, "annotations": {
            "eks.amazonaws.com/role-arn": f"arn:aws:iam::{ACCOUNT}:role/{role.inputs['name']}"}}}
    assert statements(role, "assumeRolePolicy") == [{
        "Effect": "Allow", "Principal": {"Federated": [OIDC_ARN]}, "Action": ["sts:AssumeRoleWithWebIdentity"],
        "Condition": {"StringEquals": {f"{ISSUER_HOST}:sub": "system:serviceaccount:mlflow:registry-mlflow",
                                       f"{ISSUER_HOST}:aud": "sts.amazonaws.com"}}}]
    assert role.inputs["tags"] == TAGS
    policies = [r.name for r in plan.children(plan.get("registry-mlflow-irsa", WORKLOAD_ROLE).urn)]
    assert policies == ["registry-mlflow-irsa-role", "registry-mlflow-irsa-read-write-registry-artifacts-mlflow"]
    kms = statements(plan.get("registry-mlflow-irsa-read-write-registry-artifacts-mlflow"))[-1]
    assert kms["Action"] == KMS_USE and kms["Condition"] == {"StringEquals": VIA_S3}
    assert kms["Resource"][0].startswith(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/")


def test_backend_store_uri_is_a_secret_everywhere():
    plan = kubernetes_plan()
    assert plan.get("registry-mlflow-backend-store").inputs == {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque", "stringData": "[secret]",
        "metadata": {**META, "name": "registry-mlflow-backend-store"}}
    text = plan.dumps()
    assert DB_URI not in text and "s3cr3t-pa55" not in text


def test_a_plain_string_backend_store_uri_is_made_secret():
    plan = run_components(lambda: ModelRegistry("registry", kubernetes_settings(), kubernetes_context(
        k8s.Provider("k8s", kubeconfig="{}"), backend_store_uri=DB_URI)))
    assert plan.get("registry-mlflow-backend-store").inputs["stringData"] == "[secret]"
    assert "s3cr3t-pa55" not in plan.dumps()


def test_deployment_runs_a_locked_down_mlflow_server():
    plan = kubernetes_plan()
    deployment = plan.get("registry-mlflow-deployment").inputs
    bucket = plan.get("registry-artifacts-bucket").inputs["bucket"]
    hosts = [h for n in ("registry-mlflow.mlflow.svc.cluster.local", "registry-mlflow.mlflow.svc",
                         "registry-mlflow.mlflow", "registry-mlflow") for h in (n, f"{n}:5000")]
    health = {"httpGet": {"path": "/health", "port": "http"}, "timeoutSeconds": 5}
    assert deployment["metadata"] == META
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["selector"] == {"matchLabels": SELECTOR}
    assert deployment["spec"]["template"]["metadata"] == {"labels": LABELS}
    assert deployment["spec"]["template"]["spec"] == {
        "serviceAccountName": "registry-mlflow",
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "mlflow",
            "image": MLFLOW_IMAGE,
            "command": ["mlflow", "server", "--backend-store-uri", "$(BACKEND_STORE_URI)",
                        "--default-artifact-root", f"s3://{bucket}/mlflow/", "--host", "0.0.0.0", "--port", "5000",
                        "--allowed-hosts", ",".join(hosts)],
            "env": [
                {"name": "BACKEND_STORE_URI", "valueFrom": {"secretKeyRef": {
                    "name": "registry-mlflow-backend-store", "key": "backend-store-uri"}}},
                {"name": "AWS_DEFAULT_REGION", "value": REGION},
                {"name": "HOME", "value": "/tmp"},
            ],
            "workingDir": "/tmp",
            "ports": [{"name": "http", "containerPort": 5000, "protocol": "TCP"}],
            "resources": {"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
            "startupProbe": {**health, "periodSeconds": 10, "failureThreshold": 30},
            "readinessProbe": {**health, "periodSeconds": 10, "failureThreshold": 3},
            "livenessProbe": {**health, "periodSeconds": 20, "failureThreshold": 3},
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]},
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        }],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
    }
    depends = set(plan.get("registry-mlflow-deployment").dependencies)
    assert plan.get("registry-mlflow-irsa-read-write-registry-artifacts-mlflow").urn in depends


def test_deployment_and_service_pass_the_kubernetes_schema():
    import kubernetes_validate

    plan = kubernetes_plan()
    for name in ("registry-mlflow-deployment", "registry-mlflow-service", "registry-mlflow-service-account",
                 "registry-mlflow-namespace"):
        kubernetes_validate.validate(plan.get(name).inputs, "1.33", strict=True)


def test_service_exposes_port_5000_inside_the_cluster_only():
    assert kubernetes_plan().get("registry-mlflow-service").inputs == {
        "apiVersion": "v1", "kind": "Service", "metadata": META,
        "spec": {"type": "ClusterIP", "selector": SELECTOR,
                 "ports": [{"name": "http", "port": 5000, "targetPort": "http", "protocol": "TCP"}]}}


def test_a_custom_namespace_flows_into_names_trust_and_uri():
    def program() -> None:
        provider = k8s.Provider("k8s", kubeconfig="{}")
        registry = ModelRegistry("tracking", kubernetes_settings(namespace="ml-platform"), kubernetes_context(provider))
        pulumi.export("trackingUri", registry.tracking_uri)

    plan = run_components(program)
    assert plan.outputs["trackingUri"] == "http://tracking-mlflow.ml-platform.svc.cluster.local:5000"
    condition = statements(plan.get("tracking-mlflow-irsa-role"), "assumeRolePolicy")[0]["Condition"]
    assert condition["StringEquals"][f"{ISSUER_HOST}:sub"] == "system:serviceaccount:ml-platform:tracking-mlflow"


def test_the_registrys_aws_provider_still_reaches_the_aws_children_of_the_kubernetes_server():
    import pulumi_aws as aws

    def program() -> None:
        provider = aws.Provider("aws-registry", region=REGION, allowed_account_ids=[ACCOUNT])
        ModelRegistry("registry", kubernetes_settings(), kubernetes_context(k8s.Provider("k8s", kubeconfig="{}")),
                      opts=pulumi.ResourceOptions(providers=[provider]))

    plan = run_components(program)
    aws_provider = "urn:pulumi:test::emlops::pulumi:providers:aws::aws-registry"
    for resource in plan.resources:
        if resource.custom and not resource.type.startswith("pulumi:providers:"):
            expected = K8S_PROVIDER if resource.type.startswith("kubernetes:") else aws_provider
            assert (resource.name, resource.provider) == (resource.name, expected)
