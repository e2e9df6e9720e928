"""emlops diff: changes matched by URN, exact paths, replacement rules and their cascade, stateful call-outs."""

from __future__ import annotations

import copy
import json

import pytest

from emlops.review.diff import (Change, Pending, PlanDiff, diff_plans, is_auto_named, physical_name, render_markdown,
                         render_text, replaces, show)
from emlops.offline.plan import Plan, PlanResource
from emlops.offline.preview import preview_stack

CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
MODEL = "aws:sagemaker/model:Model"
BUCKET = "aws:s3/bucket:Bucket"


def edited(plan: Plan, **changes) -> Plan:
    """A deep copy of PLAN with some resources' inputs edited: name=lambda inputs: None."""
    out = copy.deepcopy(plan)
    for name, edit in changes.items():
        edit(out.get(name.replace("_", "-")).inputs)
    return out


def summary(diff: PlanDiff) -> list[tuple]:
    return [(r.action, r.resource.name, [(c.path, c.old, c.new, c.replaces) for c in r.changes])
            for r in diff.resources]


def test_the_same_plan_has_no_changes(shipped_plan):
    plan = shipped_plan("prod")
    diff = diff_plans(plan, copy.deepcopy(plan))
    assert diff.empty and diff.resources == []
    assert render_markdown(diff, "prod") == "**prod**: +0 added, ~0 changed, -0 removed, ±0 replaced — no changes\n"
    assert render_text(diff, "prod") == "prod: +0 added, ~0 changed, -0 removed, ±0 replaced - no changes\n"


def test_a_change_to_a_functions_code_updates_the_function(project_copy, shipped_plan, tmp_path, monkeypatch):
    """The plan names an archive's files by their content's digest, so a change to the data pipeline's step code is
    reviewed like any other (the function is updated in place, as Pulumi's engine does on a new code hash)."""
    from pulumi.runtime import rpc

    from emlops.components import data_pipeline
    from emlops.offline.engine import to_plain

    base = shipped_plan("prod")  # previewed (or cached) before the code changes
    changed = tmp_path / data_pipeline.STEPS_CODE.name
    changed.write_text(data_pipeline.STEPS_CODE.read_text() + "\n# a reviewed change\n")
    monkeypatch.setattr(data_pipeline, "STEPS_CODE", changed)
    head = preview_stack("prod", start=project_copy).plan
    diff = diff_plans(base, head)
    [change] = diff.resources
    assert (change.resource.name, change.action) == ("prod-customers-data-steps", "update")
    [line] = [line for line in render_text(diff, "prod").splitlines() if "code.archive" in line]
    assert line.strip().startswith("code.archive.data_pipeline_steps.py: sha256:")
    # a file archive is named by its path, as before
    assert to_plain({rpc._special_sig_key: rpc._special_archive_sig, "path": "dist/app.zip"}) == {
        "archive": "dist/app.zip"}


