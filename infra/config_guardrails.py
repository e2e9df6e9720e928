"""Stack config section `guardrails`: what `emlops check` (and the policy pack) allow and suppress in a stack,
the stateful changes `emlops diff --fail-on-stateful` lets through, and the stack's monthly budget."""

from __future__ import annotations

import difflib
import functools
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from emlops.components.settings import AtKey, Settings, error_message


MIN_REASON = 10
MIN_ACCEPTANCE_WORDS = 5  # "at least a sentence": why the data may go, and who decided


@functools.lru_cache(maxsize=1)
def rule_names() -> tuple[str, ...]:
    # imported when a suppression is checked, not when the config module loads
    from emlops.guardrails import RULE_NAMES

    return RULE_NAMES


@functools.lru_cache(maxsize=1)
def sagemaker_instance_types() -> frozenset[str]:
    """Every instance type SageMaker hosting, processing, training or batch transform accepts (botocore's enums)."""
    from emlops.catalog.aws import api_enum

    shapes = ("ProductionVariantInstanceType", "ProcessingInstanceType", "TrainingInstanceType",
              "TransformInstanceType")
    return frozenset(t for shape in shapes for t in api_enum("sagemaker", shape))


class SuppressionConfig(Settings):
    """One accepted exception to a guardrail, for one resource, with the reason it was accepted."""

    rule: str = Field(description="Name of the rule, e.g. `s3-bucket-versioning` (see policy/README.md).")
    resource: str = Field(min_length=1, description="The resource the rule does not apply to: its logical name "
                          "(as `emlops preview` shows it) or its URN.")
    reason: str = Field(description=f"Why the exception is acceptable and who accepted it (at least {MIN_REASON} "
                        "characters); shown in every report.")

    @field_validator("rule")
    @classmethod
    def _known_rule(cls, value: str) -> str:
        known = rule_names()
        if value not in known:
            close = difflib.get_close_matches(value, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"unknown rule {value!r}; {hint}`emlops rules` lists them")
        return value

    @field_validator("reason")
    @classmethod
    def _written_reason(cls, value: str) -> str:
        if len(value.strip()) < MIN_REASON:
            raise ValueError(f"a suppression needs a written reason of at least {MIN_REASON} characters "
                             "(why the rule does not apply and who accepted it)")
        return value


class AcceptedStatefulChange(Settings):
    """One stateful resource a change of the stack may replace or delete, and why that is acceptable."""

    resource: str = Field(
        min_length=1, pattern=r"^[^\x00-\x1f\x7f]+$", json_schema_extra=error_message(
            "must be one resource's logical name (as `emlops preview` shows it) or its URN, on one line"),
        description="The stateful resource (key, bucket, feature group, package group, repository, ...) as the "
        "plan before the change names it: its logical name (as `emlops preview` shows it) or its URN.")
    change: Literal["replace", "delete"] = Field(
        description="What the change does to it: `replace` (a new one is created, the old one deleted) or "
        "`delete` (removed, or renamed without `aliases`).")
    reason: str = Field(
        pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]*$", json_schema_extra=error_message(
            "must be text without control characters"),
        description=f"Why losing what the resource holds is acceptable and who accepted it: at least a sentence "
        f"({MIN_ACCEPTANCE_WORDS} words or more); shown in the gate's report.")

    @field_validator("reason")
    @classmethod
    def _written_reason(cls, value: str) -> str:
        if len(value.split()) < MIN_ACCEPTANCE_WORDS:
            raise ValueError(f"an accepted stateful change needs a written reason of at least a sentence "
                             f"({MIN_ACCEPTANCE_WORDS} words or more): why losing what the resource holds is "
                             "acceptable and who accepted it")
        return value


class GuardrailsConfig(Settings):
    """Guardrails of the stack: allowed SageMaker instance types, accepted exceptions to rules and stateful changes,
    and the monthly budget."""

    allowed_instance_types: list[str] = Field(
        default_factory=list,
        description="SageMaker instance types endpoints, monitoring jobs and batch transforms may use in this stack, "
        "e.g. `[ml.m5.large, ml.m5.xlarge]`. Default: any type botocore allows.")
    suppressions: list[SuppressionConfig] = Field(
        default_factory=list, description="Accepted exceptions to rules, each with a written reason. "
        "Suppressed violations are reported but do not fail `emlops check`. Default: none.")
    accepted_stateful_changes: list[AcceptedStatefulChange] = Field(
        default_factory=list, description="Stateful resources a change may replace or delete, each with a written "
        "reason; any other replacement or deletion of a stateful resource fails `emlops diff --fail-on-stateful` "
        "(the pull-request gate). An acceptance is for one change: remove it once that change is deployed. "
        "Default: none.")

    monthly_budget_usd: Optional[float] = Field(
        None, gt=0, le=100_000_000, description="What the stack may cost a month, in USD. `emlops check` compares "
        "the high end of `emlops cost`'s estimate with it (with a price book), and the platform creates an AWS "
        "Budgets budget of this amount for the stack's account whose forecasts notify the alerts topic. "
        "Default: none (no budget).")
    monthly_budget_enforcement: Literal["advisory", "mandatory"] = Field(
        "advisory", description="Whether an estimate above `monthly_budget_usd` is an advisory violation or a "
        "mandatory one that fails `emlops check`. Default: advisory.")
    monthly_budget_alerts_percent: list[int] = Field(
        default_factory=lambda: [80, 100], min_length=1, max_length=10, description="Percentages of "
        "`monthly_budget_usd` at which the budget's forecast for the month notifies the alerts topic. "
        "Default: [80, 100].")

    @field_validator("monthly_budget_alerts_percent")
    @classmethod
    def _percentages(cls, values: list[int]) -> list[int]:
        if any(not 1 <= value <= 1000 for value in values) or len(set(values)) != len(values):
            raise ValueError(f"must be distinct whole percentages from 1 to 1000, got {values}")
        return sorted(values)

    @field_validator("allowed_instance_types")
    @classmethod
    def _known_instance_types(cls, values: list[str]) -> list[str]:
        known = sagemaker_instance_types()
        for value in values:
            if value not in known:
                close = difflib.get_close_matches(value, sorted(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"{value!r} is not a SageMaker instance type{hint}")
        if len(set(values)) != len(values):
            raise ValueError("instance types must be unique")
        return values

    @model_validator(mode="after")
    def _each_change_accepted_once(self) -> "GuardrailsConfig":
        seen: dict[tuple[str, str], int] = {}
        for index, accepted in enumerate(self.accepted_stateful_changes):
            key = (accepted.resource, accepted.change)
            if key in seen:
                raise AtKey(f"accepted_stateful_changes[{index}].resource",
                            f"the {accepted.change} of {accepted.resource!r} is already accepted by "
                            f"accepted_stateful_changes[{seen[key]}]; keep one")
            seen[key] = index
        return self
