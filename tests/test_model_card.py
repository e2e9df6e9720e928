"""Model cards (pulumi-aws-native's ModelCard): what the component registers, what the mocks answer, the request
it makes (botocore's CreateModelCard, the content checked against the SageMaker SDK's model card shapes), the stack
file's rules, the production guardrail, and what prod ships."""

from __future__ import annotations

import copy
import json

import pulumi
import pytest

from emlops.catalog.requests import ApiRequest, to_api_request, validate_request
from emlops.catalog.resources_sagemaker import MODEL_CARD
from emlops.components.model_card import ModelCard, ModelCardContext, ModelCardSettings
from emlops.components.settings import Governance
from emlops.review.diff import diff_plans
from tests.conftest import ACCOUNT, REGION, run_components
from tests.test_config_models import PRODUCTION, error_of, model, platform

KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-4333-8444-555555555555"
SHARED_GROUP = "arn:aws:sagemaker:eu-west-1:444444444444:model-package-group/churn"
CARD = ModelCardSettings(
    intended_uses="Scores churn risk for retention campaigns", risk_rating="Medium",
    risk_explanation="A wrong score changes who gets an offer", owner="churn-team@example.com",
    business_stakeholders=["retention@example.com", "success@example.com"], evaluation_notes="AUC 0.87")
CONTEXT = ModelCardContext(card_name="prod-churn", model_name="churn", endpoint_name="prod-churn",
                           package_group=SHARED_GROUP, kms_key_arn=KEY, production=True,
                           governance=Governance({"team": "churn"}, protect=True))


def card_plan(settings: ModelCardSettings = CARD, context: ModelCardContext = CONTEXT):
    def program() -> None:
        card = ModelCard("prod-churn-model-card", settings, context)
        pulumi.export("card", {"arn": card.card_arn, "name": card.card_name})
    return run_components(program)


def test_the_card_names_its_group_and_endpoint_and_is_kept_in_production():
    plan = card_plan()
    (component,) = plan.by_type("emlops:index:ModelCard")
    (card,) = plan.by_type(MODEL_CARD.token)
    assert (card.name, card.parent, card.protect, card.retain_on_delete) == (
        "prod-churn-model-card-card", component.urn, True, True)
    assert card.inputs == {
        "modelCardName": "prod-churn",
        "modelCardStatus": "Draft",
        "content": {
            "modelOverview": {"modelOwner": "churn-team@example.com"},
            "intendedUses": {"intendedUses": "Scores churn risk for retention campaigns", "riskRating": "Medium",
                             "explanationsForRiskRating": "A wrong score changes who gets an offer"},
            "businessDetails": {"businessStakeholders": "retention@example.com, success@example.com"},
            "modelPackageDetails": {"modelPackageGroupName": SHARED_GROUP},
            "evaluationDetails": [{"name": "evaluation", "evaluationObservation": "AUC 0.87"}],
            "additionalInformation": {"customDetails": {"endpoint": "prod-churn"}},
        },
        "securityConfig": {"kmsKeyId": KEY},
        "tags": [{"key": "team", "value": "churn"}, {"key": "model", "value": "churn"}],
    }
    # Cloud Control's answer: the ARN (SageMaker lower-cases names in it) and the first version
    assert plan.outputs["card"] == {"arn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-card/prod-churn",
                                    "name": "prod-churn"}


def test_the_request_is_createmodelcard_with_the_content_as_sagemakers_json_document():
    (card,) = card_plan().by_type(MODEL_CARD.token)
    request = to_api_request(card.type, card.inputs)
    content = {
        "additional_information": {"custom_details": {"endpoint": "prod-churn"}},
        "business_details": {"business_stakeholders": "retention@example.com, success@example.com"},
        "evaluation_details": [{"evaluation_observation": "AUC 0.87", "name": "evaluation"}],
        "intended_uses": {"explanations_for_risk_rating": "A wrong score changes who gets an offer",
                          "intended_uses": "Scores churn risk for retention campaigns", "risk_rating": "Medium"},
        "model_overview": {"model_owner": "churn-team@example.com"},
        "model_package_details": {"model_package_group_name": SHARED_GROUP},
    }
    assert request == ApiRequest("sagemaker", "CreateModelCard", {
        "ModelCardName": "prod-churn", "ModelCardStatus": "Draft", "Content": json.dumps(content, sort_keys=True),
        "SecurityConfig": {"KmsKeyId": KEY},
        "Tags": [{"Key": "team", "Value": "churn"}, {"Key": "model", "Value": "churn"}]})
    assert validate_request(request) == []
    # the document is what the SageMaker SDK's model card shapes accept
    from sagemaker.core.shapes.model_card_shapes import ModelCardContent

    parsed = ModelCardContent.model_validate(json.loads(request.params["Content"]))
    assert (parsed.intended_uses.risk_rating.value, parsed.model_overview.model_owner) == (
        "Medium", "churn-team@example.com")


def test_the_request_check_refuses_what_sagemaker_would():
    (card,) = card_plan().by_type(MODEL_CARD.token)
    bad = copy.deepcopy(card.inputs)
    bad["modelCardStatus"] = "Published"
    bad["modelCardName"] = "prod_churn"
    assert [p.split(": ", 1)[1] for p in validate_request(to_api_request(card.type, bad))] == [
        "ModelCardName: 'prod_churn' does not match pattern [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
        "ModelCardStatus: 'Published' is not one of 'Draft', 'PendingReview', 'Approved', 'Archived'",
    ]


