"""Renames: the plan records each resource's aliases as Pulumi's engine derives them, and `emlops diff`
matches a renamed resource to its old URN through them (keeping its generated names), as `pulumi up` would."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pytest

from emlops.offline.plan import PlanResource
from emlops.offline.preview import preview_stack
from emlops.program import platform
from emlops.review.diff import diff_plans, physical_name
from emlops.program.stackfile import find_project
from tests.conftest import ROOT, SHIPPED_STACKS, run_components

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


# -- a component of the platform renamed: the datasets bucket's ------------------------------------------

def renamed_datasets(monkeypatch, aliases: bool):
    """Preview dev with the datasets bucket's component renamed `dev-training-data` (with or without `aliases`)."""
    real = platform.SecureBucket

    def secure_bucket(name, args, opts=None):
        if name.endswith("-datasets"):
            if aliases:
                opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(aliases=[pulumi.Alias(name=name)]))
            name = name.replace("-datasets", "-training-data")
        return real(name, args, opts=opts)

    with monkeypatch.context() as patch:
        patch.setattr(platform, "SecureBucket", secure_bucket)
        return preview_stack("dev", project=find_project(ROOT)).plan


def test_a_component_renamed_without_aliases_deletes_its_bucket_and_replaces_what_names_it(monkeypatch, shipped_plan):
    base = shipped_plan("dev")
    diff = diff_plans(base, renamed_datasets(monkeypatch, aliases=False))
    destroyed = [(r.action, r.resource.name) for r in diff.resources if r.destructive and r.stateful]
    assert destroyed == [("replace", "dev-features-customers"), ("remove", "dev-datasets-bucket")]
    assert sorted(r.resource.name for r in diff.resources if r.action == "remove") == sorted(
        [f"dev-datasets-{child}" for child in ("bucket", "public-access-block", "ownership", "versioning", "encryption",
                                               "policy", "lifecycle", "logging")]
        + ["dev-model-builder-read-dev-datasets", "dev-training-training-read-dev-datasets"])
    [group] = [r for r in diff.resources if r.resource.name == "dev-features-customers"]
    old = physical_name(base.get("dev-datasets-bucket"))
    assert [(c.path, c.old, c.replaces) for c in group.changes] == [
        ("offlineStoreConfig.s3StorageConfig.s3Uri", f"s3://{old}/feature-store/dev-features-customers", True)]


def test_a_component_renamed_with_aliases_keeps_its_bucket_and_its_name(monkeypatch, shipped_plan):
    base = shipped_plan("dev")
    head = renamed_datasets(monkeypatch, aliases=True)
    bucket = head.get("dev-training-data-bucket")
    assert bucket.aliases[1] == base.get("dev-datasets-bucket").urn
    diff = diff_plans(base, head)
    assert [r for r in diff.resources if r.stateful] == []
    # what pulumi up changes: the access-log prefix (the component's name) and the grants named after it
    assert [(r.action, r.resource.name, [(c.path, c.old, c.new) for c in r.changes]) for r in diff.resources] == [
        ("update", "dev-training-data-logging", [("targetPrefix", "dev-datasets/", "dev-training-data/")]),
        ("add", "dev-model-builder-read-dev-training-data", []),
        ("add", "dev-training-training-read-dev-training-data", []),
        ("remove", "dev-model-builder-read-dev-datasets", []),
        ("remove", "dev-training-training-read-dev-datasets", []),
    ]


class Vault(pulumi.ComponentResource):
    """A key and an alias holding its key id (which AWS generates, and the mocks derive from the key's URN)."""

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("emlops:index:Vault", name, None, opts)
        key = aws.kms.Key(f"{name}-key", description="vault", opts=pulumi.ResourceOptions(parent=self))
        aws.kms.Alias(f"{name}-alias", name="alias/vault", target_key_id=key.key_id,
                      opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})


def test_a_renamed_key_keeps_its_key_id_and_what_holds_it_does_not_change():
    base = run_components(lambda: Vault("vault"))
    renamed = run_components(lambda: Vault("secrets", opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(name="vault")])))
    assert renamed.get("secrets-alias").inputs["targetKeyId"] != base.get("vault-alias").inputs["targetKeyId"]
    assert diff_plans(base, renamed).resources == []
    without = diff_plans(base, run_components(lambda: Vault("secrets")))
    assert [(r.action, r.resource.name) for r in without.resources] == [
        ("add", "secrets-key"), ("add", "secrets-alias"), ("remove", "vault-key"), ("remove", "vault-alias")]