def test_instance_type_change_replaces_the_config_and_updates_the_endpoint_in_place(project_copy, shipped_plan):
    path = project_copy / "stacks" / "Pulumi.prod.yaml"
    text = path.read_text()
    assert text.count("instance_type: ml.c5.xlarge") == 1  # fraud's primary variant
    path.write_text(text.replace("instance_type: ml.c5.xlarge", "instance_type: ml.c5.2xlarge"))
    base, head = shipped_plan("prod"), preview_stack("prod", start=project_copy).plan

    diff = diff_plans(base, head)
    config_name = physical_name(base.get("prod-fraud-config"))
    assert config_name.startswith("prod-fraud-config-") and is_auto_named(base.get("prod-fraud-config"))
    pending = Pending("new name of `prod-fraud-config`, after its replacement")
    assert summary(diff) == [
        ("replace", "prod-fraud-config",
         [("productionVariants[0].instanceType", "ml.c5.xlarge", "ml.c5.2xlarge", True)]),
        ("update", "prod-fraud-endpoint", [("endpointConfigName", config_name, pending, False)]),
    ]
    assert [r.group for r in diff.resources] == ["ModelEndpoint fraud", "ModelEndpoint fraud"]
    assert (diff.count("add"), diff.count("update"), diff.count("remove"), diff.count("replace")) == (0, 1, 0, 1)
    assert diff.resources[0].replacement_order() == (
        "create-before-delete: auto-named, the replacement gets a new name before the old one is deleted")

    assert render_markdown(diff, "prod") == "\n".join([
        "**prod**: +0 added, ~1 changed, -0 removed, ±1 replaced",
        "",
        "#### ModelEndpoint fraud",
        f"- `±` **replace** `prod-fraud-config` ({CONFIG}) — create-before-delete: auto-named, the replacement "
        "gets a new name before the old one is deleted",
        "  - `productionVariants[0].instanceType`: `ml.c5.xlarge` → `ml.c5.2xlarge` **(forces replacement)**",
        f"- `~` **update** `prod-fraud-endpoint` ({ENDPOINT})",
        f"  - `endpointConfigName`: `{config_name}` → *(new name of `prod-fraud-config`, after its replacement)*",
    ]) + "\n"
    text_out = render_text(diff, "prod")
    assert "      productionVariants[0].instanceType: ml.c5.xlarge -> ml.c5.2xlarge (forces replacement)\n" in text_out
    assert f"      endpointConfigName: {config_name} -> (new name of prod-fraud-config, after its replacement)\n" \
        in text_out


def test_deleting_a_protected_prod_bucket_is_called_out_in_bold(shipped_plan):
    base = shipped_plan("prod")
    head = copy.deepcopy(base)
    head.resources = [r for r in head.resources if r.name != "prod-capture-bucket"]
    diff = diff_plans(base, head)
    assert summary(diff) == [("remove", "prod-capture-bucket", [])]
    markdown = render_markdown(diff, "prod")
    assert markdown == "\n".join([
        "**prod**: +0 added, ~0 changed, -1 removed, ±0 replaced",
        "",
        "**⚠ Stateful resources deleted or replaced: `prod-capture-bucket`**",
        "",
        "#### base",
        f"- `-` **delete** `prod-capture-bucket` ({BUCKET})",
        f"  - **⚠ deletes stateful resource `prod-capture-bucket` ({BUCKET}); retainOnDelete: the old one stays in "
        "AWS with its data, no longer managed by this stack**",
        "  - **⚠ protected in the base plan: `pulumi up` refuses to delete it until `protect` is removed**",
    ]) + "\n"
    assert "!! protected in the base plan: pulumi up refuses to delete it until protect is removed" in render_text(diff)


def test_deleting_an_unprotected_stateful_resource_says_its_data_goes(shipped_plan):
    base = shipped_plan("dev")
    head = copy.deepcopy(base)
    head.resources = [r for r in head.resources if r.name != "dev-registry-churn-group"]
    [removed] = diff_plans(base, head).resources
    markdown = render_markdown(diff_plans(base, head), "dev")
    assert ("**⚠ deletes stateful resource `dev-registry-churn-group` "
            "(aws:sagemaker/modelPackageGroup:ModelPackageGroup); its data goes with it**") in markdown
    assert "protect" not in markdown and removed.stateful and removed.action == "remove"


def test_a_replaced_model_cascades_through_its_auto_name(shipped_plan):
    base = shipped_plan("prod")
    head = edited(base, prod_churn_model=lambda i: i.update(enableNetworkIsolation=False))
    model_name = physical_name(base.get("prod-churn-model"))
    config_name = physical_name(base.get("prod-churn-config"))
    diff = diff_plans(base, head)
    assert summary(diff) == [
        ("replace", "prod-churn-model", [("enableNetworkIsolation", True, False, True)]),
        ("replace", "prod-churn-config", [
            ("productionVariants[0].modelName", model_name,
             Pending("new name of `prod-churn-model`, after its replacement"), True)]),
        ("update", "prod-churn-endpoint", [
            ("endpointConfigName", config_name, Pending("new name of `prod-churn-config`, after its replacement"),
             False)]),
    ]


