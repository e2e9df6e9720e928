"""Personas: the IAM roles people assume to work on the platform, one least-privilege role per persona.

- `data-scientist` reads datasets and features, keeps experiments under its own artifacts prefix, runs
  training and processing jobs (in the platform's subnets and security groups with network isolation,
  encrypted with the data key, as the training role, which reads and writes no more than it may) and
  registers model versions for approval; it can neither approve a version nor touch an endpoint.
- `ml-engineer` operates models: approves or rejects versions, runs the retraining pipelines, watches
  and invokes endpoints and monitors, reads artifacts; it administers neither IAM nor KMS, and passes no
  role (every job role reads datasets, which it may not).
- `platform-admin` runs the platform: changes resources that carry the platform's tags, the roles on the
  platform's path `/emlops/<environment>/` (only with a permissions boundary, and only within it; the roles with
  data access stay at `/`, out of its reach) and the data key's settings, reads configuration everywhere else and
  the platform's own log groups, and is denied the data itself.
- `business-viewer` follows the platform without changing it: dashboards, model cards, approval history and cost,
  no data (`components.personas_viewer`).

Humans assume these roles, so the trust is built here (ServiceRole trusts AWS services): the principals
listed per persona (of the stack's account or its identity accounts), or by default the Identity Center
permission-set roles of those accounts whose principal is tagged `emlops-persona=<persona>`; MFA in
production. No persona may delete stateful resources.
The action lists and the persona policies themselves are built in `components.personas_policies`.
"""

from __future__ import annotations

import re
from typing import Optional

import pulumi
import pulumi_aws as aws

from emlops.components.aws_context import AwsContext, aws_context
from emlops.components.iam import Statement, policy_document, policy_size
from emlops.components.options import child, type_token
from emlops.components.outputs import concat
from emlops.components.personas_args import (IDENTITY_CENTER_ROLES, INLINE_POLICIES_LIMIT, PERSONA_TAG, PERSONAS,
                                             PRINCIPAL_ARN, TRUST_POLICY_LIMIT, PersonasContext, PersonasSettings)
from emlops.components.personas_policies import (PERSONA_PATH, data_scientist_policies, ml_engineer_policies,
                                                 platform_admin_policies)
from emlops.components.personas_viewer import business_viewer_policies

__all__ = ["Personas", "PersonasContext", "PersonasSettings", "policy_sizes"]


class Personas(pulumi.ComponentResource):
    """One IAM role per persona (`data-scientist`, `ml-engineer`, `platform-admin`, `business-viewer`), each with its own
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
                                                 policy_document(trust_statements(settings, context.production,
                                                                                  persona, aws_facts)),
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
        for persona, named in persona_policies(settings, context, aws_facts).items():
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


def persona_policies(settings: PersonasSettings, context: PersonasContext,
                     aws_facts: AwsContext) -> dict[str, list[tuple[str, list[Statement]]]]:
    """Each persona's named inline policies."""
    return {"data-scientist": data_scientist_policies(settings, context, aws_facts),
            "ml-engineer": ml_engineer_policies(settings, context, aws_facts),
            "platform-admin": platform_admin_policies(settings, context, aws_facts),
            "business-viewer": business_viewer_policies(settings, context, aws_facts)}


def policy_sizes(settings: PersonasSettings, context: PersonasContext,
                 aws_facts: AwsContext) -> dict[str, tuple[int, int]]:
    """Per persona, the sizes IAM counts of its trust policy and of its inline policies together, from a context
    and AWS facts of plain strings (ARNs of the right length): checked against IAM's quotas before a deploy."""
    return {persona: (policy_size(trust_statements(settings, context.production, persona, aws_facts)),
                      sum(policy_size(statements) for _, statements in named))
            for persona, named in persona_policies(settings, context, aws_facts).items()}


def trust_statements(settings: PersonasSettings, production: bool, persona: str,
                     aws_facts: AwsContext) -> list[Statement]:
    """Who may assume `persona` (see the module docstring)."""
    listed = settings.trusted_principal_arns.get(persona)
    if listed:
        # IAM allows no wildcard in Principal: trust the principals' accounts, match the ARNs in a condition.
        roots = sorted({f"arn:{m.group(1)}:iam::{m.group(2)}:root" for m in map(PRINCIPAL_ARN.match, listed)})
        conditions: dict = {"ArnLike": {"aws:PrincipalArn": list(listed)}}
    else:
        # A tag alone is not enough (people may tag their own sessions and roles): the principal must also be an
        # Identity Center permission-set role, which only Identity Center creates and tags, of the stack's account
        # or an identity account.
        accounts = [aws_facts.account_id, *settings.identity_account_ids]
        roots = [concat("arn:", aws_facts.partition, ":iam::", account, ":root") for account in accounts]
        conditions = {"ArnLike": {"aws:PrincipalArn": [concat("arn:", aws_facts.partition, ":iam::", account,
                                                              f":role{IDENTITY_CENTER_ROLES}") for account in accounts]},
                      "StringEquals": {f"aws:PrincipalTag/{PERSONA_TAG}": persona}}
    # a persona's session never becomes another persona (of any environment)
    conditions["ArnNotLike"] = {"aws:PrincipalArn": aws_facts.arn("iam", f"role{PERSONA_PATH}*", regional=False)}
    if settings.mfa_required(production):
        conditions["Bool"] = {"aws:MultiFactorAuthPresent": "true"}
    return [Statement(actions=["sts:AssumeRole", "sts:TagSession"], principals={"AWS": roots},
                      conditions=conditions)]
