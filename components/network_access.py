"""What every SageMaker workload in the platform's private subnets needs from the network.

Endpoints, monitoring jobs, training jobs and pipelines all run in the stack's private subnets:
each gets its own security group (no inbound, HTTPS out to the VPC endpoints only) and its role
may manage network interfaces in that VPC only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from emlops.components.aws_context import AwsContext
from emlops.components.iam import Statement
from emlops.components.options import child


def https_only_security_group(parent: pulumi.Resource, name: str, vpc_id: pulumi.Input[str], purpose: str,
                              tags: Mapping[str, str]) -> aws.ec2.SecurityGroup:
    """`<name>-sg`: no inbound rule; outbound HTTPS only (private subnets have no route to the internet)."""
    return aws.ec2.SecurityGroup(
        f"{name}-sg",
        vpc_id=vpc_id,
        description=_sg_description(f"{purpose} {name}: no inbound; HTTPS out to VPC endpoints only"),
        ingress=[],
        egress=[{
            "description": "HTTPS to the VPC endpoints and the S3 gateway (private subnets, no internet route)",
            "protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": ["0.0.0.0/0"],
        }],
        revoke_rules_on_delete=True,
        tags=dict(tags),
        opts=child(parent),
    )


def vpc_interface_statements(context: AwsContext, vpc_id: pulumi.Input[str]) -> list[Statement]:
    """ENI management for SageMaker jobs and endpoints, limited to one VPC (`ec2:Vpc`)."""
    return [
        # Describe calls cannot be scoped to resources; AWS requires "*".
        Statement(actions=["ec2:DescribeDhcpOptions", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroups",
                           "ec2:DescribeSubnets", "ec2:DescribeVpcs"], resources=["*"]),
        Statement(actions=["ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission",
                           "ec2:DeleteNetworkInterface", "ec2:DeleteNetworkInterfacePermission"],
                  resources=["*"], conditions={"ArnEquals": {
                      "ec2:Vpc": context.arn("ec2", pulumi.Output.concat("vpc/", vpc_id))}}),
    ]


# EC2 accepts only these characters in security group descriptions (botocore has no pattern for it).
_SG_DESCRIPTION = re.compile(r"^[a-zA-Z0-9. _\-:/()#,@\[\]+=&;{}!$*]{0,255}$")


def _sg_description(text: str) -> str:
    if not _SG_DESCRIPTION.match(text):
        raise ValueError(f"security group description {text!r} must be at most 255 of a-z A-Z 0-9 . _ - : / ( ) "
                         "# , @ [ ] + = & ; { } ! $ *")
    return text
