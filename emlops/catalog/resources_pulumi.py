"""Catalogue entries of what Pulumi itself registers: the stack, explicit providers and stack references.

The offline engine and mocks answer for these themselves (a provider's id, a referenced stack's
outputs); their entries tell `emlops diff` and `emlops graph` what they are.
"""

from __future__ import annotations

from emlops.catalog.resource_type import ResourceType

PROVIDER_PREFIX = "pulumi:providers:"

AWS_PROVIDER = ResourceType(
    PROVIDER_PREFIX + "aws", replace_on_change=("region",))  # resources of another region are other resources
AWS_NATIVE_PROVIDER = ResourceType(PROVIDER_PREFIX + "aws-native")
KUBERNETES_PROVIDER = ResourceType(PROVIDER_PREFIX + "kubernetes")
# the root of every URN's parent chain, a component resource
STACK = ResourceType("pulumi:pulumi:Stack")
# the shared-services stack whose registry the environment deploys from and registers into
STACK_REFERENCE = ResourceType("pulumi:pulumi:StackReference", label="stack reference")


def is_provider(token: str) -> bool:
    """An explicit provider resource (`pulumi:providers:<package>`)."""
    return token.startswith(PROVIDER_PREFIX)
