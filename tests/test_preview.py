"""Every shipped stack previews offline, and its plan honours the plan.json contract."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import jsonschema
import pytest

import emlops.offline.preview
from emlops.catalog.resources import CATALOGUE, STATEFUL_TYPES
from emlops.offline.plan import Plan
from emlops.offline.preview import PreviewError, preview_stack
from emlops.program.stackfile import find_project
from tests.conftest import REQUIRED_TAGS, ROOT, SHIPPED_STACKS

PLAN_SCHEMA = json.loads((ROOT / "emlops" / "offline" / "plan.schema.json").read_text())
# What would lose data or history if deleted is the catalogue's STATEFUL_TYPES: production protects and
# retains exactly these. AWS has no tags on the types the catalogue does not mark taggable (bucket settings,
# inline policies, aliases, scaling policies and schedules); Kubernetes objects carry labels, not AWS tags;
# providers and stack references (what the program reads, not manages) are no AWS resources.
UNTAGGABLE_TYPES = frozenset(token for token, entry in CATALOGUE.items() if not entry.taggable)
ACCOUNTS = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333", "shared": "444444444444"}


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_shipped_stack_plan_matches_the_contract(stack, shipped_plan):
    plan = shipped_plan(stack)
    document = json.loads(plan.dumps())
    jsonschema.validate(document, PLAN_SCHEMA)
    assert list(document) == ["schema", "project", "stack", "resources", "outputs"]
    assert (document["schema"], document["project"], document["stack"]) == ("emlops.plan/v1", "emlops", stack)
    urns = [r["urn"] for r in document["resources"]]
    assert len(urns) == len(set(urns))
    for position, resource in enumerate(document["resources"]):
        # `aliases` only where there are some (Pulumi's state leaves them out too)
        assert list(resource) == ["urn", "type", "name", "custom", "parent", "dependencies", "provider",
                                  "inputs", "protect", "retainOnDelete"] + ["aliases"] * ("aliases" in resource)
        # registration order: parents, dependencies and providers come before the resource
        for earlier in [resource["parent"], resource["provider"], *resource["dependencies"]]:
            if earlier is not None:
                assert urns.index(earlier) < position


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_every_aws_resource_uses_the_stacks_explicit_provider(stack, shipped_plan):
    plan = shipped_plan(stack)
    [provider] = plan.by_type("pulumi:providers:aws")
    assert provider.name == f"aws-{stack}"
    assert provider.inputs["region"] == "eu-west-1"
    assert json.loads(provider.inputs["allowedAccountIds"]) == [ACCOUNTS[stack]]
    assert json.loads(provider.inputs["assumeRoles"]) == [{
        "roleArn": f"arn:aws:iam::{ACCOUNTS[stack]}:role/emlops-deploy", "sessionName": f"emlops-{stack}"}]
    required = {"owner", "cost-center", "data-classification"}
    assert required <= set(json.loads(provider.inputs["defaultTags"])["tags"])
    aws_resources = [r for r in plan.resources if r.type.startswith("aws:")]
    assert aws_resources and all(r.provider == provider.urn for r in aws_resources)


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_every_taggable_resource_carries_the_required_tags(stack, shipped_plan):
    plan = shipped_plan(stack)
    taggable = [r for r in plan.resources if "tags" in r.inputs]
    expected = {"aws:kms/key:Key", "aws:s3/bucket:Bucket", "aws:iam/role:Role"} | (
        {"aws:sagemaker/modelPackageGroup:ModelPackageGroup", "aws:ecr/repository:Repository"} if stack == "shared"
        else {"aws:sagemaker/model:Model", "aws:sagemaker/endpoint:Endpoint",
              "aws:sagemaker/endpointConfiguration:EndpointConfiguration", "aws:cloudwatch/metricAlarm:MetricAlarm"})
    assert {r.type for r in taggable} >= expected
    untagged = {r.type for r in plan.resources if r.custom and "tags" not in r.inputs}
    assert untagged <= UNTAGGABLE_TYPES
    for resource in taggable:
        tags = resource.inputs["tags"]
        if isinstance(tags, list):  # aws-native (Cloud Control) takes key/value pairs
            tags = {tag["key"]: tag["value"] for tag in tags}
        assert set(REQUIRED_TAGS) <= set(tags), resource.urn
        assert tags["environment"] == stack and tags["managed-by"] == "emlops"


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_arns_and_names_are_in_aws_formats_for_the_stacks_account(stack, shipped_plan):
    plan = shipped_plan(stack)
    account = ACCOUNTS[stack]
    outputs = plan.outputs
    assert re.fullmatch(rf"arn:aws:kms:eu-west-1:{account}:key/[0-9a-f]{{8}}-[0-9a-f]{{4}}-4[0-9a-f]{{3}}-"
                        r"[89ab][0-9a-f]{3}-[0-9a-f]{12}", outputs["dataKeyArn"])
    # the shared stack holds no datasets and runs no jobs
    buckets = ("accessLogsBucket", "artifactsBucket") if stack == "shared" else (
        "accessLogsBucket", "datasetsBucket", "artifactsBucket")
    assert ("modelBuilderRoleArn" in outputs) == (stack != "shared")
    if stack != "shared":
        assert re.fullmatch(rf"arn:aws:iam::{account}:role/{stack}-model-builder-role-[0-9a-f]{{7}}",
                            outputs["modelBuilderRoleArn"])
    for key in buckets:
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", outputs[key])
    for bucket in plan.by_type("aws:s3/bucket:Bucket"):
        assert re.fullmatch(rf"{bucket.name}-[0-9a-f]{{7}}", bucket.inputs["bucket"])


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_kms_keys_rotate(stack, shipped_plan):
    keys = shipped_plan(stack).by_type("aws:kms/key:Key")
    assert keys and all(k.inputs["enableKeyRotation"] is True for k in keys)


@pytest.mark.parametrize("stack", ["prod", "shared"])
def test_production_stacks_protect_and_retain_every_stateful_resource_and_only_those(stack, shipped_plan):
    plan = shipped_plan(stack)
    stateful = [r for r in plan.resources if r.type in STATEFUL_TYPES]
    assert stateful and all(r.protect and r.retain_on_delete for r in stateful)
    assert not [r.urn for r in plan.resources if r.type not in STATEFUL_TYPES and (r.protect or r.retain_on_delete)]


def test_prod_stateful_resources(shipped_plan):
    plan = shipped_plan("prod")
    stateful = [r for r in plan.resources if r.type in STATEFUL_TYPES]
    counts = {t: plan.type_counts().get(t, 0) for t in STATEFUL_TYPES}
    assert {t: n for t, n in counts.items() if n} == {
        # the data key, the alerts topic's key, the flow logs' key, the audit trail's and the customers data pipeline's
        # log group's
        "aws:kms/key:Key": 5,
        # access-log, dataset, artifact, inference (batch transform results, asynchronous requests and responses),
        # capture and audit-trail buckets
        "aws:s3/bucket:Bucket": 6,
        "aws:ecr/repository:Repository": 1,  # the training repository
        "aws:sagemaker/featureGroup:FeatureGroup": 2,  # customers, churn-labels
        "aws:glue/catalogDatabase:CatalogDatabase": 1,  # the feature groups' offline-store tables
        "aws:sns/topic:Topic": 2,  # the alerts topic, doc-scoring's responses
        "aws:cloudwatch/logGroup:LogGroup": 2,  # the VPC flow logs, the customers data pipeline's function's logs
        "aws-native:sagemaker:ModelCard": 3,  # churn's, fraud's and doc-scoring's model cards
        "aws:cloudtrail/trail:Trail": 1,  # the audit trail
    }
    # prod deploys from (and registers into) the shared registry's groups; MLflow is there too
    assert counts["aws:sagemaker/modelPackageGroup:ModelPackageGroup"] == 0
    assert counts["aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer"] == 0
    assert all(r.protect and r.retain_on_delete for r in stateful)
    assert not [r.urn for r in plan.resources if r.type not in STATEFUL_TYPES and (r.protect or r.retain_on_delete)]


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_non_production_stacks_protect_nothing(stack, shipped_plan):
    assert not [r.urn for r in shipped_plan(stack).resources if r.protect or r.retain_on_delete]


def test_permission_boundary_reaches_every_role_where_configured(shipped_plan):
    for stack, boundary in (("prod", "arn:aws:iam::333333333333:policy/ml-workload-boundary"),
                            ("staging", "arn:aws:iam::222222222222:policy/ml-workload-boundary")):
        roles = shipped_plan(stack).by_type("aws:iam/role:Role")
        assert roles and all(r.inputs["permissionsBoundary"] == boundary for r in roles)
    assert all("permissionsBoundary" not in r.inputs for r in shipped_plan("dev").by_type("aws:iam/role:Role"))


def test_dev_tree_shape(shipped_plan):
    plan = shipped_plan("dev")
    [stack_resource] = plan.children(None)
    assert stack_resource.type == "pulumi:pulumi:Stack" and stack_resource.name == "emlops-dev"
    assert [(r.type, r.name) for r in plan.children(stack_resource.urn)] == [
        ("pulumi:providers:aws", "aws-dev"), ("emlops:index:MlPlatform", "dev"),
    ]
    platform = plan.get("dev", "emlops:index:MlPlatform")
    assert platform.urn == "urn:pulumi:dev::emlops::emlops:index:MlPlatform::dev"
    assert [r.name for r in plan.children(platform.urn)] == [
        "dev-logs", "dev-network", "dev-data", "dev-access-logs", "dev-datasets", "dev-artifacts",
        "dev-model-builder", "dev-features", "dev-training", "dev-alerts-topic-key", "dev-alerts-topic",
        "dev-alerts-topic-policy", "dev-registry", "dev-workloads-sg", "dev-churn",
        "dev-fraud", "dev-assistant", "emlops-dev-churn", "emlops-dev-fraud", "emlops-dev-assistant", "emlops-dev",
        "dev-customers-data", "dev-personas",
    ]
    bucket = plan.get("dev-artifacts-bucket")
    assert bucket.urn == ("urn:pulumi:dev::emlops::emlops:index:MlPlatform$emlops:index:SecureBucket"
                          "$aws:s3/bucket:Bucket::dev-artifacts-bucket")
    assert len(plan.resources) == 182  # the personas' roles and policies: six of them are the business viewer's


def test_two_previews_write_byte_identical_plans(tmp_path, shipped_plan):
    """The test process's cached preview of prod (made whenever a test first needed it) and one made now."""
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    shipped_plan("prod").write(first)
    preview_stack("prod", project=find_project(ROOT)).plan.write(second)
    assert first.read_bytes() == second.read_bytes()
    assert Plan.load(first).dumps() == first.read_text()


