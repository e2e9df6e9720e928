"""Catalogue entries of IAM: roles, their policies and attachments, and the EKS cluster's OIDC provider.

IAM is global: its ARNs name no region. User and group policies are not registered by the platform
(it creates roles only), but the guardrails check them in a team's own code.
"""

from __future__ import annotations

from emlops.catalog.resource_type import AUTO_NAMED, BY_ARN, Naming, ResourceType, digest

# IAM's roleNameType and policyNameType (botocore): letters, digits and _+=,.@-
IAM_NAME = r"[\w+=,.@-]+"
_POLICY_NAMING = Naming(auto=True, max_length=128, pattern=IAM_NAME, what="IAM policy")

ROLE = ResourceType(
    "aws:iam/role:Role", taggable=True, naming=Naming(auto=True, max_length=64, pattern=IAM_NAME, what="IAM role"),
    arn="arn:{partition}:iam::{account}:role{path}{name}", replace_on_change=("name", "namePrefix", "path"),
    input_defaults={"path": "/"},
    outputs=lambda fields: {"uniqueId": "AROA" + digest(fields["name"] + fields["account"], 17).upper()},
)
ROLE_POLICY = ResourceType(
    "aws:iam/rolePolicy:RolePolicy", naming=_POLICY_NAMING, physical_id="{role}:{name}",
    replace_on_change=("name", "namePrefix", "role"),
)
ROLE_POLICY_ATTACHMENT = ResourceType(
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment", replace_on_change=("role", "policyArn"))
POLICY = ResourceType(
    "aws:iam/policy:Policy", taggable=True, naming=_POLICY_NAMING,
    arn="arn:{partition}:iam::{account}:policy{path}{name}", input_defaults={"path": "/"},
)
OPENID_CONNECT_PROVIDER = ResourceType(
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider", taggable=True,
    arn="arn:{partition}:iam::{account}:oidc-provider/{url_host_path}",
    physical_id=BY_ARN,  # IAM identifies OIDC providers by their ARN
    replace_on_change=("url",),
)

# -- in a team's own code -----------------------------------------------------------------------------

USER_POLICY = ResourceType("aws:iam/userPolicy:UserPolicy", naming=_POLICY_NAMING)
GROUP_POLICY = ResourceType("aws:iam/groupPolicy:GroupPolicy", naming=_POLICY_NAMING)
POLICY_ATTACHMENT = ResourceType("aws:iam/policyAttachment:PolicyAttachment", naming=AUTO_NAMED)
USER_POLICY_ATTACHMENT = ResourceType("aws:iam/userPolicyAttachment:UserPolicyAttachment")
GROUP_POLICY_ATTACHMENT = ResourceType("aws:iam/groupPolicyAttachment:GroupPolicyAttachment")