def test_a_renamed_bucket_is_replaced_and_everything_holding_its_name_follows(shipped_plan):
    base = shipped_plan("prod")
    old = physical_name(base.get("prod-capture-bucket"))
    head = edited(base, prod_capture_bucket=lambda i: i.update(bucket="acme-prod-capture"))
    diff = diff_plans(base, head)
    by_name = {r.resource.name: r for r in diff.resources}
    bucket = by_name["prod-capture-bucket"]
    assert bucket.action == "replace" and bucket.stateful
    assert bucket.replacement_order() == ("create-before-delete: the new one is named `acme-prod-capture`, then the "
                                          "old one is deleted")
    # the bucket's settings are other resources keyed by the bucket name: replaced too
    assert by_name["prod-capture-versioning"].action == "replace"
    assert [(c.path, c.old, c.new) for c in by_name["prod-fraud-config"].changes] == [
        ("dataCaptureConfig.destinationS3Uri", f"s3://{old}/datacapture/prod-fraud",
         "s3://acme-prod-capture/datacapture/prod-fraud")]
    assert by_name["prod-fraud-config"].action == "replace"
    markdown = render_markdown(diff, "prod")
    assert ("  - **⚠ replaces (deletes the old one) stateful resource `prod-capture-bucket` (aws:s3/bucket:Bucket); "
            "retainOnDelete: the old one stays in AWS with its data, no longer managed by this stack**") in markdown
    assert "  - **⚠ protected in the base plan: `pulumi up` refuses to delete it until `protect` is removed**" \
        in markdown
    assert markdown.splitlines()[2].startswith("**⚠ Stateful resources deleted or replaced: `prod-capture-bucket`")


def test_changes_inside_json_documents_have_paths_into_the_document(shipped_plan):
    base = shipped_plan("prod")
    policy = json.loads(base.get("prod-churn-execution-permissions").inputs["policy"])
    [index] = [i for i, statement in enumerate(policy["Statement"]) if statement["Sid"] == "Logs"]
    policy["Statement"][index]["Action"] = ["logs:PutLogEvents"]
    head = edited(base, prod_churn_execution_permissions=lambda i: i.update(policy=json.dumps(policy)))
    [changed] = diff_plans(base, head).resources
    assert changed.action == "update"
    assert [(c.path, c.old, c.new, c.replaces) for c in changed.changes] == [
        (f"policy#Statement[{index}].Action[0]", "logs:CreateLogGroup", "logs:PutLogEvents", False)]
    assert (f"  - `policy#Statement[{index}].Action[0]`: `logs:CreateLogGroup` → `logs:PutLogEvents`"
            in render_markdown(diff_plans(base, head)))


def test_tags_protect_and_added_resources(shipped_plan):
    base = shipped_plan("dev")
    head = copy.deepcopy(base)
    head.get("dev-churn-endpoint").inputs["tags"]["owner"] = "someone@example.com"
    head.get("dev-data-key").protect = True
    extra = copy.deepcopy(head.get("dev-churn-endpoint"))
    extra.urn, extra.name = extra.urn.replace("dev-churn-endpoint", "dev-churn-endpoint-2"), "dev-churn-endpoint-2"
    head.resources.append(extra)
    assert summary(diff_plans(base, head)) == [
        ("update", "dev-data-key", [("(protect)", False, True, False)]),
        ("update", "dev-churn-endpoint", [("tags.owner", "ml-platform@example.com", "someone@example.com", False)]),
        ("add", "dev-churn-endpoint-2", []),
    ]


