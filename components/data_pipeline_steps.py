"""The code a data pipeline's Lambda step runs in AWS (Python 3.12 runtime, boto3 only): claim, gate, ingest.

The pipeline (`components/data_pipeline_definition.py`) calls one function with `{"action": ..., ...}`:
- `claim`: move every object under the landing prefix to this run's batch prefix (`batches/<pipeline>/<run>/`),
  so that what a run validates, transforms and ingests is exactly what it claimed, and objects landing meanwhile
  wait for the next run. Runs started at the same moment (one per landed object) race for the same objects: each
  object version is claimed by writing a marker under the claims prefix with S3's conditional write
  (`If-None-Match: *`), which only one writer wins; the others leave that version alone, unless its claim is older
  than a step can run (the claiming run died): then one of them takes it over (`If-Match` on the claim). Answers
  `{"objects": n}` (0: nothing landed, or other runs claimed it all; the run ends without work).
- `gate`: read the analyzer's `constraint_violations.json` under the validation report prefix. Violations: move the
  batch to the quarantine prefix (`quarantine/<pipeline>/<run>/`) and answer `{"valid": false, ...}`; the run then
  stops at a fail step whose failure the alerts topic hears of. Otherwise `{"valid": true, ...}`.
- `ingest`: put every row of the transformation's CSV output (a header line naming the features) into the feature
  group, typed by the group's feature definitions. Answers `{"records": n}`.

A move is a copy (encrypted with the datasets key) and a delete of the source. It runs in the platform's private
subnets: S3 through the gateway endpoint, SageMaker Feature Store through its interface endpoint.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from typing import Any, Iterator, Optional

VIOLATIONS_FILE = "constraint_violations.json"


def split_s3(uri: str) -> tuple[str, str]:
    """(bucket, key) of `s3://bucket/key`."""
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


def _keys(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"]


# A claim older than this is a dead run's: the step's function times out after 10 minutes
# (components/data_pipeline.py, STEPS_TIMEOUT_SECONDS), and a run that claimed copies and deletes within it.
CLAIM_STALE_SECONDS = 900


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _lost(error: Any) -> bool:
    """Whether a conditional write lost to another writer."""
    return error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict")


def _claimed(s3: Any, bucket: str, key: str, claims: str, target_uri: str, kms_key_id: str) -> Optional[dict]:
    """The copy source of the version of `key` this run now owns, or None: another run claimed it first (or it is
    gone). The marker names the version (the datasets bucket is versioned: a version id is never reused)."""
    from botocore.exceptions import ClientError

    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None  # moved by the run that claimed it
        raise
    version = head.get("VersionId") or f"{head['ETag'].strip(chr(34))}-{head['LastModified'].timestamp():.0f}"
    marker = {"Bucket": bucket, "Key": f"{claims}{key}@{version}", "Body": target_uri.encode("utf-8"),
              "ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id}
    try:
        s3.put_object(**marker, IfNoneMatch="*")
    except ClientError as error:
        if not _lost(error):
            raise
        # claimed already: by a run still moving it, or by one that died before it could (a step's function runs
        # for at most its timeout): a stale claim is taken over, again by one run only (If-Match on its ETag)
        held = s3.head_object(Bucket=bucket, Key=marker["Key"])
        if (_now() - held["LastModified"]).total_seconds() < CLAIM_STALE_SECONDS:
            return None
        try:
            s3.put_object(**marker, IfMatch=held["ETag"])
        except ClientError as error:
            if _lost(error):
                return None
            raise
    source = {"Bucket": bucket, "Key": key}
    return {**source, "VersionId": head["VersionId"]} if head.get("VersionId") else source


def move(s3: Any, source_uri: str, target_uri: str, kms_key_id: str, claims_uri: str = "") -> int:
    """Move every object under `source_uri` to the same relative key under `target_uri`; the number moved. With
    `claims_uri`, only the objects this call claims there first (see `claim`)."""
    bucket, source = split_s3(source_uri)
    target_bucket, target = split_s3(target_uri)
    claims = split_s3(claims_uri)[1] if claims_uri else ""
    moved = 0
    for key in list(_keys(s3, bucket, source)):
        copy_source = _claimed(s3, bucket, key, claims, target_uri, kms_key_id) if claims_uri else {
            "Bucket": bucket, "Key": key}
        if copy_source is None:
            continue
        # the managed copy: objects over 5 GB are copied in parts
        s3.copy(copy_source, target_bucket, target + key[len(source):],
                ExtraArgs={"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id})
        s3.delete_object(Bucket=bucket, Key=key)
        moved += 1
    return moved


def violations(s3: Any, report_uri: str) -> list[dict]:
    """The analyzer's violations under `report_uri` (none when it wrote no violations file)."""
    bucket, prefix = split_s3(report_uri.rstrip("/") + "/")
    for key in _keys(s3, bucket, prefix):
        if key.rsplit("/", 1)[-1] == VIOLATIONS_FILE:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            return list(json.loads(body).get("violations", []))
    return []


