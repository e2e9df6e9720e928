"""Stack config section `guardrails`: what `emlops check` (and the policy pack) allow and suppress in a stack."""

from __future__ import annotations

import difflib
import functools

from pydantic import Field, field_validator

from emlops.components.settings import Settings


MIN_REASON = 10


@functools.lru_cache(maxsize=1)
def rule_names() -> tuple[str, ...]:
    # imported when a suppression is checked, not when the config module loads
    from emlops.guardrails import RULE_NAMES

    return RULE_NAMES


@functools.lru_cache(maxsize=1)
def sagemaker_instance_types() -> frozenset[str]:
    """Every instance type SageMaker hosting, processing or training accepts (botocore's enums)."""
    from emlops.catalog.aws import api_enum

    shapes = ("ProductionVariantInstanceType", "ProcessingInstanceType", "TrainingInstanceType")
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


class GuardrailsConfig(Settings):
    """Guardrails of the stack: allowed SageMaker instance types and accepted exceptions to rules."""

    allowed_instance_types: list[str] = Field(
        default_factory=list,
        description="SageMaker instance types endpoints and monitoring jobs may use in this stack, e.g. "
        "`[ml.m5.large, ml.m5.xlarge]`. Default: any type botocore allows.")
    suppressions: list[SuppressionConfig] = Field(
        default_factory=list, description="Accepted exceptions to rules, each with a written reason. "
        "Suppressed violations are reported but do not fail `emlops check`. Default: none.")

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
