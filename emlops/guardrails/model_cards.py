"""Model governance rules: every production endpoint's model has a SageMaker model card with a risk rating.

A card names the endpoint that serves its model (`content.additionalInformation.customDetails.endpoint`,
components/model_card.py); the rule finds each production endpoint's card by that name.
"""

from __future__ import annotations

from collections.abc import Iterator

from emlops.catalog.resources_sagemaker import ENDPOINT, MODEL_CARD
from emlops.guardrails.helpers import UNKNOWN, Finding, PolicyResource, Settings, get, of_type, stack_rule, text

RATED = ("High", "Medium", "Low")


@stack_rule("sagemaker-prod-model-card", severity="high", config=["production"],
            description="Every production endpoint's model has a SageMaker model card that names the endpoint "
                        "(content.additionalInformation.customDetails.endpoint) and rates its risk (High, Medium "
                        "or Low).",
            remediation="Add models[].model_card with intended_uses, owner and risk_rating (a ModelCard for the "
                        "model, components/model_card.py).")
def prod_model_card(resources: list[PolicyResource], settings: Settings) -> Iterator[Finding]:
    if not settings.production:
        return
    cards = {}
    for card in of_type(resources, MODEL_CARD.token):
        endpoint = get(card.props, "content", "additionalInformation", "customDetails", "endpoint")
        if endpoint is UNKNOWN:
            return  # a card whose endpoint is not known yet may be any endpoint's
        cards[text(endpoint)] = card
    for endpoint in of_type(resources, ENDPOINT.token):
        name = text(get(endpoint.props, "name"))
        if not name:
            continue
        card = cards.get(name)
        if card is None:
            yield f"endpoint {name!r} serves a model without a model card", endpoint.urn
            continue
        rating = get(card.props, "content", "intendedUses", "riskRating")
        if rating is not UNKNOWN and rating not in RATED:
            yield (f"the model card of endpoint {name!r} has no risk rating (High, Medium or Low), got "
                   f"{text(rating) or 'none'}", card.urn)


POLICIES = [prod_model_card]
