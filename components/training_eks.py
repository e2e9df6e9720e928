"""The children of a TrainingCluster of kind `eks`: a private EKS cluster for GPU training.

Control plane: private endpoint only, secrets encrypted with the cluster's KMS key, all five
control-plane log types into a pre-created, KMS-encrypted log group with retention, EKS access
entries (API authentication mode; the creator gets no implicit admin). Nodes: a GPU managed node
group that scales from zero and is tainted so only GPU workloads land on it, and a small system
node group for add-ons. IRSA: the cluster's OIDC provider, used by the VPC CNI so the node role
does not carry the CNI's network permissions. Kubernetes: a provider for the cluster (exec auth
through `aws eks get-token`) and the `KubernetesBaseline` applied through it.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from emlops.components.aws_context import aws_context
from emlops.components.iam import ServiceRole, ServiceRoleArgs, Statement, name_token, policy_document
from emlops.components.kubernetes_args import BaselineContext
from emlops.components.kubernetes_baseline import KubernetesBaseline
from emlops.components.options import child
from emlops.components.outputs import concat, json_document
from emlops.components.settings import Governance
from emlops.components.training_args import EksSettings, TrainingContext


LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}
NODE_POOL_LABEL = "emlops.dev/node-pool"


def build_eks(parent: pulumi.ComponentResource, name: str, eks: EksSettings, context: TrainingContext,
              governance: Governance) -> None:
    """Create the cluster, its nodes, IRSA and the Kubernetes baseline; set `parent`'s eks outputs."""
    aws_facts = aws_context(parent)
    key_arn = parent.kms_key_arn
    tags, protect, boundary = dict(governance.tags), governance.protect, governance.permissions_boundary_arn

    def managed_policy(path: str) -> pulumi.Output[str]:
        return concat("arn:", aws_facts.partition, ":iam::aws:policy/", path)

    def attach(logical: str, role_name: pulumi.Input[str], policy: str) -> aws.iam.RolePolicyAttachment:
        return aws.iam.RolePolicyAttachment(logical, role=role_name, policy_arn=managed_policy(policy),
                                            opts=child(parent))

    log_group = aws.cloudwatch.LogGroup(
        f"{name}-cluster-logs",
        # EKS writes to this exact name; created first so retention and encryption are ours, not defaults.
        name=f"/aws/eks/{name}/cluster",
        retention_in_days=eks.log_retention_days,
        kms_key_id=key_arn,
        tags=tags,
        opts=child(parent, protect=protect),
    )

    control_plane = ServiceRole(f"{name}-control-plane", ServiceRoleArgs(
        services=["eks.amazonaws.com"],
        description=f"EKS control plane of {name}",
        permissions_boundary_arn=boundary,
        tags=tags,
    ), opts=child(parent))
    # EKS requires this AWS-managed policy on the cluster role (it manages the control plane's ENIs and
    # load balancers and changes with EKS features); it is scoped to EKS's needs, not a *FullAccess policy.
    cluster_policy = attach(f"{name}-control-plane-eks-policy", control_plane.name, "AmazonEKSClusterPolicy")
    secrets_policy = control_plane.add_policy("secrets-encryption", [
        # envelope encryption of Kubernetes secrets (EKS's documented actions for the cluster role)
        Statement(actions=["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:ListGrants"], resources=[key_arn]),
    ])

    security_group = aws.ec2.SecurityGroup(
        f"{name}-cluster-sg",
        vpc_id=context.placement.vpc_id,
        description=f"EKS control plane of {name}: API from the listed private networks only; node traffic "
                    "uses the cluster security group EKS manages",
        ingress=[{"description": "Kubernetes API from private networks (VPN, CI runners)", "protocol": "tcp",
                  "from_port": 443, "to_port": 443, "cidr_blocks": list(eks.endpoint_access_cidrs)}]
        if eks.endpoint_access_cidrs else [],
        egress=[],
        revoke_rules_on_delete=True,
        tags=tags,
        opts=child(parent),
    )

    cluster = aws.eks.Cluster(
        f"{name}-cluster",
        # named after the component so the log group above has the name EKS writes to
        name=name,
        version=eks.kubernetes_version,
        role_arn=control_plane.arn,
        vpc_config={
            "subnet_ids": list(context.placement.subnet_ids),
            "security_group_ids": [security_group.id],
            "endpoint_private_access": True,
            "endpoint_public_access": False,
        },
        encryption_config={"provider": {"key_arn": key_arn}, "resources": ["secrets"]},
        enabled_cluster_log_types=list(LOG_TYPES),
        access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": False},
        # STANDARD: an outdated version is upgraded rather than silently billed for extended support
        upgrade_policy={"support_type": "STANDARD"},
        deletion_protection=protect,
        tags=tags,
        opts=child(parent, protect=protect, depends_on=[log_group, cluster_policy, secrets_policy]),
    )
    issuer = cluster.identities.apply(lambda ids: ids[0]["oidcs"][0]["issuer"])
    oidc = aws.iam.OpenIdConnectProvider(
        f"{name}-oidc",
        url=issuer,
        client_id_lists=["sts.amazonaws.com"],
        tags=tags,
        opts=child(parent),
    )

    # The VPC CNI (aws-node) gets its ENI/IP permissions through IRSA, not from every node's role.
    cni_role = aws.iam.Role(
        f"{name}-vpc-cni-role",
        assume_role_policy=_irsa_trust(oidc.arn, issuer, "kube-system", "aws-node"),
        description=f"VPC CNI (kube-system/aws-node) of the {name} EKS cluster",
        permissions_boundary=boundary,
        tags=tags,
        opts=child(parent),
    )
    # AWS-managed, scoped to the CNI's ENI and IP actions; AWS updates it with the CNI.
    cni_policy = attach(f"{name}-vpc-cni-policy", cni_role.name, "AmazonEKS_CNI_Policy")
    cni = aws.eks.Addon(
        f"{name}-vpc-cni",
        cluster_name=cluster.name,
        addon_name="vpc-cni",
        service_account_role_arn=cni_role.arn,
        # EKS installs a self-managed vpc-cni at creation; the managed add-on takes it over.
        resolve_conflicts_on_create="OVERWRITE",
        tags=tags,
        opts=child(parent, depends_on=[cni_policy]),
    )

    node_role = aws.iam.Role(
        f"{name}-node-role",
        # EC2 does not send aws:SourceAccount when it assumes an instance role, so no confused-deputy
        # condition here (it would stop nodes from getting credentials).
        assume_role_policy=policy_document([Statement(actions=["sts:AssumeRole"],
                                                      principals={"Service": ["ec2.amazonaws.com"]})]),
        description=f"Nodes of the {name} EKS cluster",
        permissions_boundary=boundary,
        tags=tags,
        opts=child(parent),
    )
    node_policies = [
        # kubelet: describe its instance and join the cluster (EKS requires it for managed node groups)
        attach(f"{name}-node-worker-policy", node_role.name, "AmazonEKSWorkerNodePolicy"),
        # pull images from ECR (pull-only: narrower than AmazonEC2ContainerRegistryReadOnly)
        attach(f"{name}-node-ecr-pull", node_role.name, "AmazonEC2ContainerRegistryPullOnly"),
    ]
    node_opts = dict(depends_on=[*node_policies, cni])
    common = dict(cluster_name=cluster.name, node_role_arn=node_role.arn,
                  subnet_ids=list(context.placement.subnet_ids),
                  capacity_type="ON_DEMAND", update_config={"max_unavailable": 1},
                  node_repair_config={"enabled": True}, tags=tags)
    gpu = aws.eks.NodeGroup(
        f"{name}-gpu",
        instance_types=list(eks.gpu_instance_types),
        ami_type="AL2023_x86_64_NVIDIA",
        disk_size=eks.gpu_disk_size_gib,
        scaling_config={"min_size": 0, "desired_size": 0, "max_size": eks.gpu_max_nodes},
        taints=[GPU_TAINT],
        labels={NODE_POOL_LABEL: "gpu"},
        **common,
        # the cluster autoscaler owns the desired size once the group exists
        opts=child(parent, ignore_changes=["scalingConfig.desiredSize"], **node_opts),
    )
    system = aws.eks.NodeGroup(
        f"{name}-system",
        instance_types=[eks.system_instance_type],
        ami_type="AL2023_x86_64_STANDARD",
        scaling_config={"min_size": eks.system_nodes, "desired_size": eks.system_nodes,
                        "max_size": eks.system_nodes + 1},
        labels={NODE_POOL_LABEL: "system"},
        **common,
        opts=child(parent, ignore_changes=["scalingConfig.desiredSize"], **node_opts),
    )

    admin_policy = concat("arn:", aws_facts.partition,
                                        ":eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy")
    admins = []
    for role_arn in eks.admin_role_arns:
        logical = f"{name}-admin-{name_token(role_arn.rsplit('/', 1)[-1])}"
        entry = aws.eks.AccessEntry(logical, cluster_name=cluster.name, principal_arn=role_arn, type="STANDARD",
                                    tags=tags, opts=child(parent))
        admins.append(aws.eks.AccessPolicyAssociation(
            f"{logical}-policy", cluster_name=cluster.name, principal_arn=entry.principal_arn,
            policy_arn=admin_policy, access_scope={"type": "cluster"}, opts=child(parent)))

    provider = k8s.Provider(
        f"{name}-k8s",
        kubeconfig=kubeconfig(cluster.name, cluster.endpoint, cluster.certificate_authority.data, aws_facts.region),
        # the deploying role can use the API only once its access entry has its policy
        opts=child(parent, depends_on=admins),
    )
    KubernetesBaseline(f"{name}-baseline", eks, baseline_context(eks, protect),
                       opts=child(parent, providers=[provider]))

    parent.cluster_name = cluster.name
    parent.cluster_arn = cluster.arn
    parent.cluster_endpoint = cluster.endpoint
    parent.oidc_provider_arn = oidc.arn
    parent.oidc_issuer_url = issuer
    parent.kubernetes_provider = provider
    parent.node_group_names = [gpu.node_group_name, system.node_group_name]


