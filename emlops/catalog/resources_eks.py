"""Catalogue entries of EKS: the training cluster, its node groups, add-ons and access entries."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from emlops.catalog.resource_type import CreateRequest, Naming, ResourceType, digest

_ARN = "arn:{partition}:eks:{region}:{account}:"


def _cluster_outputs(fields: Mapping[str, str]) -> dict[str, Any]:
    """What EKS answers once a cluster is active: its API endpoint, CA certificate and OIDC issuer."""
    cluster_id = digest(f"{CLUSTER.token}::{fields['id']}", 32).upper()
    region, dns_suffix = fields["region"], fields["dns_suffix"]
    certificate = f"-----BEGIN CERTIFICATE-----\n{cluster_id}\n-----END CERTIFICATE-----\n"
    return {
        "endpoint": f"https://{cluster_id}.gr7.{region}.eks.{dns_suffix}",
        "certificateAuthority": {"data": base64.b64encode(certificate.encode()).decode()},
        "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{region}.{dns_suffix}/id/{cluster_id}"}]}],
        "platformVersion": "eks.1",
        "status": "ACTIVE",
    }


CLUSTER = ResourceType(
    "aws:eks/cluster:Cluster", label="EKS cluster", stateful=True, taggable=True,
    naming=Naming(auto=True, max_length=100, pattern=r"[0-9A-Za-z][A-Za-z0-9\-_]*"), arn=_ARN + "cluster/{name}",
    replace_on_change=(
        "name", "roleArn", "vpcConfig.subnetIds", "vpcConfig.securityGroupIds", "kubernetesNetworkConfig",
        "accessConfig.bootstrapClusterCreatorAdminPermissions", "outpostConfig"),
    input_defaults={"version": "1.33"}, outputs=_cluster_outputs,
    create=CreateRequest(
        "eks", "CreateCluster", {"vpcConfig": "resourcesVpcConfig"},
        # the provider flattens `logging.clusterLogging[{types, enabled}]` into a list of log types, and
        # models the API's one-element `encryptionConfig` list as one block: neither maps by renaming
        # (tests/test_training.py checks both against the API's shapes and enums)
        ignore=frozenset({"enabledClusterLogTypes", "encryptionConfig"}),
    ),
)
NODE_GROUP = ResourceType(
    "aws:eks/nodeGroup:NodeGroup", label="node group", taggable=True,
    naming=Naming("nodeGroupName", auto=True, max_length=63),
    arn=_ARN + "nodegroup/{clusterName}/{nodeGroupName}/{uuid}", physical_id="{clusterName}:{nodeGroupName}",
    replace_on_change=(
        "clusterName", "nodeGroupName", "nodeGroupNamePrefix", "nodeRoleArn", "subnetIds", "amiType",
        "capacityType", "diskSize", "instanceTypes", "remoteAccess"),
    outputs={"status": "ACTIVE"},
    create=CreateRequest("eks", "CreateNodegroup", {"nodeRoleArn": "nodeRole", "subnetIds": "subnets"}),
)
ADDON = ResourceType(
    "aws:eks/addon:Addon", taggable=True, arn=_ARN + "addon/{clusterName}/{addonName}/{uuid}",
    replace_on_change=("addonName", "clusterName"),
)
ACCESS_ENTRY = ResourceType(
    "aws:eks/accessEntry:AccessEntry", taggable=True,
    arn=_ARN + "access-entry/{clusterName}/role/{account}/{principal_name}/{uuid}", arn_output="accessEntryArn",
    replace_on_change=("clusterName", "principalArn", "type"),
)
ACCESS_POLICY_ASSOCIATION = ResourceType(
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
    replace_on_change=("clusterName", "principalArn", "policyArn", "accessScope"),
)
