"""The code a data pipeline's Lambda step runs in AWS: claim, gate (quarantine) and ingest, against moto's S3 and
KMS and botocore's Stubber for SageMaker (moto has no Feature Store runtime)."""

from __future__ import annotations

import json

import boto3
import botocore.exceptions
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from emlops.components import data_pipeline_steps as steps

REGION, BUCKET, GROUP = "eu-west-1", "datasets", "dev-features-customers"
RUNS = f"s3://{BUCKET}/data-pipelines/customers"


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(variable, "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        # as the platform's datasets bucket: versioned
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
        yield s3, key


def keys(s3, prefix: str = "") -> list[str]:
    return sorted(item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


def land(s3, *names: str) -> None:
    for name in names:
        s3.put_object(Bucket=BUCKET, Key=f"landing/customers/{name}", Body=b"customer_id,event_time\nc1,1.5\n")


def test_claim_moves_what_landed_to_the_runs_batch_encrypted_with_the_key(aws):
    s3, key = aws
    land(s3, "a.csv", "2026/12/05/b.csv")
    s3.put_object(Bucket=BUCKET, Key="landing/orders/x.csv", Body=b"x")
    event = {"action": "claim", "landing_uri": f"s3://{BUCKET}/landing/customers/",
             "batch_uri": f"{RUNS}/batches/run-1/", "kms_key_id": key, "claims_uri": f"{RUNS}/claims/"}
    assert steps.claim(s3, event) == {"objects": 2}
    assert keys(s3, "data-pipelines/customers/batches/") + keys(s3, "landing/") == [
        "data-pipelines/customers/batches/run-1/2026/12/05/b.csv", "data-pipelines/customers/batches/run-1/a.csv",
        "landing/orders/x.csv"]
    # one marker per claimed object version, naming the run's batch
    markers = keys(s3, "data-pipelines/customers/claims/")
    assert [m.rsplit("@", 1)[0] for m in markers] == [
        "data-pipelines/customers/claims/landing/customers/2026/12/05/b.csv",
        "data-pipelines/customers/claims/landing/customers/a.csv"]
    assert s3.get_object(Bucket=BUCKET, Key=markers[1])["Body"].read() == f"{RUNS}/batches/run-1/".encode()
    head = s3.head_object(Bucket=BUCKET, Key="data-pipelines/customers/batches/run-1/a.csv")
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key)
    # a second run started by the same landing finds nothing and ends
    assert steps.claim(s3, {**event, "batch_uri": f"{RUNS}/batches/run-2/"}) == {"objects": 0}


def test_runs_started_together_claim_each_landed_object_once(aws):
    """Each landed object starts a run; runs that list the same objects race for them, and only the run whose
    conditional write of the claim marker wins moves an object (the others leave it alone)."""
    s3, key = aws
    land(s3, "a.csv", "b.csv")
    event = {"action": "claim", "landing_uri": f"s3://{BUCKET}/landing/customers/", "kms_key_id": key,
             "claims_uri": f"{RUNS}/claims/"}
    # run-1 has listed the landing prefix and claimed a.csv, but not copied it yet, when run-2 claims
    assert steps._claimed(s3, BUCKET, "landing/customers/a.csv", "data-pipelines/customers/claims/",
                          f"{RUNS}/batches/run-1/", key) is not None
    assert steps.claim(s3, {**event, "batch_uri": f"{RUNS}/batches/run-2/"}) == {"objects": 1}
    assert keys(s3, "data-pipelines/customers/batches/") == ["data-pipelines/customers/batches/run-2/b.csv"]
    assert keys(s3, "landing/") == ["landing/customers/a.csv"]  # run-1's, which run-2 left alone
    # a later run finds a.csv claimed (by run-1, still moving it): nothing for it
    assert steps.claim(s3, {**event, "batch_uri": f"{RUNS}/batches/run-4/"}) == {"objects": 0}
    # the same key landing again later is a new version, which the next run claims
    land(s3, "b.csv")
    assert steps.claim(s3, {**event, "batch_uri": f"{RUNS}/batches/run-3/"}) == {"objects": 1}
    assert keys(s3, "data-pipelines/customers/batches/run-3/") == ["data-pipelines/customers/batches/run-3/b.csv"]


def test_a_dead_runs_claim_is_taken_over_by_one_run_once_it_is_stale(aws, monkeypatch):
    """A run that claimed an object and died before moving it (its function timed out) would strand the object:
    once the claim is older than a step can run, the next run takes it over, and only one run does."""
    from datetime import timedelta

    from emlops.components.data_pipeline import STEPS_TIMEOUT_SECONDS

    assert steps.CLAIM_STALE_SECONDS > STEPS_TIMEOUT_SECONDS
    s3, key = aws
    land(s3, "a.csv")
    claims = "data-pipelines/customers/claims/"
    assert steps._claimed(s3, BUCKET, "landing/customers/a.csv", claims, f"{RUNS}/batches/run-1/", key) is not None
    event = {"action": "claim", "landing_uri": f"s3://{BUCKET}/landing/customers/", "kms_key_id": key,
             "claims_uri": f"{RUNS}/claims/"}
    # still fresh: run-1 may be moving it
    assert steps.claim(s3, {**event, "batch_uri": f"{RUNS}/batches/run-2/"}) == {"objects": 0}
    later = steps._now() + timedelta(seconds=steps.CLAIM_STALE_SECONDS + 1)
    monkeypatch.setattr(steps, "_now", lambda: later)
    [marker] = keys(s3, claims)
    stale = s3.head_object(Bucket=BUCKET, Key=marker)["ETag"]
    assert steps.claim(s3, {**event, "batch_uri": f"{RUNS}/batches/run-3/"}) == {"objects": 1}
    assert keys(s3, "data-pipelines/customers/batches/") == ["data-pipelines/customers/batches/run-3/a.csv"]
    assert s3.get_object(Bucket=BUCKET, Key=marker)["Body"].read() == f"{RUNS}/batches/run-3/".encode()
    # a run that read the same stale claim and writes after run-3 took it over loses (If-Match on the old ETag)
    with pytest.raises(botocore.exceptions.ClientError) as lost:
        s3.put_object(Bucket=BUCKET, Key=marker, Body=b"run-4", IfMatch=stale)
    assert steps._lost(lost.value)


def gate_event(key: str, quarantine: bool = True) -> dict:
    return {"action": "gate", "report_uri": f"{RUNS}/reports/run-1", "batch_uri": f"{RUNS}/batches/run-1/",
            "kms_key_id": key, "quarantine_uri": f"{RUNS}/quarantine/run-1/" if quarantine else ""}


def test_a_valid_batch_stays_for_the_transformation(aws):
    s3, key = aws
    s3.put_object(Bucket=BUCKET, Key="data-pipelines/customers/batches/run-1/a.csv", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key="data-pipelines/customers/reports/run-1/constraint_violations.json",
                  Body=json.dumps({"violations": []}).encode())
    assert steps.gate(s3, gate_event(key)) == {"valid": True, "violations": 0, "summary": "", "quarantine_uri": ""}
    assert keys(s3, "data-pipelines/customers/batches/") == ["data-pipelines/customers/batches/run-1/a.csv"]
    # no violations file at all (the analyzer found nothing to report) is valid too
    s3.delete_object(Bucket=BUCKET, Key="data-pipelines/customers/reports/run-1/constraint_violations.json")
    assert steps.gate(s3, gate_event(key))["valid"] is True


VIOLATIONS = {"violations": [
    {"feature_name": "tenure_months", "constraint_check_type": "data_type_check", "description": "..."},
    {"feature_name": "monthly_charges", "constraint_check_type": "completeness_check", "description": "..."},
    {"feature_name": "tenure_months", "constraint_check_type": "data_type_check", "description": "again"}]}


def test_violations_quarantine_the_batch(aws):
    s3, key = aws
    s3.put_object(Bucket=BUCKET, Key="data-pipelines/customers/batches/run-1/a.csv", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key="data-pipelines/customers/reports/run-1/constraint_violations.json",
                  Body=json.dumps(VIOLATIONS).encode())
    assert steps.gate(s3, gate_event(key)) == {
        "valid": False, "violations": 3, "quarantine_uri": f"{RUNS}/quarantine/run-1/",
        "summary": "monthly_charges: completeness_check; tenure_months: data_type_check"}
    assert keys(s3, "data-pipelines/customers/batches/") == []
    assert keys(s3, "data-pipelines/customers/quarantine/") == ["data-pipelines/customers/quarantine/run-1/a.csv"]


def test_without_quarantine_an_invalid_batch_stays_where_it_is(aws):
    s3, key = aws
    s3.put_object(Bucket=BUCKET, Key="data-pipelines/customers/batches/run-1/a.csv", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key="data-pipelines/customers/reports/run-1/constraint_violations.json",
                  Body=json.dumps(VIOLATIONS).encode())
    assert steps.gate(s3, gate_event(key, quarantine=False))["valid"] is False
    assert keys(s3, "data-pipelines/customers/") == [
        "data-pipelines/customers/batches/run-1/a.csv",
        "data-pipelines/customers/reports/run-1/constraint_violations.json"]


FEATURES = {"FeatureGroupName": GROUP, "FeatureGroupArn": f"arn:aws:sagemaker:{REGION}:123456789012:feature-group/{GROUP}",
            "RecordIdentifierFeatureName": "customer_id", "EventTimeFeatureName": "event_time",
            "FeatureDefinitions": [{"FeatureName": "customer_id", "FeatureType": "String"},
                                   {"FeatureName": "event_time", "FeatureType": "Fractional"},
                                   {"FeatureName": "tenure_months", "FeatureType": "Integral"}],
            "CreationTime": "2026-01-01T00:00:00Z", "NextToken": ""}


def stubbed(group: dict = FEATURES):
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    runtime = boto3.client("sagemaker-featurestore-runtime", region_name=REGION)
    sagemaker_stub, runtime_stub = Stubber(sagemaker), Stubber(runtime)
    sagemaker_stub.add_response("describe_feature_group", group, {"FeatureGroupName": GROUP})
    return sagemaker, sagemaker_stub, runtime, runtime_stub


def test_ingest_puts_every_row_typed_by_the_feature_definitions(aws):
    s3, _ = aws
    s3.put_object(Bucket=BUCKET, Key="data-pipelines/customers/transformed/run-1/part-0.csv",
                  Body=b"customer_id,event_time,tenure_months\nc1,1764892800.0,12\nc2,1764892801.5,\n")
    sagemaker, sagemaker_stub, runtime, runtime_stub = stubbed()
    for record in ([("customer_id", "c1"), ("event_time", "1764892800.0"), ("tenure_months", "12")],
                   [("customer_id", "c2"), ("event_time", "1764892801.5")]):  # an empty cell is left out
        runtime_stub.add_response("put_record", {}, {"FeatureGroupName": GROUP, "Record": [
            {"FeatureName": name, "ValueAsString": value} for name, value in record]})
    with sagemaker_stub, runtime_stub:
        assert steps.ingest(s3, runtime, sagemaker, {
            "action": "ingest", "feature_group": GROUP, "output_uri": f"{RUNS}/transformed/run-1/"}) == {"records": 2}
        runtime_stub.assert_no_pending_responses()


@pytest.mark.parametrize("body, message", [
    (b"customer_id,event_time,age\nc1,1.0,3\n",
     "data-pipelines/customers/transformed/run-1/part-0.csv: columns age are not features of dev-features-customers"),
    (b"customer_id,event_time,tenure_months\nc1,1.0,twelve\n",
     "data-pipelines/customers/transformed/run-1/part-0.csv, line 2: invalid literal for int() with base 10: 'twelve'"),
])
def test_ingest_refuses_rows_that_do_not_fit_the_group(aws, body, message):
    s3, _ = aws
    s3.put_object(Bucket=BUCKET, Key="data-pipelines/customers/transformed/run-1/part-0.csv", Body=body)
    sagemaker, sagemaker_stub, runtime, runtime_stub = stubbed()
    with sagemaker_stub, runtime_stub, pytest.raises(ValueError) as caught:
        steps.ingest(s3, runtime, sagemaker, {"feature_group": GROUP, "output_uri": f"{RUNS}/transformed/run-1/"})
    assert str(caught.value) == message


def test_the_handler_dispatches_on_the_action(aws):
    s3, key = aws
    land(s3, "a.csv")
    assert steps.handler({"action": "claim", "landing_uri": f"s3://{BUCKET}/landing/customers/",
                          "batch_uri": f"{RUNS}/batches/run-1/", "kms_key_id": key,
                          "claims_uri": f"{RUNS}/claims/"}) == {"objects": 1}
    with pytest.raises(ValueError) as caught:
        steps.handler({"action": "drop"})
    assert str(caught.value) == "unknown action 'drop': claim, gate or ingest"
    with pytest.raises(ValueError) as caught:
        steps.split_s3("https://datasets/x")
    assert str(caught.value) == "'https://datasets/x' is not an s3:// URI"
