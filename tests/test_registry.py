"""ModelRegistry: package groups and their cross-account policies, the MLflow server of each kind, checks, config."""

from __future__ import annotations

import functools
import json
from typing import Any, Callable

import pulumi
import pulumi_kubernetes as k8s
import pytest
from pydantic import ValidationError

from emlops.components.registry import ENTITY_NAME_PATTERN, MLFLOW_IMAGE, ModelRegistry, ModelRegistryArgs
from emlops.components.storage import SecureBucket, SecureBucketArgs
from emlops.catalog.requests import to_api_request, validate_request
from emlops.offline.plan import Plan, PlanResource
from emlops.program.config_registry import RegistryFields, RegistryMlflowConfig
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


def error_of(factory: Callable[[], Any]) -> str:
    with pytest.raises(ValueError) as caught:
        factory()
    return str(caught.value)


def statements(resource: PlanResource, key: str = "policy") -> list[dict[str, Any]]:
    document = json.loads(resource.inputs[key])
    assert document["Version"] == "2012-10-17"
    return document["Statement"]


def kubernetes_args(provider: pulumi.ProviderResource, **changes: Any) -> ModelRegistryArgs:
    # no Output is made here: the args of the check tests are built outside any Pulumi program
    return ModelRegistryArgs(**{
        "model_names": ["churn"], "mlflow_kind": "kubernetes", "kubernetes_provider": provider,
        "oidc_provider_arn": OIDC_ARN, "oidc_issuer_url": f"https://{ISSUER_HOST}",
        "backend_store_uri": DB_URI, "tags": {"team": "ml"}, **changes,
    })


def unregistered_provider() -> k8s.Provider:
    """A provider object that was never registered: for checks that must fail before anything is."""
    return k8s.Provider.__new__(k8s.Provider)


def names_and_types(plan: Plan, urn: str) -> list[tuple[str, str]]:
    return [(r.type, r.name) for r in plan.children(urn)]


# -- arguments --------------------------------------------------------------------------------------

BAD_MODEL = ("model name {!r} must be 1-63 ASCII letters, digits and '-', starting and ending with a letter or "
             "digit (a SageMaker model package group name)")


def test_model_names_follow_the_api_pattern_of_model_package_group_names():
    import botocore.session

    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for("EntityName")
    assert shape.metadata == {"min": 1, "max": 63, "pattern": ENTITY_NAME_PATTERN}
    operation = botocore.session.get_session().get_service_model("sagemaker").operation_model("CreateModelPackageGroup")
    assert operation.input_shape.members["ModelPackageGroupName"].name == "EntityName"


@pytest.mark.parametrize("changes, message", [
    *[({"model_names": [bad]}, BAD_MODEL.format(bad))
      for bad in ("churn_v2", "-churn", "churn-", "a" * 64, "", "modèle")],
    ({"model_names": "churn"}, "model_names must be a list, e.g. ['churn']"),
    ({"model_names": ["churn", "fraud", "churn"]}, "model names must be unique; repeated: churn"),
    ({"model_descriptions": {"fraud": "x"}}, "model_descriptions names models not in model_names: fraud"),
    ({"consumer_account_ids": ["21098765432"]},
     "consumer account id '21098765432' must be a 12-digit AWS account id (quoted)"),
    ({"consumer_account_ids": [210987654321]},
     "consumer account id 210987654321 must be a 12-digit AWS account id (quoted)"),
    ({"consumer_account_ids": STAGING}, f"consumer_account_ids must be a list, e.g. [{STAGING!r}]"),
    ({"consumer_account_ids": [STAGING]},
     "consumer_account_ids and publisher_account_ids need registry_account_id (the account the registry deploys "
     "into), which may not be listed"),
    ({"publisher_account_ids": [PROD]},
     "consumer_account_ids and publisher_account_ids need registry_account_id (the account the registry deploys "
     "into), which may not be listed"),
    ({"publisher_account_ids": ["1"], "registry_account_id": ACCOUNT},
     "publisher account id '1' must be a 12-digit AWS account id (quoted)"),
    ({"publisher_account_ids": [ACCOUNT], "registry_account_id": ACCOUNT},
     f"publisher account {ACCOUNT} is the registry's own account; list only the accounts models are registered "
     "from"),
    ({"image_repositories": ["Churn"]},
     "image repository 'Churn' must be an ECR repository name (lowercase letters, digits and '.', '_', '-', '/' "
     "between them)"),
    ({"consumer_account_ids": [STAGING, PROD, STAGING]}, f"consumer account ids must be unique; repeated: {STAGING}"),
    ({"consumer_account_ids": [STAGING, ACCOUNT], "registry_account_id": ACCOUNT},
     f"consumer account {ACCOUNT} is the registry's own account; list only the accounts models are promoted to"),
    ({"registry_account_id": "12345"}, "registry_account_id '12345' must be a 12-digit AWS account id"),
    ({"mlflow_kind": "ec2"}, "mlflow_kind 'ec2' must be sagemaker, kubernetes or none"),
    ({"tracking_server_size": "XLarge"}, "tracking_server_size 'XLarge' must be Small, Medium or Large"),
    ({"weekly_maintenance_window_start": "Tuesday:03:30"},
     "weekly_maintenance_window_start 'Tuesday:03:30' must look like 'Tue:03:30' (UTC)"),
    ({"weekly_maintenance_window_start": "Tue:24:00"},
     "weekly_maintenance_window_start 'Tue:24:00' must look like 'Tue:03:30' (UTC)"),
    ({"mlflow_version": "latest"}, "mlflow_version 'latest' must look like '3.0' or '2.16.2'"),
    ({"mlflow_kind": "kubernetes"},
     "mlflow_kind 'kubernetes' needs kubernetes_provider, oidc_provider_arn, oidc_issuer_url, backend_store_uri "
     "(the EKS cluster's provider and OIDC provider, and a secret backend store URI)"),
    ({"mlflow_kind": "kubernetes", "kubernetes_provider": object(), "oidc_provider_arn": OIDC_ARN,
      "backend_store_uri": "x"},
     "mlflow_kind 'kubernetes' needs oidc_issuer_url (the EKS cluster's provider and OIDC provider, and a secret "
     "backend store URI)"),
    ({"mlflow_kind": "kubernetes", "kubernetes_provider": "k8s", "oidc_provider_arn": OIDC_ARN,
      "oidc_issuer_url": "https://x", "backend_store_uri": "x"},
     "kubernetes_provider must be a pulumi_kubernetes.Provider"),
])
def test_registry_args_reject_with_a_message(changes, message):
    assert error_of(lambda: ModelRegistryArgs(**{"model_names": ["churn"], **changes})) == message


