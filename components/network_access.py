"""What every SageMaker workload in the platform's private subnets needs from the network.

Endpoints, monitoring jobs, training jobs and pipelines all run in the stack's private subnets:
each gets its own security group (no inbound, HTTPS out to the VPC endpoints only) and its role
may manage network interfaces in that VPC only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws

from emlops.components.aws_context import AwsContext
from emlops.components.iam import Statement, policy_document
from emlops.components.options import child
from emlops.components.outputs import concat


@dataclass(frozen=True)
class EndpointEgress:
    """Where a workload's HTTPS goes in a VPC that reaches AWS through its endpoints: the interface endpoints'
    security group and the S3 gateway endpoint's prefix list (nothing else, not `0.0.0.0/0`)."""

    security_group_id: pulumi.Input[str]
    prefix_list_id: pulumi.Input[str]


def https_egress(to: Optional[EndpointEgress]) -> list[dict]:
    """Egress rules for HTTPS to the VPC endpoints: to their security group and the S3 prefix list when the
    network says where they are; else to any address (a VPC you bring: its private subnets decide the route)."""
    if to is None:
        return [{"description": "HTTPS to the VPC endpoints and the S3 gateway (private subnets, no internet route)",
                 "protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": ["0.0.0.0/0"]}]
    return [{"description": "HTTPS to the interface VPC endpoints", "protocol": "tcp", "from_port": 443,
             "to_port": 443, "security_groups": [to.security_group_id]},
            {"description": "HTTPS to S3 through the gateway endpoint", "protocol": "tcp", "from_port": 443,
             "to_port": 443, "prefix_list_ids": [to.prefix_list_id]}]


def https_only_security_group(parent: pulumi.Resource, name: str, vpc_id: pulumi.Input[str], purpose: str,
                              tags: Mapping[str, str], egress_to: Optional[EndpointEgress] = None
                              ) -> aws.ec2.SecurityGroup:
    """`<name>-sg`: no inbound rule; outbound HTTPS only, to the VPC endpoints when `egress_to` says where they
    are (private subnets have no route to the internet)."""
    return aws.ec2.SecurityGroup(
        f"{name}-sg",
        vpc_id=vpc_id,
        description=_sg_description(f"{purpose} {name}: no inbound; HTTPS out to VPC endpoints only"),
        ingress=[],
        egress=https_egress(egress_to),
        revoke_rules_on_delete=True,
        tags=dict(tags),
        opts=child(parent),
    )


# The IAM service prefix of the actions each endpoint's service answers.
ENDPOINT_ACTIONS = {"sagemaker.api": "sagemaker", "sagemaker.runtime": "sagemaker",
                    "sagemaker.featurestore-runtime": "sagemaker", "sts": "sts", "logs": "logs",
                    "monitoring": "cloudwatch", "ecr.api": "ecr", "ecr.dkr": "ecr", "kms": "kms", "events": "events",
                    "s3": "s3"}
# Pulling an image: what a workload may do with any account's repository (AWS keeps its own images, e.g. EKS's
# add-ons and SageMaker's frameworks, in its accounts per region); nothing in it can carry data out.
ECR_PULL_ACTIONS = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]


def endpoint_policy(service: str, aws_facts: AwsContext, resource_accounts: Sequence[str] = ()) -> pulumi.Output[str]:
    """A VPC endpoint's policy: principals of this account, acting on resources of this account (and of
    `resource_accounts`, e.g. a shared registry's); requests that name no resource (List*, GetCallerIdentity,
    GetAuthorizationToken) pass. AWS's own resources where a service needs them: ECR's image layers, which S3
    serves from `prod-<region>-starport-layer-bucket`, and pulls of images from AWS's repositories."""
    principal = {"StringEquals": {"aws:PrincipalAccount": [aws_facts.account_id]}}
    statements = [Statement(
        sid="OwnAccountResources", principals="*", actions=[f"{ENDPOINT_ACTIONS[service]}:*"], resources=["*"],
        conditions={**principal, "StringEqualsIfExists": {
            "aws:ResourceAccount": [aws_facts.account_id, *resource_accounts]}})]
    if service == "s3":
        statements.append(Statement(
            sid="AwsEcrImageLayers", principals="*", actions=["s3:GetObject"], conditions=principal,
            resources=[concat("arn:", aws_facts.partition, ":s3:::prod-", aws_facts.region,
                              "-starport-layer-bucket/*")]))
    elif ENDPOINT_ACTIONS[service] == "ecr":
        statements.append(Statement(sid="PullImages", principals="*", actions=ECR_PULL_ACTIONS, resources=["*"],
                                    conditions=principal))
    return policy_document(statements)


def vpc_interface_statements(context: AwsContext, vpc_id: pulumi.Input[str]) -> list[Statement]:
    """ENI management for SageMaker jobs and endpoints, limited to one VPC (`ec2:Vpc`)."""
    return [
        # Describe calls cannot be scoped to resources; AWS requires "*".
        Statement(actions=["ec2:DescribeDhcpOptions", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroups",
                           "ec2:DescribeSubnets", "ec2:DescribeVpcs"], resources=["*"]),
        Statement(actions=["ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission",
                           "ec2:DeleteNetworkInterface", "ec2:DeleteNetworkInterfacePermission"],
                  resources=["*"], conditions={"ArnEquals": {
                      "ec2:Vpc": context.arn("ec2", concat("vpc/", vpc_id))}}),
    ]


# EC2 accepts only these characters in security group descriptions (botocore has no pattern for it).
_SG_DESCRIPTION = re.compile(r"^[a-zA-Z0-9. _\-:/()#,@\[\]+=&;{}!$*]{0,255}$")


def _sg_description(text: str) -> str:
    if not _SG_DESCRIPTION.match(text):
        raise ValueError(f"security group description {text!r} must be at most 255 of a-z A-Z 0-9 . _ - : / ( ) "
                         "# , @ [ ] + = & ; { } ! $ *")
    return text
