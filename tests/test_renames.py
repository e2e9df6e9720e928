"""Renames: the plan records each resource's aliases as Pulumi's engine derives them."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pytest

from emlops.offline.plan import PlanResource
from tests.conftest import SHIPPED_STACKS, run_components

BUCKET = "aws:s3/bucket:Bucket"


class Box(pulumi.ComponentResource):
    """A component with a bucket named after it and one it renamed itself."""

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("emlops:index:Box", name, None, opts)
        aws.s3.Bucket(f"{name}-bucket", opts=pulumi.ResourceOptions(parent=self))
        aws.s3.Bucket(f"{name}-store", opts=pulumi.ResourceOptions(
            parent=self, aliases=[pulumi.Alias(name=f"{name}-old-store")]))
        self.register_outputs({})


def urn(qualified_type: str, name: str) -> str:
    return f"urn:pulumi:test::emlops::{qualified_type}::{name}"


def test_the_plan_records_aliases_and_children_inherit_their_parents():
    plan = run_components(lambda: Box("data", opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(name="datasets")])))
    bucket_v2 = "emlops:index:Box$aws:s3/bucketV2:BucketV2"  # pulumi-aws v7's own alias of the type it renamed
    assert [(r.urn, r.aliases) for r in plan.resources if r.type != "pulumi:pulumi:Stack"] == [
        (urn("emlops:index:Box", "data"), [urn("emlops:index:Box", "datasets")]),
        (urn(f"emlops:index:Box${BUCKET}", "data-bucket"), [
            urn(bucket_v2, "data-bucket"),
            urn(f"emlops:index:Box${BUCKET}", "datasets-bucket"),  # the parent's old name in its prefix
            urn(bucket_v2, "datasets-bucket")]),
        (urn(f"emlops:index:Box${BUCKET}", "data-store"), [
            urn(f"emlops:index:Box${BUCKET}", "data-old-store"), urn(bucket_v2, "data-store"),
            urn(f"emlops:index:Box${BUCKET}", "datasets-store"), urn(f"emlops:index:Box${BUCKET}", "datasets-old-store"),
            urn(bucket_v2, "datasets-store")]),
    ]
    document = plan.to_json()["resources"]
    assert "aliases" not in document[0] and document[1]["aliases"] == [urn("emlops:index:Box", "datasets")]
    assert PlanResource.from_json(document[2]).aliases == plan.resources[2].aliases


# The types whose SDK aliases the spellings it renamed (the program itself declares no alias).
SDK_TYPE_ALIASES = {
    **{f"aws:s3/{module}:{kind}": [f"aws:s3/{module}V2:{kind}V2"] for module, kind in (
        ("bucket", "Bucket"), ("bucketLifecycleConfiguration", "BucketLifecycleConfiguration"),
        ("bucketLogging", "BucketLogging"), ("bucketVersioning", "BucketVersioning"),
        ("bucketServerSideEncryptionConfiguration", "BucketServerSideEncryptionConfiguration"))},
    "kubernetes:apps/v1:DaemonSet": ["kubernetes:apps/v1beta2:DaemonSet", "kubernetes:extensions/v1beta1:DaemonSet"],
    "kubernetes:scheduling.k8s.io/v1:PriorityClass": ["kubernetes:scheduling.k8s.io/v1alpha1:PriorityClass",
                                                      "kubernetes:scheduling.k8s.io/v1beta1:PriorityClass"],
}


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_the_shipped_plans_alias_only_the_types_their_sdks_renamed(stack, shipped_plan):
    for resource in shipped_plan(stack).resources:
        if resource.aliases or resource.type in SDK_TYPE_ALIASES:
            assert resource.aliases == [resource.urn.replace(f"${resource.type}::", f"${old}::")
                                        for old in SDK_TYPE_ALIASES[resource.type]], resource.urn