@pytest.mark.parametrize("changes, message", [
    ({"namespace": "ML_flow"}, "namespace 'ML_flow' must be at most 63 lowercase letters, digits and '-', "
                               "starting and ending with a letter or digit"),
    ({"replicas": 0}, "replicas (0) must be 1-10"),
    ({"cpu_limit": "two"}, "cpu_limit 'two' must be a Kubernetes quantity like '500m' or '2Gi'"),
    ({"memory": "2GB"}, "memory '2GB' must be a Kubernetes quantity like '500m' or '2Gi'"),
])
def test_kubernetes_args_reject_with_a_message(changes, message):
    assert error_of(lambda: kubernetes_args(unregistered_provider(), **changes)) == message


@pytest.mark.parametrize("name, kind, message", [
    ("ml_registry", "sagemaker", "registry name 'ml_registry' must be at most 64 ASCII letters, digits and '-', "
                                 "starting and ending with a letter or digit"),
    ("Registry", "kubernetes", "registry name 'Registry' must be at most 50 lowercase letters, digits and '-', "
                               "starting with a letter (it names Kubernetes objects)"),
])
def test_registry_name_is_checked_before_anything_is_created(name, kind, message):
    args = ModelRegistryArgs(model_names=["churn"]) if kind == "sagemaker" else kubernetes_args(unregistered_provider())
    # outside a Pulumi program registering the component would fail: the error comes before any registration
    assert error_of(lambda: ModelRegistry(name, args)) == message


# -- package groups and cross-account promotion ---------------------------------------------------------