def test_invalid_stack_registers_nothing(project_copy, mocker):
    (project_copy / "stacks" / "Pulumi.dev.yaml").write_text(
        (ROOT / "stacks" / "Pulumi.dev.yaml").read_text().replace("account_id: \"111111111111\"", "account_id: \"1111\"")
    )
    spy = mocker.spy(emlops.offline.preview, "run_program")
    with pytest.raises(PreviewError) as caught:
        preview_stack("dev", start=project_copy)
    assert str(caught.value) == (
        "stacks/Pulumi.dev.yaml: emlops:platform.account_id: must be a 12-digit AWS account id, "
        "e.g. '123456789012', got '1111'"
    )
    assert caught.value.exit_code == 2
    spy.assert_not_called()


def test_the_program_itself_rejects_invalid_config_before_creating_resources():
    # What `pulumi up` runs: infra/__main__.py loads the config before building anything.
    from emlops.offline.engine import run_function
    from emlops.offline.mocks import AwsIdentity
    from emlops.program.config import ConfigError
    from emlops.program.platform import load_platform_config

    created = []

    def program():
        load_platform_config()
        created.append("platform")

    with pytest.raises(ConfigError, match=r"^stacks/Pulumi\.dev\.yaml: emlops:platform: field required$"):
        run_function(program, identity=AwsIdentity("111111111111", "eu-west-1"), stack="dev")
    assert created == []


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_sagemaker_inputs_are_valid_create_requests(stack, shipped_plan):
    from emlops.catalog.requests import SUPPORTED_TYPES, to_api_request, validate_request

    plan = shipped_plan(stack)
    checked = [r for r in plan.resources if r.type in SUPPORTED_TYPES]
    serving = [r for r in checked if r.type.startswith(("aws:sagemaker/model:", "aws:sagemaker/endpoint"))]
    # a model, a configuration and an endpoint each, a model per shadow variant's challenger and per batch transform
    shadows = [c for c in plan.by_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
               if c.inputs.get("shadowProductionVariants")]
    assert len(serving) == 3 * len(plan.by_type("aws:sagemaker/endpoint:Endpoint")) + len(shadows) + len(
        plan.by_type("emlops:index:BatchTransform"))
    assert len(shadows) == (1 if stack == "staging" else 0)
    for resource in checked:
        assert validate_request(to_api_request(resource.type, resource.inputs)) == [], resource.urn


