"""Network rules: what leaves a private VPC through its endpoints, and where workloads may send traffic.

- Every VPC endpoint has a policy admitting named principals (or one account's) acting on resources of named
  accounts; a statement may reach any account's resources only to read (pull an image, read AWS's own objects).
- In a VPC that reaches AWS through endpoints, security groups send traffic to the endpoints (their security group,
  the S3 gateway's prefix list), never to the whole internet.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import PolicyResource

from emlops.catalog import resources_network as network
from emlops.guardrails.helpers import (
    UNKNOWN,
    Finding,
    Settings,
    allow_statements,
    as_list,
    get,
    items,
    of_type,
    parse_json,
    resource_rule,
    stack_rule,
    text,
)

VPC_ENDPOINT, SECURITY_GROUP = network.VPC_ENDPOINT.token, network.SECURITY_GROUP.token
PRINCIPAL_KEYS = ("aws:PrincipalAccount", "aws:PrincipalOrgID", "aws:PrincipalArn")
RESOURCE_KEYS = ("aws:ResourceAccount", "aws:ResourceOrgID")
# What reads (brings in) rather than writes (carries out): allowed on any account's resources.
READ_ONLY = re.compile(r"^[a-z0-9-]+:(Get|Describe|List|BatchGet|BatchCheck)[A-Za-z]*$")
EVERYWHERE = ("0.0.0.0/0", "::/0")


def _keys(statement: Mapping[str, Any]) -> set[str]:
    condition = get(statement, "Condition")
    if not isinstance(condition, Mapping):
        return set()
    return {key for values in condition.values() if isinstance(values, Mapping) for key in values}


def _any_principal(statement: Mapping[str, Any]) -> bool:
    principal = get(statement, "Principal")
    values = as_list(get(principal, "AWS")) if isinstance(principal, Mapping) else as_list(principal)
    return "*" in values


def _any_resource(statement: Mapping[str, Any]) -> bool:
    return any(r == "*" or (isinstance(r, str) and re.match(r"^arn:[^:]*:[^:]*:[^:]*:\*:", r))
               for r in as_list(get(statement, "Resource")))


@resource_rule("vpc-endpoint-policy-own-account", types=(VPC_ENDPOINT,), severity="high",
               description="Every VPC endpoint has a policy: principals of named accounts, acting on resources of "
                           "named accounts (aws:PrincipalAccount, aws:ResourceAccount); only reads may reach any "
                           "account's resources (AWS's own images and objects).",
               remediation="Use the Network component (endpoint_policy); list a shared registry's account in "
                           "NetworkContext.resource_account_ids.")
def endpoint_policy_own_account(props: Any, settings: Settings) -> Iterator[str]:
    raw = get(props, "policy")
    if raw is UNKNOWN:
        return
    document = parse_json(raw) if raw not in (None, "") else None
    if document is None:
        yield "has no endpoint policy: any principal reaches any account's resources through it"
        return
    for index, statement in enumerate(allow_statements(document)):
        name = get(statement, "Sid") or f"statement {index + 1}"
        keys = _keys(statement)
        if _any_principal(statement) and not keys & set(PRINCIPAL_KEYS):
            yield f"{name} admits any principal: condition it on aws:PrincipalAccount"
        writes = [a for a in as_list(get(statement, "Action")) if isinstance(a, str) and not READ_ONLY.match(a)]
        if writes and _any_resource(statement) and not keys & set(RESOURCE_KEYS):
            yield f"{name} lets {writes[0]} reach any account's resources: condition it on aws:ResourceAccount"


def _egress_everywhere(group: PolicyResource) -> list[str]:
    rules = []
    for rule in items(get(group.props, "egress")):
        if not isinstance(rule, Mapping):
            continue
        blocks = [b for b in as_list(get(rule, "cidrBlocks")) + as_list(get(rule, "ipv6CidrBlocks")) if b in EVERYWHERE]
        if blocks:
            protocol, low, high = get(rule, "protocol"), get(rule, "fromPort"), get(rule, "toPort")
            ports = "all ports" if str(protocol) == "-1" else (f"{protocol}/{low}" if low == high else
                                                              f"{protocol}/{low}-{high}")
            rules.append(f"{ports} to {blocks[0]}")
    return rules


@stack_rule("ec2-egress-to-vpc-endpoints", severity="medium",
            description="In a VPC that reaches AWS through VPC endpoints, security groups send traffic to the "
                        "endpoints (their security group, the S3 gateway's prefix list), not to 0.0.0.0/0.",
            remediation="Give the group the Network's endpoint_egress (https_only_security_group(egress_to=...)).")
def egress_to_vpc_endpoints(resources: list[PolicyResource], settings: Settings) -> Iterator[Finding]:
    vpcs = {text(get(e.props, "vpcId")) for e in of_type(resources, VPC_ENDPOINT)}
    if not vpcs:
        return
    for group in of_type(resources, SECURITY_GROUP):
        vpc = text(get(group.props, "vpcId"))
        if vpc is not None and vpc not in vpcs:
            continue
        for rule in _egress_everywhere(group):
            yield (f"security group {group.name} sends {rule} although its VPC reaches AWS through endpoints",
                   group.urn)


POLICIES = [endpoint_policy_own_account, egress_to_vpc_endpoints]
