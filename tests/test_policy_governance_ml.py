"""Governance guardrails: production models' cards and audit trails. Each rule fails raw resources with the missing
setting (`BAD`) and passes the platform's own (ModelCard, AuditTrail)."""

from __future__ import annotations

import functools

import pulumi_aws as aws
import pytest

from emlops.components.audit import AuditTrail, AuditTrailContext, TrailSettings
from emlops.components.model_card import ModelCard, ModelCardContext, ModelCardSettings
from emlops.components.settings import Governance
from emlops.guardrails import Settings
from emlops.offline.plan import Plan
from tests.conftest import ACCOUNT, REGION, run_components
from tests.test_policy_baseline import TAGS, findings

PROD = Settings(production=True, environment="prod")
DEV = Settings(production=False, environment="dev")
RATED = ModelCardSettings(intended_uses="Scores churn risk", risk_rating="Medium", owner="churn-team")

BAD: dict[str, list[tuple[str, str]]] = {
    "sagemaker-prod-model-card": [
        ("bare-endpoint", "endpoint 'bare' serves a model without a model card"),
        ("stray-endpoint", "endpoint 'stray' serves a model without a model card"),
        ("unrated-card-card", "the model card of endpoint 'unrated' has no risk rating (High, Medium or Low), got none"),
        ("unknown-card-card", "the model card of endpoint 'unknown' has no risk rating (High, Medium or Low), got "
                              "Unknown"),
    ],
    "cloudtrail-trail-hardened": [
        ("bare-trail", "the trail does not log every region"),
        ("bare-trail", "the trail does not log global service events (IAM, STS)"),
        ("bare-trail", "the trail does not validate its log files"),
        ("bare-trail", "the trail's log files are not encrypted with a KMS key (kmsKeyId is not set)"),
    ],
}


def _endpoint(name: str) -> None:
    aws.sagemaker.Endpoint(f"{name}-endpoint", name=name, endpoint_config_name=f"{name}-config", tags=TAGS)


def _card(logical: str, endpoint: str, settings: ModelCardSettings) -> None:
    ModelCard(logical, settings, ModelCardContext(card_name=endpoint, model_name=endpoint, endpoint_name=endpoint,
                                                  package_group=endpoint, governance=Governance(TAGS, protect=True)))


@functools.cache
def bad_plan() -> Plan:
    """Endpoints without a card, with a card of another endpoint, with unrated cards."""
    def program() -> None:
        for name in ("bare", "stray", "unrated", "unknown"):
            _endpoint(name)
        _card("stray-card", "elsewhere", RATED)  # names an endpoint this stack does not have
        _card("unrated-card", "unrated", ModelCardSettings(intended_uses="x", owner="y"))
        _card("unknown-card", "unknown", ModelCardSettings(intended_uses="x", owner="y", risk_rating="Unknown"))
        aws.cloudtrail.Trail("bare-trail", name="bare", s3_bucket_name="bare-logs", is_multi_region_trail=False,
                             include_global_service_events=False, tags=TAGS)
    return run_components(program)


@functools.cache
def good_plan() -> Plan:
    def program() -> None:
        _endpoint("churn")
        _card("churn-card", "churn", RATED)
        AuditTrail("emlops-prod", TrailSettings(), AuditTrailContext(
            trail_name="emlops-prod", account_id=ACCOUNT, region=REGION, data_bucket_arns=["arn:aws:s3:::prod-data"],
            governance=Governance(TAGS, protect=True)))
    return run_components(program)


@pytest.mark.parametrize("rule", sorted(BAD))
def test_each_rule_fails_what_it_forbids(rule):
    assert findings(bad_plan(), rule, PROD) == BAD[rule]


@pytest.mark.parametrize("rule", sorted(BAD))
def test_each_rule_passes_the_platforms_model_cards_and_trails(rule):
    assert findings(good_plan(), rule, PROD) == []


def test_model_cards_are_a_production_rule_and_trails_are_checked_everywhere():
    assert findings(bad_plan(), "sagemaker-prod-model-card", DEV) == []
    assert findings(bad_plan(), "cloudtrail-trail-hardened", DEV) == BAD["cloudtrail-trail-hardened"]


def test_the_shipped_prod_stack_passes(shipped_plan):
    for rule in BAD:
        assert findings(shipped_plan("prod"), rule, PROD) == [], rule