def claim(s3: Any, event: dict) -> dict:
    return {"objects": move(s3, event["landing_uri"], event["batch_uri"], event["kms_key_id"],
                            claims_uri=event["claims_uri"])}


def gate(s3: Any, event: dict) -> dict:
    found = violations(s3, event["report_uri"])
    if not found:
        return {"valid": True, "violations": 0, "summary": "", "quarantine_uri": ""}
    if event["quarantine_uri"]:  # without quarantine, the batch stays in its batch folder
        move(s3, event["batch_uri"], event["quarantine_uri"], event["kms_key_id"])
    checks = sorted({f"{v.get('feature_name', '?')}: {v.get('constraint_check_type', '?')}" for v in found})
    return {"valid": False, "violations": len(found), "summary": "; ".join(checks)[:900],
            "quarantine_uri": event["quarantine_uri"]}


def _typed(value: str, feature_type: str) -> Optional[str]:
    """The record value of one CSV cell (None: leave the feature out), checked against the feature's type."""
    if value == "":
        return None
    if feature_type == "Integral":
        int(value)
    elif feature_type == "Fractional":
        float(value)
    return value


def ingest(s3: Any, featurestore: Any, sagemaker: Any, event: dict) -> dict:
    """Put the rows of the CSV objects under `output_uri` into the feature group `feature_group`."""
    group = sagemaker.describe_feature_group(FeatureGroupName=event["feature_group"])
    types = {f["FeatureName"]: f["FeatureType"] for f in group["FeatureDefinitions"]}
    bucket, prefix = split_s3(event["output_uri"].rstrip("/") + "/")
    records = 0
    for key in sorted(_keys(s3, bucket, prefix)):
        text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        reader = csv.DictReader(io.StringIO(text))
        unknown = sorted(set(reader.fieldnames or ()) - set(types))
        if unknown:
            raise ValueError(f"{key}: columns {', '.join(unknown)} are not features of {event['feature_group']}")
        for line, row in enumerate(reader, start=2):
            try:
                record = [{"FeatureName": name, "ValueAsString": value} for name, value in
                          ((name, _typed(raw, types[name])) for name, raw in row.items()) if value is not None]
            except ValueError as error:
                raise ValueError(f"{key}, line {line}: {error}") from None
            featurestore.put_record(FeatureGroupName=event["feature_group"], Record=record)
            records += 1
    return {"records": records}


def handler(event: dict, context: Any = None) -> dict:  # the Lambda entry point
    import boto3

    action, s3 = event.get("action"), boto3.client("s3")
    if action == "claim":
        return claim(s3, event)
    if action == "gate":
        return gate(s3, event)
    if action == "ingest":
        return ingest(s3, boto3.client("sagemaker-featurestore-runtime"), boto3.client("sagemaker"), event)
    raise ValueError(f"unknown action {action!r}: claim, gate or ingest")
