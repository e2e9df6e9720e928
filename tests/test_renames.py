"""Renames: the plan records each resource's aliases as Pulumi's engine derives them, and `emlops diff`
matches a renamed resource to its old URN through them (keeping its generated names), as `pulumi up` would."""

from __future__ import annotations

import copy
import functools
import json

import pulumi
import pulumi_aws as aws
import pytest

from emlops.catalog.resources import assumed
from emlops.offline.plan import Plan, PlanResource
from emlops.offline.preview import preview_stack
from emlops.program import platform
from emlops.review.diff import diff_plans, physical_name
from emlops.program.stackfile import find_project
from tests.conftest import ROOT, SHIPPED_STACKS, shipped_preview, run_components

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
    # pulumi-aws v7 also aliases each bucket to its old `aws:s3/bucketV2:BucketV2` token; the catalogue lists
    # that (type_aliases), so the plan does not repeat it
    assert [(r.urn, r.aliases) for r in plan.resources if r.type != "pulumi:pulumi:Stack"] == [
        (urn("emlops:index:Box", "data"), [urn("emlops:index:Box", "datasets")]),
        (urn(f"emlops:index:Box${BUCKET}", "data-bucket"), [
            urn(f"emlops:index:Box${BUCKET}", "datasets-bucket")]),  # the parent's old name in its prefix
        (urn(f"emlops:index:Box${BUCKET}", "data-store"), [
            urn(f"emlops:index:Box${BUCKET}", "data-old-store"),
            urn(f"emlops:index:Box${BUCKET}", "datasets-store"), urn(f"emlops:index:Box${BUCKET}", "datasets-old-store")]),
    ]
    document = plan.to_json()["resources"]
    assert "aliases" not in document[0] and document[1]["aliases"] == [urn("emlops:index:Box", "datasets")]
    assert PlanResource.from_json(document[2]).aliases == plan.resources[2].aliases


# The types whose SDK aliases the spellings it renamed (the program itself declares no alias).
SDK_TYPE_ALIASES = {
    **{f"aws:s3/{module}:{kind}": [f"aws:s3/{module}V2:{kind}V2"] for module, kind in (
        ("bucket", "Bucket"), ("bucketLifecycleConfiguration", "BucketLifecycleConfiguration"),
        ("bucketLogging", "BucketLogging"), ("bucketVersioning", "BucketVersioning"),
        ("bucketObjectLockConfiguration", "BucketObjectLockConfiguration"),
        ("bucketServerSideEncryptionConfiguration", "BucketServerSideEncryptionConfiguration"))},
    "aws:s3/bucketObjectv2:BucketObjectv2": ["aws:s3/BucketObject:BucketObject"],
    "kubernetes:apps/v1:DaemonSet": ["kubernetes:apps/v1beta2:DaemonSet", "kubernetes:extensions/v1beta1:DaemonSet"],
    "kubernetes:scheduling.k8s.io/v1:PriorityClass": ["kubernetes:scheduling.k8s.io/v1alpha1:PriorityClass",
                                                      "kubernetes:scheduling.k8s.io/v1beta1:PriorityClass"],
}


def test_the_shipped_plans_hold_no_aliases_and_the_catalogue_knows_every_type_the_sdks_renamed():
    """The program declares no alias, and the SDKs' own type renames are the catalogue's `type_aliases`: the
    plans keep the contract's shape, and a test fails when a provider upgrade renames another type."""
    declared: dict[str, list[str]] = {}
    for stack in SHIPPED_STACKS:
        result = shipped_preview(stack)
        assert [r.urn for r in result.plan.resources if r.aliases] == []
        assert "aliases" not in result.plan.dumps()
        for type_, earlier in result.sdk_type_aliases.items():
            declared.setdefault(type_, [])
            declared[type_] += [t for t in earlier if t not in declared[type_]]
    assert declared == SDK_TYPE_ALIASES
    assert {t: list(assumed(t).type_aliases) for t in SDK_TYPE_ALIASES} == SDK_TYPE_ALIASES


def test_a_base_plan_made_with_an_older_provider_spelling_matches(shipped_plan):
    """A base plan that recorded the buckets under pulumi-aws's old `...V2` tokens is the same resources."""
    head = shipped_plan("dev")
    document = json.loads(head.dumps())
    for resource in document["resources"]:
        old = SDK_TYPE_ALIASES.get(resource["type"])
        if old and old[0].startswith("aws:s3/"):
            resource["urn"] = resource["urn"].replace(f"{resource['type']}::", f"{old[0]}::")
            resource["type"] = old[0]
    base = Plan(project=document["project"], stack=document["stack"], outputs=document["outputs"],
                resources=[PlanResource.from_json(r) for r in document["resources"]])
    assert sum(1 for r in base.resources if r.type == "aws:s3/bucketV2:BucketV2") == 3  # access logs, datasets, artifacts
    assert diff_plans(base, head).resources == []


# -- a component of the platform renamed: the datasets bucket's ------------------------------------------

def renamed_datasets(aliases: bool) -> Plan:
    """The plan of dev with the datasets bucket's component renamed `dev-training-data` (with or without
    `aliases`): previewed once per test process, each caller gets a copy of its own."""
    return copy.deepcopy(_renamed_datasets(aliases))


@functools.lru_cache(maxsize=None)
def _renamed_datasets(aliases: bool) -> Plan:
    real = platform.SecureBucket

    def secure_bucket(name, args, opts=None):
        if name.endswith("-datasets"):
            if aliases:
                opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(aliases=[pulumi.Alias(name=name)]))
            name = name.replace("-datasets", "-training-data")
        return real(name, args, opts=opts)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(platform, "SecureBucket", secure_bucket)
        return preview_stack("dev", project=find_project(ROOT)).plan


def test_a_component_renamed_without_aliases_deletes_its_bucket_and_replaces_what_names_it(shipped_plan):
    base = shipped_plan("dev")
    diff = diff_plans(base, renamed_datasets(aliases=False))
    destroyed = [(r.action, r.resource.name) for r in diff.resources if r.destructive and r.stateful]
    assert destroyed == [("replace", "dev-features-customers"), ("remove", "dev-datasets-bucket")]
    assert sorted(r.resource.name for r in diff.resources if r.action == "remove") == sorted(
        [f"dev-datasets-{child}" for child in ("bucket", "public-access-block", "ownership", "events", "versioning",
                                               "encryption", "policy", "lifecycle", "logging")]
        + ["dev-model-builder-read-dev-datasets", "dev-training-training-read-dev-datasets"])
    [group] = [r for r in diff.resources if r.resource.name == "dev-features-customers"]
    old = physical_name(base.get("dev-datasets-bucket"))
    assert [(c.path, c.old, c.replaces) for c in group.changes] == [
        ("offlineStoreConfig.s3StorageConfig.s3Uri", f"s3://{old}/feature-store/dev-features-customers", True)]


def test_a_component_renamed_with_aliases_keeps_its_bucket_and_its_name(shipped_plan):
    base = shipped_plan("dev")
    head = renamed_datasets(aliases=True)
    bucket = head.get("dev-training-data-bucket")
    assert bucket.aliases == [base.get("dev-datasets-bucket").urn]
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