@pytest.mark.parametrize("type_, path, expected", [
    (MODEL, "primaryContainer.image", True), (MODEL, "vpcConfig.subnets[1]", True), (MODEL, "tags.owner", False),
    (CONFIG, "productionVariants[0].serverlessConfig.memorySizeInMb", True), (CONFIG, "tags", False),
    (ENDPOINT, "endpointConfigName", False), (ENDPOINT, "name", True), (ENDPOINT, "deploymentConfig", False),
    ("aws:sagemaker/featureGroup:FeatureGroup", "featureDefinitions[5].featureName", True),
    ("aws:sagemaker/featureGroup:FeatureGroup", "onlineStoreConfig.ttlDuration.value", False),
    ("aws:sagemaker/featureGroup:FeatureGroup", "onlineStoreConfig.securityConfig.kmsKeyId", True),
    (BUCKET, "bucket", True), (BUCKET, "forceDestroy", False),
    ("aws:kms/key:Key", "customerMasterKeySpec", True), ("aws:kms/key:Key", "keyUsage", True),
    ("aws:kms/key:Key", "description", False), ("aws:kms/key:Key", "policy#Statement[0].Sid", False),
    ("aws:iam/role:Role", "name", True), ("aws:iam/role:Role", "path", True),
    ("aws:iam/role:Role", "assumeRolePolicy", False),
    ("aws:eks/cluster:Cluster", "name", True), ("aws:eks/cluster:Cluster", "vpcConfig.subnetIds[1]", True),
    ("aws:eks/cluster:Cluster", "vpcConfig.endpointPublicAccess", False), ("aws:eks/cluster:Cluster", "version", False),
    ("aws:s3/bucketVersioning:BucketVersioning", "bucket", True),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "name", True),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "threshold", False),
    ("aws:cloudwatch/dashboard:Dashboard", "dashboardName", True),
    ("aws:cloudwatch/dashboard:Dashboard", "dashboardBody", False),
    ("aws:sagemaker/pipeline:Pipeline", "pipelineDefinition#Steps[0].Name", False),
    ("kubernetes:core/v1:Namespace", "metadata.name", True),
    ("kubernetes:core/v1:Namespace", "metadata.labels.a", False),
    ("aws:sns/topic:Topic", "(protect)", False),
])
def test_replace_on_change_table(type_, path, expected):
    assert replaces(type_, path) is expected


def test_values_are_cut_and_secrets_stay_masked():
    def plan(inputs):
        stack = PlanResource("urn:pulumi:t::p::pulumi:pulumi:Stack::p-t", "pulumi:pulumi:Stack", "p-t", False, None,
                             [], None, {})
        role = PlanResource("urn:pulumi:t::p::aws:iam/role:Role::r", "aws:iam/role:Role", "r", True, stack.urn, [],
                            None, inputs)
        return Plan("p", "t", [stack, role])

    diff = diff_plans(plan({"description": "a" * 200, "password": "[secret]", "x": "[secret]"}),
                      plan({"description": "b" * 200, "password": "[secret]", "x": "plain"}))
    [role] = diff.resources
    assert [(c.path, c.old) for c in role.changes] == [("description", "a" * 200), ("x", "[secret]")]
    assert show("a" * 200) == "a" * 79 + "…" and len(show("a" * 200)) == 80
    markdown = render_markdown(diff, "t")
    assert f"  - `description`: `{'a' * 79}…` → `{'b' * 79}…`" in markdown
    assert "  - `x`: `[secret]` → `plain`" in markdown and "password" not in markdown
    assert Change("p", None, 1).replaces is False and show(None) == "(none)"
    assert show({"b": 1, "a": [2]}) == '{"a": [2], "b": 1}'


def test_a_fixed_name_is_freed_first(shipped_plan):
    base = shipped_plan("shared")
    head = edited(base, shared_registry_churn_group=lambda i: i.update(modelPackageGroupDescription="Churn versions"),
                  shared_registry_churn_approved=lambda i: i.update(description="churn approved"))
    diff = diff_plans(base, head)
    assert [(r.action, r.resource.name) for r in diff.resources] == [
        ("replace", "shared-registry-churn-group"), ("update", "shared-registry-churn-approved")]
    assert diff.resources[0].replacement_order() == (
        "delete-before-create: the name `churn` is fixed, so the old one goes first (an interruption)")
    assert "**⚠ Stateful resources deleted or replaced: `shared-registry-churn-group`**" in render_markdown(diff)


