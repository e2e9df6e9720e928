"""Personas: the IAM roles people assume to work on the platform, one least-privilege role per persona.

- `data-scientist` reads datasets and features, keeps experiments under its own artifacts prefix, runs
  training and processing jobs (in the VPC, encrypted with the data key) and registers model versions
  for approval; it can neither approve a version nor touch an endpoint.
- `ml-engineer` operates models: approves or rejects versions, runs the retraining pipelines, watches
  and invokes endpoints and monitors, reads artifacts; it administers neither IAM nor KMS.
- `platform-admin` runs the platform: changes resources that carry the platform's tags, the roles
  under the platform's name prefix (within the permissions boundary) and the data key's settings,
  reads configuration everywhere else, and is denied the data itself (no decrypt, no dataset reads).

Humans assume these roles, so the trust is built here (ServiceRole trusts AWS services): the principals
listed per persona, or by default any principal of this account tagged `emlops-persona=<persona>`
(e.g. by an Identity Center attribute); MFA in production. No persona may delete stateful resources.
The action lists and the persona policies themselves are built in `components.personas_policies`.
"""

from __future__ import annotations

import re
from typing import Optional

import pulumi
import pulumi_aws as aws

from emlops.components.aws_context import AwsContext, aws_context
from emlops.components.iam import Statement, policy_document
from emlops.components.options import child, type_token
from emlops.components.personas_args import (INLINE_POLICIES_LIMIT, PERSONA_TAG, PERSONAS, PRINCIPAL_ARN,
                                             TRUST_POLICY_LIMIT, PersonasContext, PersonasSettings)
from emlops.components.personas_policies import (PERSONA_PATH, data_scientist_policies, ml_engineer_policies,
                                                 platform_admin_policies)

__all__ = ["Personas", "PersonasContext", "PersonasSettings"]

class Personas(pulumi.ComponentResource):
    """One IAM role per persona (`data-scientist`, `ml-engineer`, `platform-admin`), each with its own
    trust and named inline policies; `role_arns` maps each persona to its role."""

    roles: dict[str, aws.iam.Role]
    role_arns: dict[str, pulumi.Output[str]]
    role_names: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, settings: PersonasSettings, context: PersonasContext,
                 opts: Optional[pulumi.ResourceOptions] = None):
        context.check()
        super().__init__(type_token("Personas"), name, None, opts)
        aws_facts = aws_context(self)
        self.roles = {}
        for persona in PERSONAS:
            self.roles[persona] = aws.iam.Role(
                f"{name}-{persona}",
                assume_role_policy=_within_limit(f"the {persona} role's trust policy", TRUST_POLICY_LIMIT,
                                                 policy_document(_trust(settings, context, persona, aws_facts)),
                                                 "list fewer principals (a '*' pattern can stand for several)"),
                description=f"{persona} persona of the {context.environment} ML platform",
                max_session_duration=settings.max_session_hours * 3600,
                path=PERSONA_PATH,
                permissions_boundary=context.permissions_boundary_arn,
                tags=dict(context.governance.tags),
                opts=child(self),
            )
        self.role_arns = {persona: role.arn for persona, role in self.roles.items()}
        self.role_names = {persona: role.name for persona, role in self.roles.items()}
        policies = {
            "data-scientist": data_scientist_policies(settings, context, aws_facts),
            "ml-engineer": ml_engineer_policies(settings, context, aws_facts),
            "platform-admin": platform_admin_policies(settings, context, aws_facts),
        }
        for persona, named in policies.items():
            documents = {policy_name: policy_document(statements) for policy_name, statements in named}
            # IAM counts a role's inline policies together; long resource lists are caught here, not by AWS
            total = _within_limit(f"the {persona} role's inline policies", INLINE_POLICIES_LIMIT,
                                  pulumi.Output.all(*documents.values()).apply("".join),
                                  "give it fewer resources")
            for policy_name, document in documents.items():
                aws.iam.RolePolicy(f"{name}-{persona}-{policy_name}", role=self.roles[persona].id,
                                   policy=pulumi.Output.all(document, total).apply(lambda both: both[0]),
                                   opts=child(self))
        self.register_outputs({"roleArns": self.role_arns, "roleNames": self.role_names})


def _within_limit(what: str, limit: int, text: pulumi.Output[str], fix: str) -> pulumi.Output[str]:
    def check(value: str) -> str:
        size = len(re.sub(r"\s", "", value))  # IAM does not count whitespace
        if size > limit:
            raise ValueError(f"{what} would be {size} characters, over IAM's limit of {limit}; {fix}")
        return value
    return text.apply(check)


def _trust(settings: PersonasSettings, context: PersonasContext, persona: str,
           aws_facts: AwsContext) -> list[Statement]:
    listed = settings.trusted_principal_arns.get(persona)
    if listed:
        # IAM allows no wildcard in Principal: trust the principals' accounts, match the ARNs in a condition.
        roots = sorted({f"arn:{m.group(1)}:iam::{m.group(2)}:root" for m in map(PRINCIPAL_ARN.match, listed)})
        conditions: dict = {"ArnLike": {"aws:PrincipalArn": list(listed)}}
    else:
        roots = [aws_facts.arn("iam", "root", regional=False)]
        conditions = {"StringEquals": {f"aws:PrincipalTag/{PERSONA_TAG}": persona}}
    # a persona's session never becomes another persona (of any environment)
    conditions["ArnNotLike"] = {"aws:PrincipalArn": aws_facts.arn("iam", f"role{PERSONA_PATH}*", regional=False)}
    if settings.mfa_required(context.production):
        conditions["Bool"] = {"aws:MultiFactorAuthPresent": "true"}
    return [Statement(actions=["sts:AssumeRole", "sts:TagSession"], principals={"AWS": roots},
                      conditions=conditions)]
