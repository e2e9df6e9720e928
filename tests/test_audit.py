"""The audit trail: a trail of the stack's own (AuditTrail: its key and bucket policies as CloudTrail requires, data
events of the platform's buckets, the CreateTrail request), or the organisation's, looked up through Cloud Control
when deployed and shown as unknown offline; production stacks need one of the two; what the shipped stacks use."""

from __future__ import annotations

import functools
import json

import pulumi
import pytest

from emlops.catalog.requests import ApiRequest, to_api_request, validate_request
from emlops.components.audit import (AuditSettings, AuditTrail, AuditTrailContext, TrailSettings,
                                     check_organization_trail)
from emlops.components.settings import Governance
from emlops.offline.mocks import _DATA_SOURCES, AwsIdentity
from emlops.offline.plan import Plan
from tests.conftest import ACCOUNT, REGION, run_components
from tests.test_config_models import NETWORK, PRODUCTION, error_of, platform

TRAIL = "aws:cloudtrail/trail:Trail"
ARN = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/emlops-prod"
BUCKETS = ["arn:aws:s3:::prod-datasets-1a2b3c4", "arn:aws:s3:::prod-artifacts-5d6e7f8"]
ORG_TRAIL = "arn:aws:cloudtrail:us-east-1:777777777777:trail/acme-organization-trail"
CLOUDTRAIL = {"Service": ["cloudtrail.amazonaws.com"]}


@functools.cache
def trail_plan(data_events: bool = True) -> Plan:
    def program() -> None:
        trail = AuditTrail("emlops-prod", TrailSettings(data_events=data_events), AuditTrailContext(
            trail_name="emlops-prod", account_id=ACCOUNT, region=REGION, data_bucket_arns=BUCKETS,
            access_log_bucket="prod-access-logs-0a1b2c3", governance=Governance({"team": "ml"}, protect=True)))
        pulumi.export("trail", {"arn": trail.trail_arn, "bucket": trail.bucket_name})
    return run_components(program)


