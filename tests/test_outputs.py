"""`components/outputs.py`: the same values, dependencies, secrecy and unknown-ness as Pulumi's own helpers,
with one Output per Output the value holds."""

from __future__ import annotations

import asyncio
import json

import pulumi
import pulumi_aws as aws

from emlops.components.outputs import concat, json_document, resolved
from emlops.offline.plan import Plan
from tests.conftest import run_components


TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def holder(name: str, value: pulumi.Input[str]) -> aws.iam.Role:
    """A role whose description is `value`: any string, recorded in the plan as it is."""
    return aws.iam.Role(name, assume_role_policy=TRUST, description=value)


def plan_of(*values) -> Plan:
    """A bucket, and one role per value (the value as its description)."""
    def program() -> None:
        bucket = aws.s3.Bucket("data", bucket="acme-data")
        for index, value in enumerate(values):
            holder(f"p{index}", value(bucket))
    return run_components(program)


def test_plain_parts_stay_plain_strings() -> None:
    assert concat("arn:", "aws", ":s3:::", "acme") == "arn:aws:s3:::acme"
    assert json_document({"Statement": [{"Resource": ["a", ("b", "c")]}]}) == \
        json.dumps({"Statement": [{"Resource": ["a", ["b", "c"]]}]})
    assert resolved({"a": [1, 2]}, lambda value: value["a"][1]) == 2


def test_values_and_dependencies_match_pulumis_helpers() -> None:
    document = lambda bucket: {"Version": "2012-10-17", "Statement": [  # noqa: E731
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [bucket.arn, concat(bucket.arn, "/*")]}]}
    plan = plan_of(lambda bucket: concat(bucket.arn, "/", bucket.bucket, "/*"),
                   lambda bucket: pulumi.Output.concat(bucket.arn, "/", bucket.bucket, "/*"),
                   lambda bucket: json_document(document(bucket)),
                   lambda bucket: pulumi.Output.json_dumps(document(bucket)))
    bucket_urn = plan.get("data").urn
    ours, theirs = plan.get("p0"), plan.get("p1")
    assert ours.inputs["description"] == theirs.inputs["description"] == "arn:aws:s3:::acme-data/acme-data/*"
    assert ours.dependencies == theirs.dependencies == [bucket_urn]
    ours, theirs = plan.get("p2"), plan.get("p3")
    assert ours.inputs["description"] == theirs.inputs["description"]
    assert json.loads(ours.inputs["description"])["Statement"][0]["Resource"] == \
        ["arn:aws:s3:::acme-data", "arn:aws:s3:::acme-data/*"]
    assert ours.dependencies == theirs.dependencies == [bucket_urn]


def test_a_secret_part_keeps_the_result_secret() -> None:
    plan = plan_of(lambda bucket: concat("token-", pulumi.Output.secret("s3cr3t")),
                   lambda bucket: json_document({"Key": [bucket.arn, pulumi.Output.secret("s3cr3t")]}),
                   lambda bucket: concat("token-", bucket.bucket))
    assert plan.get("p0").inputs["description"] == "[secret]"
    assert plan.get("p1").inputs["description"] == "[secret]"
    assert plan.get("p2").inputs["description"] == "token-acme-data"


def test_an_unknown_part_makes_the_result_unknown_and_the_rest_is_never_built() -> None:
    built = []

    def unknown() -> pulumi.Output[str]:
        value, known = asyncio.get_event_loop().create_future(), asyncio.get_event_loop().create_future()
        value.set_result(None)
        known.set_result(False)
        return pulumi.Output(set(), value, known)

    def build(value):
        built.append(value)
        return json.dumps(value)

    plan = plan_of(lambda bucket: resolved({"Resource": [bucket.arn, unknown()]}, build),
                   lambda bucket: pulumi.Output.json_dumps({"Resource": [bucket.arn, unknown()]}))
    assert plan.get("p0").inputs["description"] == plan.get("p1").inputs["description"] == "[unknown]"
    assert built == []


def test_one_apply_per_distinct_output(monkeypatch) -> None:
    applied = []
    original = pulumi.Output.apply

    def counted(self, func, run_with_unknowns=False):
        applied.append(self)
        return original(self, func, run_with_unknowns)
    monkeypatch.setattr(pulumi.Output, "apply", counted)
    watched = {}

    def program() -> None:
        bucket = aws.s3.Bucket("data", bucket="acme-data")
        watched.update(arn=bucket.arn, name=bucket.bucket)
        holder("p", json_document({"Resource": [bucket.arn, bucket.arn, bucket.bucket, "literal"]}))

    plan = run_components(program)
    # bucket.arn once although it appears twice, bucket.bucket once
    assert [name for name, output in watched.items() for each in applied if each is output] == ["arn", "name"]
    assert json.loads(plan.get("p").inputs["description"]) == \
        {"Resource": ["arn:aws:s3:::acme-data", "arn:aws:s3:::acme-data", "acme-data", "literal"]}