def test_new_content_is_a_new_version_of_the_card_and_a_new_name_a_new_card():
    base = card_plan()
    head = copy.deepcopy(base)
    head.get("prod-churn-model-card-card", MODEL_CARD.token).inputs["content"]["intendedUses"]["riskRating"] = "High"
    (change,) = diff_plans(base, head).resources
    assert (change.action, [(c.path, c.replaces) for c in change.changes]) == (
        "update", [("content.intendedUses.riskRating", False)])
    head.get("prod-churn-model-card-card", MODEL_CARD.token).inputs["modelCardName"] = "prod-churn-2"
    (change,) = diff_plans(base, head).resources
    assert change.action == "replace"


def test_settings_say_what_is_allowed():
    with pytest.raises(ValueError, match="must not hold empty names"):
        ModelCardSettings(intended_uses="x", owner="y", business_stakeholders=[" "])
    assert ModelCardSettings(intended_uses="x", owner="y").status == "Draft"


def test_a_production_card_without_a_rating_is_refused_before_anything_is_created():
    unrated = ModelCardSettings(intended_uses="Scores churn", owner="churn-team", risk_rating="Unknown")
    with pytest.raises(ValueError) as caught:
        card_plan(unrated)
    assert str(caught.value) == ("production models need a model card with a risk rating (High, Medium or Low); "
                                 "'churn' has Unknown")


# -- the stack file ----------------------------------------------------------------------------------------

PROD_AT = "stacks/Pulumi.dev.yaml: emlops:platform.models[0]"


@pytest.mark.parametrize("raw_model, expected", [
    (model(PRODUCTION, drop=("model_card",)),
     f"{PROD_AT}.model_card: production models need a model card (intended_uses, risk_rating, owner)"),
    (model(PRODUCTION, model_card={"intended_uses": "x", "owner": "y"}),
     f"{PROD_AT}.model_card.risk_rating: production models need a risk rating: High, Medium or Low, got none"),
    (model(PRODUCTION, model_card={"intended_uses": "x", "owner": "y", "risk_rating": "Unknown"}),
     f"{PROD_AT}.model_card.risk_rating: production models need a risk rating: High, Medium or Low, got Unknown"),
    (model(PRODUCTION, model_card={"intended_uses": "x", "owner": "y", "risk_rating": "Severe"}),
     f"{PROD_AT}.model_card.risk_rating: must be 'High', 'Medium', 'Low' or 'Unknown', got 'Severe'"),
    (model(PRODUCTION, model_card={"owner": "y", "risk_rating": "Low"}),
     f"{PROD_AT}.model_card.intended_uses: field required"),
])
def test_production_model_cards_fail_with_one_exact_line(raw_model, expected):
    assert error_of(platform(raw_model, production=True, environment="prod")) == expected


# -- what prod ships ---------------------------------------------------------------------------------------

def test_every_prod_model_has_a_rated_card_linked_to_its_shared_group(shipped_plan):
    plan = shipped_plan("prod")
    cards = {c.inputs["modelCardName"]: c for c in plan.by_type(MODEL_CARD.token)}
    assert sorted(cards) == ["prod-churn", "prod-doc-scoring", "prod-fraud"]
    assert {name: (c.inputs["content"]["intendedUses"]["riskRating"],
                   c.inputs["content"]["modelPackageDetails"]["modelPackageGroupName"],
                   c.inputs["content"]["additionalInformation"]["customDetails"]["endpoint"], c.protect)
            for name, c in cards.items()} == {
        "prod-churn": ("Medium", "arn:aws:sagemaker:eu-west-1:444444444444:model-package-group/churn",
                       "prod-churn", True),
        "prod-doc-scoring": ("Low", "arn:aws:sagemaker:eu-west-1:444444444444:model-package-group/doc-scoring",
                             "prod-doc-scoring", True),
        "prod-fraud": ("High", "arn:aws:sagemaker:eu-west-1:444444444444:model-package-group/fraud",
                       "prod-fraud", True)}
    # SageMaker's own key, not the data key, which the business viewers who read the cards may not use
    assert [c for c in cards.values() if "securityConfig" in c.inputs] == []
    for card in cards.values():
        assert validate_request(to_api_request(card.type, card.inputs)) == []


def test_the_catalogue_entry_answers_as_cloud_control_does():
    from emlops.offline.mocks import AwsIdentity

    where = AwsIdentity(ACCOUNT, REGION)
    state = {"modelCardName": "Prod-Churn", "modelCardStatus": "Draft"}
    # Cloud Control knows a card by its name; SageMaker lower-cases it in the ARN
    assert MODEL_CARD.physical_id_of(state, "urn:c", where) == "Prod-Churn"
    assert MODEL_CARD.computed_outputs("Prod-Churn", state, where) == {
        "modelCardVersion": 1, "creationTime": "2026-01-01T00:00:00Z", "modelCardProcessingStatus": "UnsetValue",
        "modelCardArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-card/prod-churn"}
    assert (MODEL_CARD.stateful, MODEL_CARD.taggable, MODEL_CARD.answers_tags_all) == (True, True, False)
    assert MODEL_CARD.replaces("securityConfig.kmsKeyId") and not MODEL_CARD.replaces("content.intendedUses")
