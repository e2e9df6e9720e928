"""What every section of the stack config shares: unknown keys are errors, values are frozen, and
surrounding whitespace is dropped. One definition, so every `emlops:platform` section behaves alike."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from emlops.catalog.aws import LOG_RETENTION_DAYS


class ConfigSection(BaseModel):
    """Base of every section of `emlops:platform`."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def check_log_retention(days: int) -> int:
    """`days` if CloudWatch Logs accepts it as a retention; else ValueError naming the allowed values."""
    if days not in LOG_RETENTION_DAYS:
        allowed = ", ".join(map(str, LOG_RETENTION_DAYS))
        raise ValueError(f"{days} is not a CloudWatch Logs retention; allowed: {allowed}")
    return days
