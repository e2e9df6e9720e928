"""Audit rules: a CloudTrail trail records every region, signs its log files and encrypts them with KMS.

Production stacks must have an audit trail (their own, or the organisation's, which is no resource of the stack and
which the deploy checks instead): that is the stack file's rule (`audit`, infra/rules.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from emlops.catalog.resources_operations import TRAIL
from emlops.guardrails.helpers import UNKNOWN, Settings, get, resource_rule


@resource_rule("cloudtrail-trail-hardened", types=[TRAIL.token], severity="high",
               description="CloudTrail trails log every region (isMultiRegionTrail, with global service events), "
                           "validate their log files (enableLogFileValidation) and encrypt them with a KMS key "
                           "(kmsKeyId).",
               remediation="Use AuditTrail (components/audit.py, `audit.trail`); on a raw trail set "
                           "is_multi_region_trail, include_global_service_events, enable_log_file_validation and "
                           "kms_key_id.")
def trail_hardened(props: Any, settings: Settings) -> Iterator[str]:
    for key, what in (("isMultiRegionTrail", "does not log every region"),
                      ("includeGlobalServiceEvents", "does not log global service events (IAM, STS)"),
                      ("enableLogFileValidation", "does not validate its log files")):
        value = get(props, key)
        if value is not UNKNOWN and value is not True:
            yield f"the trail {what}"
    if get(props, "kmsKeyId") in (None, ""):
        yield "the trail's log files are not encrypted with a KMS key (kmsKeyId is not set)"


POLICIES = [trail_hardened]
