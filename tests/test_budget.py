"""guardrails.monthly_budget_usd: the AWS Budgets budget the platform builds (forecasts to the alerts topic, which
AWS Budgets may publish to), the catalogue's entry, `emlops check`'s comparison with the stack's high estimate,
and the stack file's one-line errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from emlops.catalog.resources_operations import BUDGET
from emlops.cli import app
from emlops.offline.mocks import AwsIdentity
from emlops.program.config import ConfigError
from emlops.program.config_guardrails import GuardrailsConfig
from emlops.program.platform import parse_platform_config
from emlops.review.check import budget_findings
from emlops.review.prices import PriceBook
from tests.conftest import ACCOUNT, BASE_SETTINGS, ROOT, edit_stack, run_platform

runner = CliRunner()
TEST_BOOK = ROOT / "tests" / "data" / "price-book.test.json"
BUDGET_TYPE = "aws:budgets/budget:Budget"


def statements(plan, name: str) -> dict[str, dict]:
    return {s["Sid"]: s for s in json.loads(plan.get(name).inputs["policy"])["Statement"]}


def test_a_budget_notifies_the_alerts_topic_of_its_forecasts():
    plan = run_platform({"guardrails": {"monthly_budget_usd": 2500, "monthly_budget_alerts_percent": [100, 50]},
                         "alerts": {"email": ["ml-team@example.com"]}})
    [budget] = plan.by_type(BUDGET_TYPE)
    topic = f"arn:aws:sns:eu-west-1:{ACCOUNT}:" + plan.get("dev-alerts-topic").inputs["name"]
    assert (budget.name, budget.parent) == ("dev-budget", plan.get("dev", "emlops:index:MlPlatform").urn)
    assert {k: v for k, v in budget.inputs.items() if k != "tags"} == {
        "name": "emlops-dev-monthly", "budgetType": "COST", "timeUnit": "MONTHLY", "limitAmount": "2500.00",
        "limitUnit": "USD", "notifications": [
            {"comparisonOperator": "GREATER_THAN", "notificationType": "FORECASTED", "threshold": percent,
             "thresholdType": "PERCENTAGE", "subscriberSnsTopicArns": [topic]} for percent in (50, 100)]}
    assert budget.inputs["tags"]["environment"] == "dev"
    # AWS Budgets publishes to the topic and encrypts with its key, for this account only
    assert statements(plan, "dev-alerts-topic-policy")["BudgetsOfThisAccount"] == {
        "Sid": "BudgetsOfThisAccount", "Effect": "Allow", "Principal": {"Service": ["budgets.amazonaws.com"]},
        "Action": ["sns:Publish"], "Resource": [topic], "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}
    key_use = statements(plan, "dev-alerts-topic-key-key")["ServicesUseKeyForThisAccount"]
    assert key_use["Principal"] == {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com",
                                                "budgets.amazonaws.com"]}
    assert key_use["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_a_budget_alone_makes_the_alerts_topic():
    assert [r.type for r in run_platform({}).resources if r.type in ("aws:sns/topic:Topic", BUDGET_TYPE)] == []
    plan = run_platform({"guardrails": {"monthly_budget_usd": 300}})
    assert [r.name for r in plan.resources if r.type in ("aws:sns/topic:Topic", BUDGET_TYPE)] == [
        "dev-alerts-topic", "dev-budget"]


def test_without_a_budget_only_alarms_and_rules_publish():
    plan = run_platform({"alerts": {"email": ["ml-team@example.com"]}, "registry": {"package_groups": ["churn"]}})
    assert plan.by_type(BUDGET_TYPE) == []
    assert list(statements(plan, "dev-alerts-topic-policy")) == [
        "DenyInsecureTransport", "CloudWatchAlarmsOfThisAccount", "EventBridgeRulesOfThisAccount"]
    key_use = statements(plan, "dev-alerts-topic-key-key")["ServicesUseKeyForThisAccount"]
    assert key_use["Principal"] == {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]}


def test_the_catalogue_entry_answers_as_aws_does():
    state = {"name": "emlops-prod-monthly"}
    where = AwsIdentity(ACCOUNT, "eu-west-1")
    assert BUDGET.physical_id_of(state, "urn:b", where) == f"{ACCOUNT}:emlops-prod-monthly"
    assert BUDGET.computed_outputs(f"{ACCOUNT}:emlops-prod-monthly", state, where) == {
        "accountId": ACCOUNT, "arn": f"arn:aws:budgets::{ACCOUNT}:budget/emlops-prod-monthly"}
    assert BUDGET.computed_outputs("x", state, AwsIdentity(ACCOUNT, "cn-north-1"))["arn"] == (
        f"arn:aws-cn:budgets::{ACCOUNT}:budget/emlops-prod-monthly")
    assert BUDGET.naming.problem("a:b") == "has characters AWS does not allow (the name must match [^:\\\\]+)"
    assert BUDGET.naming.problem("b" * 101) == "is 101 characters; AWS allows 100"


def test_shipped_stacks_budgets(shipped_plan):
    budgets = {stack: [(r.name, r.inputs["limitAmount"]) for r in shipped_plan(stack).by_type(BUDGET_TYPE)]
               for stack in ("dev", "staging", "prod", "shared")}
    assert budgets == {"dev": [], "staging": [("staging-budget", "4000.00")], "prod": [("prod-budget", "9000.00")],
                       "shared": [("shared-budget", "1000.00")]}


@pytest.mark.parametrize(("enforcement", "budget"), [("advisory", 5000), ("mandatory", 5000)])
def test_a_high_estimate_above_the_budget_is_a_violation(shipped_plan, enforcement, budget):
    guardrails = GuardrailsConfig(monthly_budget_usd=budget, monthly_budget_enforcement=enforcement)
    [violation], warnings = budget_findings(shipped_plan("prod"), guardrails, PriceBook.load(TEST_BOOK))
    assert warnings == []
    assert (violation.rule, violation.severity, violation.enforcement, violation.name) == (
        "stack-monthly-budget", "medium", enforcement, None)
    # the test book's high estimate of prod, checked by hand in tests/test_cost.py
    assert violation.message == ("the high estimate of $5,634.91 a month (test prices) is above "
                                 "guardrails.monthly_budget_usd ($5,000.00); `emlops cost prod` shows what it is "
                                 "made of")


def test_an_estimate_within_the_budget_or_no_price_book(shipped_plan):
    within = GuardrailsConfig(monthly_budget_usd=5634.91)
    assert budget_findings(shipped_plan("prod"), within, PriceBook.load(TEST_BOOK)) == ([], [])
    assert budget_findings(shipped_plan("prod"), within, None) == ([], [
        "guardrails.monthly_budget_usd is not checked: no price book (write one with `emlops prices refresh` at "
        "prices/aws-price-book.json, or pass --prices FILE)"])
    assert budget_findings(shipped_plan("prod"), GuardrailsConfig(), PriceBook.load(TEST_BOOK)) == ([], [])
    # compared exactly: the estimate is $5,634.907..., above a budget of $5,634.90
    [above], _ = budget_findings(shipped_plan("prod"), GuardrailsConfig(monthly_budget_usd=5634.90),
                                 PriceBook.load(TEST_BOOK))
    assert above.rule == "stack-monthly-budget"


def test_emlops_check_fails_on_a_mandatory_budget(project_copy, monkeypatch):
    edit_stack(project_copy, "prod", "      monthly_budget_usd: 9000\n", "      monthly_budget_usd: 5000\n")
    monkeypatch.chdir(project_copy)
    result = runner.invoke(app, ["check", "prod", "--prices", str(TEST_BOOK), "--format", "markdown"])
    assert result.exit_code == 1, result.output
    assert ("| medium | `stack-monthly-budget` | `(stack)` | the high estimate of $5,634.91 a month (test prices) is "
            "above guardrails.monthly_budget_usd ($5,000.00); `emlops cost prod` shows what it is made of | Lower the "
            "autoscaling maximums, instance types or schedules, or raise the budget with the budget owner's "
            "agreement |") in result.output.splitlines()
    result = runner.invoke(app, ["check", "prod", "--prices", "nowhere.json"])
    assert (result.exit_code, result.output) == (2, "--prices: nowhere.json: no such price book\n")


@pytest.mark.parametrize(("guardrails", "message"), [
    ({"monthly_budget_usd": 0}, "guardrails.monthly_budget_usd: must be greater than 0, got 0"),
    ({"monthly_budget_usd": "lots"}, "guardrails.monthly_budget_usd: must be a number, got 'lots'"),
    ({"monthly_budget_enforcement": "hard"},
     "guardrails.monthly_budget_enforcement: must be 'advisory' or 'mandatory', got 'hard'"),
    ({"monthly_budget_alerts_percent": [80, 80]},
     "guardrails.monthly_budget_alerts_percent: must be distinct whole percentages from 1 to 1000, got [80, 80]"),
    ({"monthly_budget_alerts_percent": []},
     "guardrails.monthly_budget_alerts_percent: must have at least 1 item(s), got []"),
])
def test_a_bad_budget_setting_is_one_line_naming_the_key(guardrails, message):
    with pytest.raises(ConfigError) as error:
        parse_platform_config({**BASE_SETTINGS, "guardrails": guardrails}, "stacks/Pulumi.dev.yaml")
    assert str(error.value) == f"stacks/Pulumi.dev.yaml: emlops:platform.{message}"
