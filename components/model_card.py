"""ModelCard: a served model's SageMaker model card, what the model is for and how risky it is, for the people who
approve and follow it (pulumi-aws-native's `aws-native:sagemaker:ModelCard`, AWS's CloudFormation resource through
Cloud Control; pulumi_aws has none).

    model_card:
      intended_uses: Scores active customers' risk of churning for the retention campaigns.
      risk_rating: Medium
      risk_explanation: A wrong score changes who gets an offer; no credit or legal decision rests on it.
      owner: churn-team@example.com
      business_stakeholders: [retention-marketing@example.com, customer-success@example.com]
      evaluation_notes: AUC 0.87 on the held-out quarter; recall is lower for customers under 3 months.

The card is linked to the model's package group (`model_package_details`: the versions people approve) and names
the endpoint that serves it (`additional_information.custom_details.endpoint`), which the production guardrail
reads. Its content is encrypted with the platform's data key. A card is the documented record of a model
(SageMaker keeps every version of it), so production protects and retains it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

import pulumi
from pydantic import Field, field_validator

from emlops.components.options import child, type_token
from emlops.components.settings import Governance, Settings

__all__ = ["ModelCard", "ModelCardContext", "ModelCardSettings", "RISK_RATINGS", "card_content"]

RESOURCE_TYPE = "aws-native:sagemaker:ModelCard"
# SageMaker's RiskRating; `Unknown` is a rating nobody has made yet.
RISK_RATINGS = ("High", "Medium", "Low", "Unknown")
RATED = ("High", "Medium", "Low")
_TEXT = 2048  # SageMaker's limit on each free-text field of a card


class ModelCardSettings(Settings):
    """A served model's card: what it is for, its risk, who owns it and who relies on it (`models[].model_card`)."""

    intended_uses: str = Field(min_length=1, max_length=_TEXT, description="What the model is for and what it must "
                               "not be used for (up to 2048 characters).")
    risk_rating: Optional[Literal["High", "Medium", "Low", "Unknown"]] = Field(
        None, description="The model's risk rating: High, Medium, Low or Unknown. Required in production stacks "
        "(High, Medium or Low). Default: none.")
    risk_explanation: Optional[str] = Field(None, min_length=1, max_length=_TEXT, description="Why the model has "
                                            "that rating. Default: none.")
    owner: str = Field(min_length=1, max_length=1024, description="Who owns the model (a team or e-mail address).")
    business_stakeholders: list[str] = Field(default_factory=list, description="The people or teams the model "
                                             "serves (e-mail addresses or names). Default: none.")
    business_problem: Optional[str] = Field(None, min_length=1, max_length=_TEXT, description="The business problem "
                                            "the model addresses. Default: none.")
    evaluation_notes: Optional[str] = Field(None, min_length=1, max_length=2096, description="What its evaluation "
                                            "found (metrics, known weaknesses). Default: none.")
    status: Literal["Draft", "PendingReview", "Approved", "Archived"] = Field(
        "Draft", description="The card's review status in SageMaker: Draft, PendingReview, Approved or Archived. "
        "Default: Draft.")

    @field_validator("business_stakeholders")
    @classmethod
    def _stakeholders(cls, values: list[str]) -> list[str]:
        if any(not value.strip() for value in values):
            raise ValueError("must not hold empty names")
        if len(", ".join(values)) > _TEXT:
            raise ValueError(f"together must be at most {_TEXT} characters")
        return values


@dataclass(frozen=True)
class ModelCardContext:
    """What the platform supplies to a `ModelCard`."""

    card_name: str
    """The card's name in SageMaker (`<environment>-<model>`, unique in the account)."""
    model_name: str
    """The model the card describes (its `models[]` name)."""
    endpoint_name: str
    """The endpoint that serves it (named on the card for the production guardrail)."""
    package_group: str
    """The model's package group: its name, or its ARN when it lives in a shared registry's account."""
    kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key the card's content is encrypted with. Default: an AWS owned key."""
    production: bool = False
    """Production cards need a risk rating (High, Medium or Low). Default: false."""
    governance: Governance = field(default_factory=Governance)
    """Tags of the card, and whether production protects and retains it."""


def card_content(settings: ModelCardSettings, context: ModelCardContext) -> dict:
    """The card's content as the provider's inputs (pulumi-aws-native's names; the provider sends them to SageMaker
    in its snake_case JSON)."""
    intended = {"intended_uses": settings.intended_uses, "risk_rating": settings.risk_rating,
                "explanations_for_risk_rating": settings.risk_explanation}
    business = {"business_problem": settings.business_problem,
                "business_stakeholders": ", ".join(settings.business_stakeholders) or None}
    content = {
        "model_overview": {"model_owner": settings.owner},
        "intended_uses": {k: v for k, v in intended.items() if v is not None},
        "business_details": {k: v for k, v in business.items() if v is not None} or None,
        "model_package_details": {"model_package_group_name": context.package_group},
        "evaluation_details": [{"name": "evaluation", "evaluation_observation": settings.evaluation_notes}]
        if settings.evaluation_notes else None,
        "additional_information": {"custom_details": {"endpoint": context.endpoint_name}},
    }
    return {key: value for key, value in content.items() if value is not None}


class ModelCard(pulumi.ComponentResource):
    """One served model's SageMaker model card (pulumi-aws-native), linked to its package group."""

    card: pulumi.CustomResource
    card_arn: pulumi.Output[str]
    card_name: pulumi.Output[str]

    def __init__(self, name: str, settings: ModelCardSettings, context: ModelCardContext,
                 opts: Optional[pulumi.ResourceOptions] = None):
        if context.production and settings.risk_rating not in RATED:
            raise ValueError(f"production models need a model card with a risk rating (High, Medium or Low); "
                             f"{context.model_name!r} has {settings.risk_rating or 'none'}")
        super().__init__(type_token("ModelCard"), name, None, opts)
        # imported here: only stacks with model cards pay for the aws-native package
        import pulumi_aws_native as aws_native

        tags = {**context.governance.tags, "model": context.model_name}
        self.card = aws_native.sagemaker.ModelCard(
            f"{name}-card",
            model_card_name=context.card_name,
            model_card_status=settings.status,
            content=card_content(settings, context),
            security_config={"kms_key_id": context.kms_key_arn} if context.kms_key_arn is not None else None,
            # Cloud Control takes tags as a list of key/value pairs
            tags=[{"key": key, "value": value} for key, value in tags.items()],
            opts=child(self, protect=context.governance.protect),
        )
        self.card_arn = self.card.model_card_arn
        self.card_name = self.card.model_card_name
        self.register_outputs({"cardArn": self.card_arn, "cardName": self.card_name})
