"""Alerts: the encrypted SNS topic drift alarms, monitoring runs, rollbacks and approvals notify, and its
subscribers (a stack's `alerts:` section).

The topic is KMS-encrypted and only this account's CloudWatch alarms and EventBridge rules (and, with a budget,
AWS Budgets) may publish to it (over TLS); e-mail addresses and https:// endpoints subscribe to it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Optional

import pulumi
import pulumi_aws as aws
from pydantic import Field, field_validator

from emlops.components.aws_context import aws_context
from emlops.components.iam import Statement, policy_document
from emlops.components.kms import KmsKey, KmsKeyArgs
from emlops.components.options import child
from emlops.components.settings import Governance, Settings

_EMAIL = re.compile(r"^[^@\s]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_HTTPS = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/\S*)?$")
# Services that publish to the topic: CloudWatch alarms and EventBridge rules of this account.
PUBLISHERS = ("cloudwatch.amazonaws.com", "events.amazonaws.com")
# The topic policy's statement of each service that may publish (AWS Budgets: a stack's budget forecasts)
SIDS = {"cloudwatch.amazonaws.com": "CloudWatchAlarmsOfThisAccount",
        "events.amazonaws.com": "EventBridgeRulesOfThisAccount", "budgets.amazonaws.com": "BudgetsOfThisAccount"}


def subscription_protocol(endpoint: str) -> str:
    """`email` or `https` for a subscriber; ValueError in one line otherwise."""
    if _EMAIL.match(endpoint):
        return "email"
    if _HTTPS.match(endpoint):
        return "https"
    raise ValueError(f"subscription {endpoint!r} must be an e-mail address or an https:// URL")


class AlertsSettings(Settings):
    """Who is told about drift, violations and failed monitoring runs (subscribers of the alerts topic)."""

    email: list[str] = Field(default_factory=list, description="E-mail addresses (each confirms once). Default: none.")
    https: list[str] = Field(default_factory=list, description="https:// endpoints (e.g. a chat or paging "
                             "webhook). Default: none.")

    @field_validator("email", "https")
    @classmethod
    def _subscribers(cls, values: list[str], info) -> list[str]:
        wanted = "email" if info.field_name == "email" else "https"
        for value in values:
            try:
                protocol = subscription_protocol(value)
            except ValueError:
                protocol = None
            if protocol != wanted:
                raise ValueError(f"{value!r} is not {'an e-mail address' if wanted == 'email' else 'an https:// URL'}")
        if len(set(values)) != len(values):
            raise ValueError(f"must be unique; got {', '.join(values)}")
        return values

    @property
    def subscriptions(self) -> list[str]:
        return [*self.email, *self.https]


def notification_topic(parent: pulumi.Resource, name: str, governance: Governance, *, purpose: str,
                       subscriptions: Sequence[str] = (), kms_key_arn: Optional[pulumi.Input[str]] = None,
                       publishers: Sequence[str] = PUBLISHERS) -> pulumi.Output[str]:
    """`<name>-topic` (its ARN): KMS-encrypted with `kms_key_arn` (default: `<name>-topic-key`, created for it),
    publishable only by this account's `publishers` (of `SIDS`: alarms and rules, and AWS Budgets if named), with
    `subscriptions` subscribed. `purpose` completes "Encrypts the notifications of ..." in the key's description.
    Protected with `governance.protect`."""
    unknown = [p for p in publishers if p not in SIDS]
    if unknown:
        raise ValueError(f"publishers {unknown} are not among {sorted(SIDS)}")
    tags = dict(governance.tags)
    if kms_key_arn is None:
        kms_key_arn = KmsKey(f"{name}-topic-key", KmsKeyArgs(
            description=f"Encrypts the notifications of {purpose}",
            service_principals=list(publishers), protect=governance.protect, tags=tags,
        ), opts=child(parent)).arn
    topic = aws.sns.Topic(
        f"{name}-topic",
        kms_master_key_id=kms_key_arn,
        tags=tags,
        opts=child(parent, protect=governance.protect),
    )
    account_id = aws_context(parent).account_id
    statements = [
        Statement(sid="DenyInsecureTransport", effect="Deny", principals="*", actions=["sns:Publish"],
                  resources=[topic.arn], conditions={"Bool": {"aws:SecureTransport": "false"}}),
        *[Statement(sid=sid, principals={"Service": [service]}, actions=["sns:Publish"], resources=[topic.arn],
                    conditions={"StringEquals": {"aws:SourceAccount": account_id}})
          for sid, service in ((SIDS[p], p) for p in publishers)],
    ]
    aws.sns.TopicPolicy(f"{name}-topic-policy", arn=topic.arn, policy=policy_document(statements),
                        opts=child(parent))
    for index, endpoint in enumerate(subscriptions):
        protocol = subscription_protocol(endpoint)
        aws.sns.TopicSubscription(f"{name}-{protocol}-{index}", topic=topic.arn, protocol=protocol,
                                  endpoint=endpoint, opts=child(parent))
    return topic.arn


def approvals_rule_name(name: str) -> str:
    """The EventBridge rule `announce_approvals` creates, auto-named from `<name>-approved`."""
    return f"{name}-approved"


def announce_approvals(parent: pulumi.Resource, name: str, group: str, topic_arn: pulumi.Input[str],
                       tags: Mapping[str, str]) -> aws.cloudwatch.EventRule:
    """An EventBridge rule `<name>-approved` sending the approvals of GROUP's versions to TOPIC_ARN. Only the
    account that holds the group sees its events."""
    rule = aws.cloudwatch.EventRule(
        approvals_rule_name(name),
        description=f"{name}: a model package of {group} was approved",
        event_pattern=json.dumps({
            "source": ["aws.sagemaker"],
            "detail-type": ["SageMaker Model Package State Change"],
            "detail": {"ModelPackageGroupName": [group], "ModelApprovalStatus": ["Approved"]},
        }),
        tags=dict(tags),
        opts=child(parent),
    )
    aws.cloudwatch.EventTarget(f"{name}-approved-notify", rule=rule.name, arn=topic_arn, opts=child(parent))
    return rule
