"""MLflow self-hosted on the EKS cluster: namespace, IRSA role, backend-store Secret, Deployment and Service.

The backend store URI (a database URI with its password) reaches the pod only through a Kubernetes
Secret and an environment variable read from it: the Deployment, the plan and the Pulumi state show
"[secret]", never the URI. The server reaches S3 and KMS through IAM roles for service accounts
(IRSA): a role only this namespace's service account can assume, limited to the artifact prefix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from emlops.components.aws_context import aws_context
from emlops.components.iam import ServiceRole, Statement, policy_document
from emlops.components.options import child, merge_tags, type_token
from emlops.components.outputs import concat
from emlops.components.registry_args import ARTIFACT_PREFIX, ClusterAccess, MlflowSettings
from emlops.components.settings import Governance
from emlops.components.storage import SecureBucket


PORT = 5000
SECRET_KEY = "backend-store-uri"
RUN_AS = 1000


class WorkloadRole(ServiceRole):
    """An IAM role one Kubernetes service account assumes through the cluster's OIDC provider (IRSA).

    It is a `ServiceRole` in all but its trust policy, so the usual grants (`bucket.grant_read_write`)
    add its permissions.
    """

    def __init__(self, name: str, *, oidc_provider_arn: pulumi.Input[str], oidc_issuer_url: pulumi.Input[str],
                 namespace: str, service_account: str, description: str, permissions_boundary_arn: Optional[str],
                 tags: Mapping[str, str], opts: Optional[pulumi.ResourceOptions] = None):
        pulumi.ComponentResource.__init__(self, type_token("WorkloadRole"), name, None, opts)
        self._name = name
        self._policy_names: set[str] = set()

        def trust(issuer: str) -> pulumi.Output[str]:
            # IAM's condition keys are the issuer without its scheme: oidc.eks.<region>.amazonaws.com/id/<id>
            host = issuer.removeprefix("https://")
            return policy_document([Statement(
                actions=["sts:AssumeRoleWithWebIdentity"],
                principals={"Federated": [oidc_provider_arn]},
                conditions={"StringEquals": {
                    f"{host}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                    f"{host}:aud": "sts.amazonaws.com",
                }},
            )])

        self.role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=pulumi.Output.from_input(oidc_issuer_url).apply(trust),
            description=description,
            max_session_duration=3600,
            path="/",
            permissions_boundary=permissions_boundary_arn,
            tags=merge_tags(tags),
            opts=child(self),
        )
        self.arn = self.role.arn
        self.name = self.role.name
        self.register_outputs({"arn": self.arn, "name": self.name})


@dataclass(frozen=True)
class MlflowOnKubernetesArgs:
    """Arguments of `MlflowOnKubernetes` (created by `ModelRegistry` for mlflow kind 'kubernetes')."""

    mlflow: MlflowSettings
    """Namespace, image and sizing of the server."""
    cluster: ClusterAccess
    """The cluster's OIDC provider (the server's role is assumed through IRSA)."""
    backend_store_uri: pulumi.Input[str]
    """Secret database URI of the backend store."""
    bucket: SecureBucket
    """Bucket whose `mlflow/` prefix holds the artifacts."""
    artifact_uri: pulumi.Output[str]
    """`s3://<bucket>/mlflow/`."""
    governance: Governance
    """Tags and permissions boundary of the IAM role."""


class MlflowOnKubernetes(pulumi.ComponentResource):
    """An MLflow tracking server Deployment behind a ClusterIP Service; pass the cluster's provider in
    `opts.providers` so every Kubernetes child deploys to that cluster."""

    tracking_uri: pulumi.Output[str]

    def __init__(self, name: str, args: MlflowOnKubernetesArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_token("MlflowOnKubernetes"), name, None, opts)
        mlflow, namespace = args.mlflow, args.mlflow.namespace
        selector = {"app.kubernetes.io/name": "mlflow", "app.kubernetes.io/instance": name}
        labels = {**selector, "app.kubernetes.io/managed-by": "pulumi"}
        meta = {"name": name, "namespace": namespace, "labels": labels}

        role = WorkloadRole(
            f"{name}-irsa", oidc_provider_arn=args.cluster.oidc_provider_arn,
            oidc_issuer_url=args.cluster.oidc_issuer_url, namespace=namespace, service_account=name,
            description=f"MLflow server {name} (service account {namespace}/{name}) on EKS",
            permissions_boundary_arn=args.governance.permissions_boundary_arn, tags=args.governance.tags,
            opts=child(self),
        )
        grant = args.bucket.grant_read_write(role, prefix=ARTIFACT_PREFIX)

        ns = k8s.core.v1.Namespace(f"{name}-namespace", metadata={"name": namespace, "labels": {
            **labels,
            # the pod below meets the "restricted" Pod Security Standard; nothing less may run here
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
        }}, opts=child(self))
        in_ns = child(self, depends_on=[ns])
        account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata={**meta, "annotations": {"eks.amazonaws.com/role-arn": role.arn}},
            automount_service_account_token=False,  # IRSA projects its own token; no Kubernetes API access
            opts=in_ns,
        )
        secret = k8s.core.v1.Secret(
            f"{name}-backend-store",
            metadata={**meta, "name": f"{name}-backend-store"},
            type="Opaque",
            # a secret even if the caller passed a plain string: the plan and state show "[secret]"
            string_data={SECRET_KEY: pulumi.Output.secret(args.backend_store_uri)},
            opts=in_ns,
        )
        region = aws_context(self).region
        k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=meta,
            spec={
                "replicas": mlflow.replicas,
                "selector": {"match_labels": selector},
                "template": {"metadata": {"labels": labels}, "spec": _pod_spec(
                    name, namespace, mlflow, args.artifact_uri, account.metadata.name, secret.metadata.name, region,
                )},
            },
            # the pod can reach S3 only once the role's policy exists
            opts=child(self, depends_on=[ns, grant]),
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=meta,
            spec={"type": "ClusterIP", "selector": selector,
                  "ports": [{"name": "http", "port": PORT, "target_port": "http", "protocol": "TCP"}]},
            opts=in_ns,
        )
        self.tracking_uri = concat("http://", service.metadata.name, ".", namespace,
                                                 ".svc.cluster.local:", str(PORT))
        self.register_outputs({"trackingUri": self.tracking_uri, "roleArn": role.arn})


def allowed_hosts(name: str, namespace: str) -> list[str]:
    """Host headers the server accepts: its Service's DNS names (MLflow 3 rejects others)."""
    names = [f"{name}.{namespace}.svc.cluster.local", f"{name}.{namespace}.svc", f"{name}.{namespace}", name]
    return [host for n in names for host in (n, f"{n}:{PORT}")]


