"""The account, region and partition a component deploys into, asked once per provider per run.

Components ask AWS (caller identity, region, partition) rather than taking these as arguments, so
they deploy correctly through whatever provider their parent uses. The answers are shared between
components under the same provider: each `pulumi up` asks once, and previews of large stacks do
not multiply Outputs for the same three facts.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws

from emlops.components.outputs import concat


@dataclass(frozen=True)
class AwsContext:
    """The account, region and partition: Outputs of the provider, or plain strings (known from the stack file)."""

    account_id: pulumi.Input[str]
    region: pulumi.Input[str]
    partition: pulumi.Input[str]

    def arn(self, service: str, resource: pulumi.Input[str], *, regional: bool = True,
            account: bool = True) -> pulumi.Input[str]:
        """An ARN in this account and region: `arn:<partition>:<service>:<region>:<account>:<resource>`."""
        return concat("arn:", self.partition, ":", service, ":", self.region if regional else "",
                      ":", self.account_id if account else "", ":", resource)

    def service_endpoint(self, service: str) -> pulumi.Input[str]:
        """`<service>.<region>.amazonaws.com`, e.g. for `kms:ViaService` conditions."""
        return concat(service, ".", self.region, ".amazonaws.com")


# One cache per Pulumi run: each run (and each `emlops preview`) executes in its own context.
_CACHE: contextvars.ContextVar[Optional[dict]] = contextvars.ContextVar("emlops_aws_context", default=None)


def aws_context(parent: pulumi.Resource) -> AwsContext:
    """The AWS context of `parent`'s AWS provider (the default provider when it has none)."""
    cache = _CACHE.get()
    if cache is None:
        cache = {}
        _CACHE.set(cache)
    provider = parent.get_provider("aws::")
    key = id(provider) if provider is not None else None
    if key not in cache:
        invoke = pulumi.InvokeOptions(parent=parent)
        cache[key] = (provider, AwsContext(
            account_id=aws.get_caller_identity_output(opts=invoke).account_id,
            region=aws.get_region_output(opts=invoke).region,
            partition=aws.get_partition_output(opts=invoke).partition,
        ))
    return cache[key][1]