def baseline_context(eks: EksSettings, protect: bool) -> BaselineContext:
    """What the cluster supplies to its Kubernetes baseline: its version, and the GPU nodes' taint and label."""
    return BaselineContext(
        kubernetes_version=eks.kubernetes_version,
        gpu_node_taint_key=GPU_TAINT["key"],
        gpu_node_label=(NODE_POOL_LABEL, "gpu"),
        protect=protect,  # a namespace's deletion deletes every job, volume and secret in it
    )


def kubeconfig(cluster_name: pulumi.Input[str], endpoint: pulumi.Input[str], ca_data: pulumi.Input[str],
               region: pulumi.Input[str]) -> pulumi.Output[str]:
    """A kubeconfig (JSON) that authenticates with `aws eks get-token`: it holds no credentials."""
    return json_document({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
        "users": [{"name": cluster_name, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region, "--output", "json"],
            "interactiveMode": "Never",
        }}}],
    })


def _irsa_trust(oidc_arn: pulumi.Output[str], issuer: pulumi.Output[str], namespace: str,
                service_account: str) -> pulumi.Output[str]:
    """Trust for one Kubernetes service account through the cluster's OIDC provider (IRSA)."""
    def document(values: list) -> pulumi.Output[str]:
        arn, url = values
        host = url.removeprefix("https://")  # the condition keys are the issuer without its scheme
        return policy_document([Statement(
            actions=["sts:AssumeRoleWithWebIdentity"],
            principals={"Federated": [arn]},
            conditions={"StringEquals": {f"{host}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                                         f"{host}:aud": "sts.amazonaws.com"}},
        )])
    return pulumi.Output.all(oidc_arn, issuer).apply(document)