def _pod_spec(name: str, namespace: str, mlflow: MlflowSettings, artifact_uri: pulumi.Output[str],
              service_account: pulumi.Output[str], secret_name: pulumi.Output[str],
              region: pulumi.Output[str]) -> dict:
    health = {"http_get": {"path": "/health", "port": "http"}, "timeout_seconds": 5}
    command: Sequence = [
        "mlflow", "server",
        # Kubernetes expands $(BACKEND_STORE_URI) from the env below: the URI is never in the pod spec
        "--backend-store-uri", "$(BACKEND_STORE_URI)",
        "--default-artifact-root", artifact_uri,
        "--host", "0.0.0.0", "--port", str(PORT),
        "--allowed-hosts", ",".join(allowed_hosts(name, namespace)),
    ]
    return {
        "service_account_name": service_account,
        "automount_service_account_token": False,
        "security_context": {
            "run_as_non_root": True, "run_as_user": RUN_AS, "run_as_group": RUN_AS, "fs_group": RUN_AS,
            "seccomp_profile": {"type": "RuntimeDefault"},
        },
        "containers": [{
            "name": "mlflow",
            "image": mlflow.image,
            "command": command,
            "env": [
                {"name": "BACKEND_STORE_URI",
                 "value_from": {"secret_key_ref": {"name": secret_name, "key": SECRET_KEY}}},
                {"name": "AWS_DEFAULT_REGION", "value": region},
                # the root filesystem is read-only: caches and temporary files go to /tmp
                {"name": "HOME", "value": "/tmp"},
            ],
            "working_dir": "/tmp",
            "ports": [{"name": "http", "container_port": PORT, "protocol": "TCP"}],
            "resources": {
                "requests": {"cpu": mlflow.cpu_request, "memory": mlflow.memory},
                "limits": {"cpu": mlflow.cpu_limit, "memory": mlflow.memory},
            },
            # database migrations run at start-up: up to 5 minutes before liveness counts
            "startup_probe": {**health, "period_seconds": 10, "failure_threshold": 30},
            "readiness_probe": {**health, "period_seconds": 10, "failure_threshold": 3},
            "liveness_probe": {**health, "period_seconds": 20, "failure_threshold": 3},
            "security_context": {
                "allow_privilege_escalation": False,
                "read_only_root_filesystem": True,
                "run_as_non_root": True,
                "capabilities": {"drop": ["ALL"]},
                "seccomp_profile": {"type": "RuntimeDefault"},
            },
            "volume_mounts": [{"name": "tmp", "mount_path": "/tmp"}],
        }],
        "volumes": [{"name": "tmp", "empty_dir": {"size_limit": "1Gi"}}],
    }
