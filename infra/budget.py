"""The stack's AWS Budgets budget: `guardrails.monthly_budget_usd` a month of the account's cost, whose forecast
for the month notifies the alerts topic at each of `guardrails.monthly_budget_alerts_percent`.

Each environment has an account of its own (the stack's `account_id`), so the budget watches the account's whole
cost, whatever created it. AWS Budgets publishes to the alerts topic as `budgets.amazonaws.com`: the topic's
policy and its key let it, for this account only (`alerts_publishers`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

import pulumi
import pulumi_aws as aws

from emlops.components.alerts import PUBLISHERS
from emlops.components.options import child
from emlops.program.config_guardrails import GuardrailsConfig

BUDGETS = "budgets.amazonaws.com"


def budget_name(environment: str) -> str:
    return f"emlops-{environment}-monthly"


def alerts_publishers(guardrails: GuardrailsConfig) -> tuple[str, ...]:
    """The services that publish to the alerts topic: alarms and rules, and AWS Budgets with a budget."""
    return PUBLISHERS + ((BUDGETS,) if guardrails.monthly_budget_usd is not None else ())


def budget(parent: pulumi.Resource, environment: str, guardrails: GuardrailsConfig,
           alerts_topic_arn: Optional[pulumi.Input[str]], tags: Mapping[str, str]) -> Optional[aws.budgets.Budget]:
    """`<environment>-budget`, a monthly cost budget (none without `guardrails.monthly_budget_usd`)."""
    if guardrails.monthly_budget_usd is None:
        return None
    if alerts_topic_arn is None:  # the platform makes the topic whenever a budget is set
        raise ValueError("a budget needs the alerts topic to notify")
    return aws.budgets.Budget(
        f"{environment}-budget", name=budget_name(environment), budget_type="COST", time_unit="MONTHLY",
        limit_amount=f"{guardrails.monthly_budget_usd:.2f}", limit_unit="USD",
        notifications=[aws.budgets.BudgetNotificationArgs(
            comparison_operator="GREATER_THAN", notification_type="FORECASTED", threshold=percent,
            threshold_type="PERCENTAGE", subscriber_sns_topic_arns=[alerts_topic_arn])
            for percent in guardrails.monthly_budget_alerts_percent],
        tags=dict(tags), opts=child(parent))