def test_the_trail_logs_every_region_signs_its_files_and_records_the_platform_buckets_objects():
    plan = trail_plan()
    (trail,) = plan.by_type(TRAIL)
    bucket = plan.outputs["trail"]["bucket"]
    assert (trail.name, trail.protect, trail.retain_on_delete) == ("emlops-prod-trail", True, True)
    assert {k: v for k, v in trail.inputs.items() if k not in ("kmsKeyId", "advancedEventSelectors")} == {
        "name": "emlops-prod", "s3BucketName": bucket, "isMultiRegionTrail": True,
        "includeGlobalServiceEvents": True, "enableLogFileValidation": True, "enableLogging": True,
        "tags": {"team": "ml"}}
    assert trail.inputs["kmsKeyId"].startswith(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/")
    # the trail's own key: the one whose policy names the trail
    assert "CloudTrailEncryptLogs" in plan.get("emlops-prod-logs-key", "aws:kms/key:Key").inputs["policy"]
    assert trail.inputs["advancedEventSelectors"] == [
        {"name": "Management events", "fieldSelectors": [{"field": "eventCategory", "equals": ["Management"]}]},
        {"name": "S3 data events of the platform's buckets", "fieldSelectors": [
            {"field": "eventCategory", "equals": ["Data"]},
            {"field": "resources.type", "equals": ["AWS::S3::Object"]},
            {"field": "resources.ARN", "startsWiths": [f"{b}/" for b in BUCKETS]}]}]
    assert plan.outputs["trail"]["arn"] == ARN
    assert trail_plan(data_events=False).by_type(TRAIL)[0].inputs["advancedEventSelectors"] == [
        {"name": "Management events", "fieldSelectors": [{"field": "eventCategory", "equals": ["Management"]}]}]


def test_the_create_request_is_createtrail_and_valid():
    (trail,) = trail_plan().by_type(TRAIL)
    request = to_api_request(trail.type, trail.inputs)
    assert request == ApiRequest("cloudtrail", "CreateTrail", {
        "Name": "emlops-prod", "S3BucketName": trail.inputs["s3BucketName"], "KmsKeyId": trail.inputs["kmsKeyId"],
        "IsMultiRegionTrail": True, "IncludeGlobalServiceEvents": True, "EnableLogFileValidation": True,
        "TagsList": [{"Key": "team", "Value": "ml"}]})
    assert validate_request(request) == []


def test_the_bucket_and_key_policies_let_exactly_this_trail_deliver_and_encrypt():
    plan = trail_plan()
    bucket = plan.outputs["trail"]["bucket"]
    statements = json.loads(plan.get("emlops-prod-logs-policy").inputs["policy"])["Statement"]
    assert statements[-2:] == [
        {"Sid": "CloudTrailAclCheck", "Effect": "Allow", "Principal": CLOUDTRAIL, "Action": ["s3:GetBucketAcl"],
         "Resource": [f"arn:aws:s3:::{bucket}"], "Condition": {"StringEquals": {"aws:SourceArn": [ARN]}}},
        {"Sid": "CloudTrailWrite", "Effect": "Allow", "Principal": CLOUDTRAIL, "Action": ["s3:PutObject"],
         "Resource": [f"arn:aws:s3:::{bucket}/AWSLogs/{ACCOUNT}/*"],
         "Condition": {"StringEquals": {"aws:SourceArn": [ARN], "s3:x-amz-acl": "bucket-owner-full-control"}}}]
    assert [s["Sid"] for s in statements[:2]] == ["DenyInsecureTransport", "DenyOutdatedTls"]
    key = json.loads(plan.get("emlops-prod-logs-key", "aws:kms/key:Key").inputs["policy"])["Statement"]
    assert key[-2:] == [
        {"Sid": "CloudTrailEncryptLogs", "Effect": "Allow", "Principal": CLOUDTRAIL, "Action": ["kms:GenerateDataKey*"],
         "Resource": ["*"], "Condition": {"StringEquals": {"aws:SourceArn": [ARN]}, "StringLike": {
             "kms:EncryptionContext:aws:cloudtrail:arn": f"arn:aws:cloudtrail:*:{ACCOUNT}:trail/*"}}},
        {"Sid": "CloudTrailDescribeKey", "Effect": "Allow", "Principal": CLOUDTRAIL, "Action": ["kms:DescribeKey"],
         "Resource": ["*"], "Condition": {"StringEquals": {"aws:SourceArn": [ARN]}}}]
    # the log files expire after the retention, the bucket's access is logged
    lifecycle = plan.get("emlops-prod-logs-lifecycle").inputs["rules"][0]
    assert (lifecycle["id"], lifecycle["expiration"]["days"]) == ("expire-trail-logs", 2555)
    assert plan.get("emlops-prod-logs-logging").inputs["targetBucket"] == "prod-access-logs-0a1b2c3"


def test_the_trail_checks_its_context_before_anything_is_created():
    with pytest.raises(ValueError) as caught:
        AuditTrail("t", TrailSettings(), AuditTrailContext(trail_name="emlops-prod", account_id=ACCOUNT,
                                                           region=REGION))
    assert str(caught.value) == ("data_events logs the platform buckets' object reads and writes: give "
                                 "data_bucket_arns")
    with pytest.raises(ValueError) as caught:
        AuditTrail("t", TrailSettings(), AuditTrailContext(trail_name="a b", account_id=ACCOUNT, region=REGION))
    assert str(caught.value) == ("trail_name 'a b' must be 3-128 letters, digits, '.', '_' or '-', starting with a "
                                 "letter or digit")


# -- the organisation's trail --------------------------------------------------------------------------------

def test_offline_the_organisation_trail_is_shown_unknown_and_not_judged():
    answer = _DATA_SOURCES["aws-native:cloudtrail:getTrail"](AwsIdentity(ACCOUNT, REGION), {"trailName": ORG_TRAIL})
    unknown = f"[unknown: {ORG_TRAIL}, looked up when the stack is deployed]"
    assert answer == {"arn": ORG_TRAIL, "s3BucketName": unknown, "kmsKeyId": unknown}
    assert check_organization_trail(answer, ORG_TRAIL) == ORG_TRAIL


def test_deployed_the_organisation_trail_must_log_every_region_and_validate_its_files():
    good = {"s3BucketName": "org-trail-logs", "isLogging": True, "isMultiRegionTrail": True,
            "isOrganizationTrail": True, "enableLogFileValidation": True}
    assert check_organization_trail(good, ORG_TRAIL) == ORG_TRAIL
    with pytest.raises(ValueError) as caught:
        check_organization_trail({**good, "isLogging": False, "enableLogFileValidation": None}, ORG_TRAIL)
    assert str(caught.value) == (f"audit.organization_trail: {ORG_TRAIL} is not logging, does not validate its log "
                                 "files")


# -- the stack file ---------------------------------------------------------------------------------------------

AT = "stacks/Pulumi.dev.yaml: emlops:platform"


@pytest.mark.parametrize("audit, expected", [
    ({}, f"{AT}.audit: give exactly one of trail, organization_trail"),
    ({"trail": {}, "organization_trail": {"trail_arn": ORG_TRAIL}},
     f"{AT}.audit: give exactly one of trail, organization_trail (got both)"),
    ({"organization_trail": {"trail_arn": "org-trail"}},
     f"{AT}.audit.organization_trail.trail_arn: must be a CloudTrail trail ARN, arn:aws:cloudtrail:<region>:"
     "<account>:trail/<name>, got 'org-trail'"),
    ({"trail": {"retention_days": 0}}, f"{AT}.audit.trail.retention_days: must be greater than or equal to 1, got 0"),
])
def test_bad_audit_settings_are_one_line(audit, expected):
    assert error_of(platform(audit=audit)) == expected


def test_production_stacks_need_an_audit_trail():
    three_zones = {**NETWORK, "private_subnet_ids": [*NETWORK["private_subnet_ids"], "subnet-0123456789abcdef2"]}
    assert error_of(platform(PRODUCTION, production=True, environment="prod", network=three_zones)) == (
        f"{AT}.audit: production stacks record their API activity: add audit.trail (a trail of the stack's own) or "
        "audit.organization_trail (the organisation's trail, checked when deployed)")
    assert AuditSettings.model_validate({"trail": {}}).trail == TrailSettings(retention_days=2555, data_events=True)


# -- what the shipped stacks use ------------------------------------------------------------------------------

def test_prod_makes_its_trail_over_its_data_buckets_and_shared_checks_the_organisations(shipped_plan):
    prod = shipped_plan("prod")
    (trail,) = prod.by_type(TRAIL)
    assert trail.inputs["name"] == "emlops-prod" and trail.protect
    buckets = [f"arn:aws:s3:::{prod.get(f'prod-{b}-bucket', 'aws:s3/bucket:Bucket').inputs['bucket']}/"
               for b in ("datasets", "artifacts", "capture", "inference")]
    assert trail.inputs["advancedEventSelectors"][1]["fieldSelectors"][2]["startsWiths"] == buckets
    assert prod.outputs["auditTrailArn"] == "arn:aws:cloudtrail:eu-west-1:333333333333:trail/emlops-prod"
    shared = shipped_plan("shared")
    assert shared.by_type(TRAIL) == []
    assert shared.outputs["auditTrailArn"] == ORG_TRAIL
    # the look-up goes through the stack's Cloud Control provider, pinned to its account
    (provider,) = shared.by_type("pulumi:providers:aws-native")
    assert provider.name == "aws-native-shared"


# -- the catalogue and the event selectors' request ------------------------------------------------------------

def test_the_trail_and_its_catalogue_entry():
    from emlops.catalog.resources_operations import TRAIL as ENTRY

    where = AwsIdentity(ACCOUNT, REGION)
    state = {"name": "emlops-prod", "s3BucketName": "logs"}
    assert ENTRY.physical_id_of(state, "urn:t", where) == "emlops-prod"
    assert ENTRY.computed_outputs("emlops-prod", state, where) == {"homeRegion": REGION, "arn": ARN}
    assert (ENTRY.stateful, ENTRY.taggable, ENTRY.label) == (True, True, "CloudTrail trail")
    assert ENTRY.replaces("name") and not ENTRY.replaces("advancedEventSelectors") and not ENTRY.replaces("kmsKeyId")
    assert ENTRY.naming.problem("ab") == "is 2 characters; AWS needs at least 3"


def test_the_event_selectors_are_what_cloudtrail_takes():
    """The provider sets them with PutEventSelectors after CreateTrail: the same request, checked against botocore."""
    (trail,) = trail_plan().by_type(TRAIL)
    selectors = [{"Name": s["name"], "FieldSelectors": [
        {{"field": "Field", "equals": "Equals", "startsWiths": "StartsWith"}[k]: v for k, v in f.items()}
        for f in s["fieldSelectors"]]} for s in trail.inputs["advancedEventSelectors"]]
    request = ApiRequest("cloudtrail", "PutEventSelectors", {"TrailName": "emlops-prod",
                                                             "AdvancedEventSelectors": selectors})
    assert validate_request(request) == []
    selectors[1]["FieldSelectors"][0]["Equals"] = []
    assert [p.split(": ", 1)[1] for p in validate_request(request)] == [
        "AdvancedEventSelectors[1].FieldSelectors[0].Equals: length 0 is below the minimum 1"]