def groups_plan(consumers: list[str], protect: bool = False) -> Plan:
    return run_components(lambda: ModelRegistry("registry", ModelRegistryArgs(
        model_names=["churn", "Fraud-Detector"], model_descriptions={"churn": "Customer churn classifier"},
        consumer_account_ids=consumers, registry_account_id=ACCOUNT if consumers else None, mlflow_kind="none",
        protect=protect, tags={"team": "ml"})))


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
        registry = ModelRegistry("registry", ModelRegistryArgs(
            model_names=["churn"], tracking_server_size="Medium", weekly_maintenance_window_start="Sun:02:00",
            mlflow_version="3.0", kms_key_arn=KEY_ARN, protect=protect, tags={"team": "ml"}))
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
    assert statements(plan.get("registry-mlflow-model-registration")) == [{
        "Effect": "Allow",
        "Action": ["sagemaker:AddTags", "sagemaker:CreateModelPackageGroup", "sagemaker:CreateModelPackage",
                   "sagemaker:DescribeModelPackageGroup", "sagemaker:UpdateModelPackage"],
        "Resource": [f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/churn",
                     f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/churn/*"],
    }]


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
        ModelRegistry("registry", ModelRegistryArgs(artifact_bucket=bucket))

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
        registry = ModelRegistry("registry", kubernetes_args(k8s.Provider("k8s", kubeconfig="{}"),
                                                             backend_store_uri=pulumi.Output.secret(DB_URI)))
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
    plan = run_components(lambda: ModelRegistry("registry", kubernetes_args(
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
        registry = ModelRegistry("tracking", kubernetes_args(provider, namespace="ml-platform"))
        pulumi.export("trackingUri", registry.tracking_uri)

    plan = run_components(program)
    assert plan.outputs["trackingUri"] == "http://tracking-mlflow.ml-platform.svc.cluster.local:5000"
    condition = statements(plan.get("tracking-mlflow-irsa-role"), "assumeRolePolicy")[0]["Condition"]
    assert condition["StringEquals"][f"{ISSUER_HOST}:sub"] == "system:serviceaccount:ml-platform:tracking-mlflow"


# -- config -------------------------------------------------------------------------------------------

def test_config_defaults():
    assert RegistryFields().model_dump() == {
        "mlflow": {"kind": "sagemaker", "size": "Small", "maintenance_window": None, "version": None,
                   "namespace": "mlflow"},
        "consumer_account_ids": [], "publisher_account_ids": [], "package_groups": [], "image_repositories": [],
        "shared_stack": None}


def config_error(factory: Callable[[], Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        factory()
    errors = caught.value.errors()
    assert len(errors) == 1
    return errors[0]["msg"]


@pytest.mark.parametrize("data, message", [
    ({"consumer_account_ids": ["12345"]},
     "Value error, '12345' is not a 12-digit AWS account id (quote it: '123456789012')"),
    ({"consumer_account_ids": [STAGING, STAGING]}, f"Value error, account ids must be unique; repeated: {STAGING}"),
    ({"mlflow": {"kind": "kubernetes", "version": "3.0"}},
     "Value error, version only apply to kind 'sagemaker' (got kind 'kubernetes')"),
    ({"mlflow": {"maintenance_window": "Mon 03:00"}}, "String should match pattern "
     "'^(Mon|Tue|Wed|Thu|Fri|Sat|Sun):([01]\\d|2[0-3]):([0-5]\\d)$'"),
    ({"mlflow": {"kind": "ecs"}}, "Input should be 'sagemaker', 'kubernetes' or 'none'"),
    ({"mlflow": {"size": "small"}}, "Input should be 'Small', 'Medium' or 'Large'"),
    ({"mlflow": {"namespace": "ML"}}, "String should match pattern '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'"),
    ({"mlflow": {"sizes": "Small"}}, "Extra inputs are not permitted"),
])
def test_config_rejects_with_a_message(data, message):
    assert config_error(lambda: RegistryFields.model_validate(data)) == message


def test_config_maps_onto_the_component_args():
    config = RegistryFields.model_validate({"mlflow": {"size": "Large", "maintenance_window": "Sat:04:00",
                                                       "version": "3.0"}, "consumer_account_ids": [STAGING, PROD]})
    args = ModelRegistryArgs(model_names=["churn"], consumer_account_ids=config.consumer_account_ids,
                             registry_account_id=ACCOUNT,
                             mlflow_kind=config.mlflow.kind, tracking_server_size=config.mlflow.size,
                             weekly_maintenance_window_start=config.mlflow.maintenance_window,
                             mlflow_version=config.mlflow.version, namespace=config.mlflow.namespace)
    assert (args.tracking_server_size, args.weekly_maintenance_window_start, args.consumer_account_ids) == (
        "Large", "Sat:04:00", [STAGING, PROD])
    assert isinstance(config.mlflow, RegistryMlflowConfig)


def test_the_registrys_aws_provider_still_reaches_the_aws_children_of_the_kubernetes_server():
    import pulumi_aws as aws

    def program() -> None:
        provider = aws.Provider("aws-registry", region=REGION, allowed_account_ids=[ACCOUNT])
        ModelRegistry("registry", kubernetes_args(k8s.Provider("k8s", kubeconfig="{}")),
                      opts=pulumi.ResourceOptions(providers=[provider]))

    plan = run_components(program)
    aws_provider = "urn:pulumi:test::emlops::pulumi:providers:aws::aws-registry"
    for resource in plan.resources:
        if resource.custom and not resource.type.startswith("pulumi:providers:"):
            expected = K8S_PROVIDER if resource.type.startswith("kubernetes:") else aws_provider
            assert (resource.name, resource.provider) == (resource.name, expected)