def test_prod_endpoints_have_what_production_needs(shipped_plan):
    plan = shipped_plan("prod")
    endpoints = plan.by_type("aws:sagemaker/endpoint:Endpoint")
    assert [e.inputs["name"] for e in endpoints] == ["prod-churn", "prod-fraud", "prod-doc-scoring"]
    alarm_names = {a.inputs["name"] for a in plan.by_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    targets = {t.inputs["resourceId"]: t.inputs for t in plan.by_type("aws:appautoscaling/target:Target")}
    for endpoint in endpoints:
        name = endpoint.inputs["name"]
        config = plan.get(f"{name}-config").inputs
        model = plan.get(f"{name}-model").inputs
        assert model["enableNetworkIsolation"] is True and len(model["vpcConfig"]["subnets"]) == 3
        assert all(v["initialInstanceCount"] >= 2 for v in config["productionVariants"])
        capture = config["dataCaptureConfig"]
        assert capture["enableCapture"] is True and capture["kmsKeyId"] == plan.outputs["dataKeyArn"]
        assert capture["destinationS3Uri"].endswith(f"/datacapture/{name}")
        deployment = endpoint.inputs["deploymentConfig"]
        assert deployment["blueGreenUpdatePolicy"]["trafficRoutingConfiguration"]["type"] in ("CANARY", "LINEAR")
        rollback = [a["alarmName"] for a in deployment["autoRollbackConfiguration"]["alarms"]]
        assert len(rollback) == 2 and set(rollback) <= alarm_names
        for variant in config["productionVariants"]:
            target = targets[f"endpoint/{name}/variant/{variant['variantName']}"]
            if "asyncInferenceConfig" in config:  # a queue waits for capacity: in to zero, out to two or more
                assert (target["minCapacity"], target["maxCapacity"]) == (0, 6)
            else:
                assert target["minCapacity"] >= 2 and target["maxCapacity"] >= target["minCapacity"]


def test_dev_serves_cheaply_without_capture(shipped_plan):
    plan = shipped_plan("dev")
    assert [c.name for c in plan.by_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration")] == [
        "dev-churn-config", "dev-fraud-config", "dev-assistant-config"]
    config = plan.get("dev-churn-config")
    [variant] = config.inputs["productionVariants"]
    assert variant["serverlessConfig"] == {"maxConcurrency": 5, "memorySizeInMb": 2048}
    assert "dataCaptureConfig" not in config.inputs
    model = plan.get("dev-churn-model")
    assert model.inputs["primaryContainer"]["image"] == "111111111111.dkr.ecr.eu-west-1.amazonaws.com/mlflow-pyfunc:3.17.2"
    # the champion of dev's MLflow: offline, without --mlflow-uri, the reference stays visibly unknown
    assert model.inputs["primaryContainer"]["modelDataSource"]["s3DataSources"][0]["s3Uri"] == (
        "[unknown: models:/churn@champion]")
    fraud_model = plan.get("dev-fraud-model").inputs["primaryContainer"]
    assert fraud_model["image"] == "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    assert fraud_model["modelDataUrl"] == "s3://acme-ml-dev-models/fraud/2026-11-20/model.tar.gz"
    # fraud: one small instance in the private subnets, no capture, no autoscaling
    fraud = plan.get("dev-fraud-config")
    [variant] = fraud.inputs["productionVariants"]
    assert (variant["instanceType"], variant["initialInstanceCount"]) == ("ml.m5.large", 1)
    assert "dataCaptureConfig" not in fraud.inputs
    assert len(plan.get("dev-fraud-model").inputs["vpcConfig"]["subnets"]) == 2
    assert not plan.by_type("aws:appautoscaling/target:Target")


def test_registry_references_stay_explicitly_unknown_offline(shipped_plan):
    group = "arn:aws:sagemaker:eu-west-1:444444444444:model-package-group/{} (latest Approved)"
    churn = shipped_plan("staging").get("staging-churn-model").inputs["primaryContainer"]
    assert churn == {"modelPackageName": f"[unknown: {group.format('churn')}]"}
    fraud = shipped_plan("prod").get("prod-fraud-model").inputs["primaryContainer"]
    assert fraud == {"modelPackageName": f"[unknown: {group.format('fraud')}]"}


@pytest.mark.processes
def test_previews_without_framework_images_or_mlflow_do_not_import_them(project_copy):
    # staging without its monitor needs neither the SDK's image catalogue nor MLflow
    stack = project_copy / "stacks" / "Pulumi.staging.yaml"
    text = stack.read_text()
    monitoring = text[text.index("        monitoring:\n"):text.index("        deployment:\n")]
    stack.write_text(text.replace("        data_capture:\n          sampling_percentage: 50\n", "").replace(
        monitoring, "        monitoring:\n          enabled: false\n"))
    code = ("import sys; from emlops.offline.preview import preview_stack; preview_stack('staging'); "
            "print(sorted(m for m in ('sagemaker', 'mlflow') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=project_copy, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_stack_outputs_name_each_endpoint_with_its_artifact_and_capture(shipped_plan):
    assert shipped_plan("prod").outputs["endpoints"]["churn"] == {
        "name": "prod-churn",
        "arn": "arn:aws:sagemaker:eu-west-1:333333333333:endpoint/prod-churn",
        "modelArtifactUri": "[unknown: arn:aws:sagemaker:eu-west-1:444444444444:model-package-group/churn "
                            "(latest Approved)]",
        "dataCaptureUri": shipped_plan("prod").get("prod-churn-config").inputs["dataCaptureConfig"]["destinationS3Uri"],
    }
    assert shipped_plan("dev").outputs["endpoints"]["churn"] == {
        "name": "dev-churn",
        "arn": "arn:aws:sagemaker:eu-west-1:111111111111:endpoint/dev-churn",
        "modelArtifactUri": "[unknown: models:/churn@champion]",
        "dataCaptureUri": None,
    }


def test_models_and_endpoint_configurations_are_auto_named_so_changes_replace_them_safely(shipped_plan):
    # A fixed physical name would force Pulumi to delete the live configuration before creating the
    # new one; auto-names let it create the new one, update the endpoint (blue/green), then delete.
    plan = shipped_plan("prod")
    for type_ in ("aws:sagemaker/model:Model", "aws:sagemaker/endpointConfiguration:EndpointConfiguration"):
        for resource in plan.by_type(type_):
            assert re.fullmatch(rf"{resource.name}-[0-9a-f]{{7}}", resource.inputs["name"])


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_no_shipped_plan_holds_a_dynamic_provider_resource(stack, shipped_plan):
    """Every resource is a provider's (pulumi-aws, pulumi-aws-native, pulumi-kubernetes) or a component: no Python
    dynamic provider, whose pickled code the state would carry and every later `pulumi up` would have to import."""
    plan = shipped_plan(stack)
    assert [r.urn for r in plan.resources if r.type.startswith("pulumi-python:dynamic")] == []
    assert {r.type.split(":", 1)[0] for r in plan.resources} <= {"aws", "aws-native", "kubernetes", "emlops", "pulumi"}