def test_a_replaced_kms_key_replaces_what_cannot_change_its_key(shipped_plan):
    base = shipped_plan("prod")
    head = edited(base, prod_data_key=lambda i: i.update(keyUsage="SIGN_VERIFY"))
    diff = diff_plans(base, head)
    key_arn = base.get("prod-fraud-config").inputs["kmsKeyArn"]
    assert key_arn.startswith("arn:aws:kms:eu-west-1:333333333333:key/")
    replaced = [r.resource.name for r in diff.resources if r.action == "replace"]
    # the repository is auto-named: its lifecycle policy follows its new name; the pipelines are updated in place;
    # monitoring job definitions, data- and model-quality, bias and explainability alike (the batch transform's
    # inputs' too), cannot change in place
    assert replaced == ["prod-data-key", "prod-features-customers", "prod-features-churn-labels",
                        "prod-training-repository",
                        "prod-training-repository-lifecycle", "prod-churn-config", "prod-fraud-config",
                        "prod-doc-scoring-config", "prod-churn-monitor-job", "prod-churn-monitor-quality-job",
                        "prod-churn-monitor-bias-job", "prod-fraud-monitor-job", "prod-fraud-monitor-explainability-job",
                        "prod-doc-scoring-monitor-job", "prod-churn-nightly-monitor-job"]
    assert [r.action for r in diff.resources if r.resource.name in (
        "prod-fraud-retraining-pipeline", "prod-churn-nightly-pipeline")] == ["update", "update"]
    [alias] = [r for r in diff.resources if r.resource.name == "prod-data-alias"]
    assert [(c.path, c.old, c.new, c.replaces) for c in alias.changes] == [
        ("targetKeyId", key_arn.rsplit("/", 1)[1], Pending("new key id of `prod-data-key`, after its replacement"),
         False)]
    assert render_markdown(diff).splitlines()[2] == ("**⚠ Stateful resources deleted or replaced: `prod-data-key`, "
                                                    "`prod-features-customers`, `prod-features-churn-labels`, "
                                                    "`prod-training-repository`**")


def test_serving_mode_changes_replace_the_configuration_and_update_the_endpoint_blue_green(shipped_plan):
    """What SageMaker cannot change in place (asynchronous settings, a shadow variant's share, start-up timeouts,
    the container's mode) replaces the model or endpoint configuration; the endpoint itself is only updated."""
    def touch(inputs: dict, *path: str, value) -> None:
        for key in path[:-1]:
            inputs = inputs[key][0] if isinstance(inputs[key], list) else inputs[key]
        inputs[path[-1]] = value

    cases = {
        "prod": ("prod-doc-scoring-config", ("asyncInferenceConfig", "clientConfig",
                                             "maxConcurrentInvocationsPerInstance"), 8),
        "staging": ("staging-fraud-config", ("shadowProductionVariants", "initialVariantWeight"), 0.5),
        "dev": ("dev-assistant-config", ("productionVariants", "containerStartupHealthCheckTimeoutInSeconds"), 1800),
    }
    for stack, (name, path, value) in cases.items():
        base = shipped_plan(stack)
        head = edited(base, **{name: lambda inputs: touch(inputs, *path, value=value)})
        endpoint = name.removesuffix("-config")
        change, update = diff_plans(base, head).resources
        assert (change.action, change.resource.name, update.action, update.resource.name) == (
            "replace", name, "update", f"{endpoint}-endpoint")
        assert [(c.path, c.new, c.replaces) for c in change.changes] == [(".".join(
            p if not p.endswith("Variants") else f"{p}[0]" for p in path), value, True)]
        assert [(c.path, c.new, c.replaces) for c in update.changes] == [
            ("endpointConfigName", Pending(f"new name of `{name}`, after its replacement"), False)]
    base = shipped_plan("dev")
    head = edited(base, dev_fraud_model=lambda inputs: inputs["primaryContainer"].update(mode="MultiModel"))
    assert [(r.action, r.resource.name) for r in diff_plans(base, head).resources][0] == ("replace", "dev-fraud-model")
