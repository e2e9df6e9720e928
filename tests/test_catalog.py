"""The resource catalogue: one entry per resource type, exact where it matters, and the one source the mocks,
diff, graph, guardrails and request validation read."""

from __future__ import annotations

import ast
import copy
import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from emlops.catalog import resources_sagemaker as sagemaker
from emlops.catalog.aws import has_local_storage
from emlops.catalog.requests import SUPPORTED_TYPES
from emlops.catalog.resource_type import ALL, BY_ARN, RANDOM_UUID, random_uuid
from emlops.catalog.resources import (CATALOGUE, GRAPH_LABELS, STATEFUL_TYPES, UnknownResourceType, assumed, lookup,
                                      resource_type, source_of)
from emlops.catalog.resources_iam import ROLE
from emlops.catalog.resources_operations import DASHBOARD
from emlops.catalog.resources_storage import KMS_KEY
from emlops.offline.mocks import AwsIdentity
from emlops.offline.plan import Plan
from emlops.review.diff import ResourceDiff, diff_plans, physical_name, replaces, warnings
from emlops.review.graph import build_graph
from tests.conftest import ACCOUNT, REGION, ROOT, SHIPPED_STACKS

EU = AwsIdentity(ACCOUNT, REGION)
CHINA = AwsIdentity(ACCOUNT, "cn-north-1")


# -- every type the platform registers has an entry ---------------------------------------------------

@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_every_resource_type_in_a_shipped_plan_has_a_catalogue_entry(stack, shipped_plan):
    types = {r.type for r in shipped_plan(stack).resources if r.custom}
    assert types and sorted(t for t in types if lookup(t) is None) == []


def test_an_unknown_type_is_an_error_that_says_where_to_add_it():
    with pytest.raises(UnknownResourceType) as caught:
        resource_type("aws:sqs/queue:Queue")
    assert str(caught.value) == (
        "aws:sqs/queue:Queue has no entry in the resource catalogue; add a ResourceType for it (ARN format, physical "
        "id, naming, replace-on-change inputs, stateful, taggable, graph label) to its service's module in "
        "emlops/catalog/ (resources_<service>.py)")
    assert lookup("aws:sqs/queue:Queue") is None
    assert resource_type(KMS_KEY.token) is KMS_KEY and source_of(KMS_KEY.token) == "emlops/catalog/resources_storage.py"


def test_what_is_assumed_of_a_type_without_an_entry():
    aws = assumed("aws:sqs/queue:Queue")
    assert (aws.naming.property, aws.replace_on_change, aws.stateful, aws.label) == ("name", ("name",), False, None)
    kubernetes = assumed("kubernetes:batch/v1:Job")
    assert (kubernetes.naming.property, kubernetes.replace_on_change) == (
        "metadata.name", ("metadata.name", "metadata.namespace"))
    assert assumed(KMS_KEY.token) is KMS_KEY


# -- exact entries ----------------------------------------------------------------------------------

def test_kms_key():
    assert KMS_KEY.token == "aws:kms/key:Key"
    assert KMS_KEY.arn == "arn:{partition}:kms:{region}:{account}:key/{id}"
    key_id = KMS_KEY.physical_id_of({}, "urn:k", EU)
    assert KMS_KEY.physical_id == RANDOM_UUID and key_id == random_uuid("urn:k")
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", key_id)
    assert KMS_KEY.computed_outputs(key_id, {}, EU) == {
        "keyId": key_id, "arn": f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{key_id}"}
    assert KMS_KEY.computed_outputs(key_id, {}, CHINA)["arn"] == f"arn:aws-cn:kms:cn-north-1:{ACCOUNT}:key/{key_id}"
    assert (KMS_KEY.stateful, KMS_KEY.taggable, KMS_KEY.label) == (True, True, "KMS key")


def test_iam_role():
    assert ROLE.token == "aws:iam/role:Role"
    assert ROLE.arn == "arn:{partition}:iam::{account}:role{path}{name}"
    assert (ROLE.naming.auto, ROLE.naming.max_length, ROLE.input_defaults) == (True, 64, {"path": "/"})
    outputs = ROLE.computed_outputs("x", {"name": "churn-role", "path": "/personas/"}, EU)
    assert outputs["arn"] == f"arn:aws:iam::{ACCOUNT}:role/personas/churn-role"
    assert re.fullmatch(r"AROA[0-9A-F]{17}", outputs["uniqueId"])
    assert ROLE.replace_on_change == ("name", "namePrefix", "path") and not ROLE.stateful


def test_sagemaker_endpoint():
    endpoint = sagemaker.ENDPOINT
    assert endpoint.token == "aws:sagemaker/endpoint:Endpoint"
    assert endpoint.arn == "arn:{partition}:sagemaker:{region}:{account}:endpoint/{name_lower}"
    # SageMaker lower-cases names in its ARNs; the endpoint is identified by its name
    state = {"name": "Prod-Churn-1a2b3c4"}
    assert endpoint.physical_id_of(state, "urn:e", EU) == "Prod-Churn-1a2b3c4"
    assert endpoint.computed_outputs("Prod-Churn-1a2b3c4", state, EU) == {
        "arn": f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:endpoint/prod-churn-1a2b3c4"}
    assert endpoint.replace_on_change == ("name",)  # a new endpoint configuration is a blue/green update
    assert endpoint.create.operation == "CreateEndpoint" and endpoint.label == "endpoint"


def test_cloudwatch_dashboard():
    assert DASHBOARD.token == "aws:cloudwatch/dashboard:Dashboard"
    # dashboards are global: the ARN names no region
    assert DASHBOARD.arn == "arn:{partition}:cloudwatch::{account}:dashboard/{dashboardName}"
    state = {"dashboardName": "dev-churn", "dashboardBody": '{"widgets": []}'}
    assert DASHBOARD.physical_id_of(state, "urn:d", EU) == "dev-churn"
    assert DASHBOARD.computed_outputs("dev-churn", state, EU) == {
        "dashboardArn": f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/dev-churn"}
    assert DASHBOARD.computed_outputs("dev-churn", state, CHINA)["dashboardArn"] == (
        f"arn:aws-cn:cloudwatch::{ACCOUNT}:dashboard/dev-churn")
    # a new name is a new dashboard; a new body is PutDashboard on the same one
    assert DASHBOARD.replaces("dashboardName") and not DASHBOARD.replaces("dashboardBody")
    assert (DASHBOARD.naming.property, DASHBOARD.naming.auto, DASHBOARD.naming.max_length) == (
        "dashboardName", False, 255)
    assert DASHBOARD.naming.problem("dev_churn-2") is None
    assert DASHBOARD.naming.problem("dev churn") == (
        "has characters AWS does not allow (the name must match [A-Za-z0-9_-]+)")
    assert DASHBOARD.naming.problem("d" * 256) == "is 256 characters; AWS allows 255"
    assert (DASHBOARD.stateful, DASHBOARD.taggable, DASHBOARD.label) == (False, False, "dashboard")
    assert (DASHBOARD.create.service, DASHBOARD.create.operation) == ("cloudwatch", "PutDashboard")


def test_the_aws_native_model_quality_job_definition():
    job = sagemaker.MODEL_QUALITY_JOB_DEFINITION
    assert job.token == "aws-native:sagemaker:ModelQualityJobDefinition"
    assert job.arn == ("arn:{partition}:sagemaker:{region}:{account}:model-quality-job-definition/"
                       "{jobDefinitionName_lower}")
    assert (job.arn_output, job.physical_id, job.replace_on_change) == ("jobDefinitionArn", BY_ARN, (ALL,))
    assert (job.naming.property, job.naming.auto, job.naming.max_length) == ("jobDefinitionName", True, 63)
    state = {"jobDefinitionName": "Churn-Quality-1a2b3c4"}
    assert job.physical_id_of(state, "urn:j", EU) == "pending"  # Cloud Control's id is the ARN, known next
    assert job.computed_outputs("pending", state, EU) == {
        "creationTime": "2026-01-01T00:00:00Z",
        "jobDefinitionArn": f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model-quality-job-definition/churn-quality-1a2b3c4"}
    assert job.taggable and not job.answers_tags_all  # Cloud Control takes tags, as a list, and has no tagsAll


def test_an_s3_bucket_and_its_settings():
    bucket = resource_type("aws:s3/bucket:Bucket")
    assert (bucket.naming.property, bucket.naming.max_length, bucket.naming.lowercase) == ("bucket", 63, True)
    state = {"bucket": "prod-data-1a2b3c4"}
    assert bucket.physical_id_of(state, "urn:b", EU) == "prod-data-1a2b3c4"
    assert bucket.computed_outputs("prod-data-1a2b3c4", state, EU) == {
        "arn": "arn:aws:s3:::prod-data-1a2b3c4", "bucketDomainName": "prod-data-1a2b3c4.s3.amazonaws.com",
        "bucketRegionalDomainName": "prod-data-1a2b3c4.s3.eu-west-1.amazonaws.com", "region": "eu-west-1"}
    versioning = resource_type("aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.physical_id_of(state, "urn:v", EU) == "prod-data-1a2b3c4"
    assert versioning.replaces("bucket") and not versioning.replaces("versioningConfiguration.status")
    # S3's events to EventBridge (batch transforms started by new data): the bucket's, nothing stateful in it
    events = resource_type("aws:s3/bucketNotification:BucketNotification")
    assert events.physical_id_of({**state, "eventbridge": True}, "urn:n", EU) == "prod-data-1a2b3c4"
    assert (events.arn, events.stateful, events.taggable, events.label) == (None, False, False, None)
    assert events.replaces("bucket") and not events.replaces("eventbridge")
    assert events.computed_outputs("prod-data-1a2b3c4", state, EU) == {}


def test_ec2_ids_are_a_type_prefix_and_17_hex_digits():
    group = resource_type("aws:ec2/securityGroup:SecurityGroup")
    group_id = group.physical_id_of({"name": "workloads"}, "urn:sg", EU)
    assert re.fullmatch(r"sg-[0-9a-f]{17}", group_id)
    arn = group.computed_outputs(group_id, {}, EU)["arn"]
    assert arn == f"arn:aws:ec2:eu-west-1:{ACCOUNT}:security-group/{group_id}"


# -- consistency with the provider SDKs ----------------------------------------------------------------

def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def _sdk_classes(token: str) -> tuple[type, type]:
    """The provider SDK's resource class and its Args class."""
    package, module_path, class_name = token.split(":")
    sdk = {"aws": "pulumi_aws", "aws-native": "pulumi_aws_native"}[package]
    module = module_path.split("/")[0]
    module = {"lambda": "lambda_"}.get(module, module)  # a Python keyword: the SDK's module is `lambda_`
    mod = importlib.import_module(f"{sdk}.{module}" if module != "index" else sdk)
    return getattr(mod, class_name), getattr(mod, f"{class_name}Args")


def _is_output(cls: type, camel: str) -> bool:
    return isinstance(getattr(cls, _snake(camel), None), property)


SDK_TYPES = sorted(t for t in CATALOGUE if t.split(":")[0] in ("aws", "aws-native"))


@pytest.mark.parametrize("token", SDK_TYPES)
def test_entries_agree_with_the_provider_sdk(token):
    entry = CATALOGUE[token]
    cls, args = _sdk_classes(token)
    assert entry.taggable == hasattr(args, "tags")
    assert entry.answers_tags_all == _is_output(cls, "tagsAll")
    if entry.naming.auto:  # Pulumi auto-names only what the program may leave out and the provider answers
        assert hasattr(args, _snake(entry.naming.property)) and _is_output(cls, entry.naming.property)
    elif entry.package == "aws" and entry.naming.property == "name":
        assert not (_is_output(cls, "name") and "name" in _optional_args(args))
    if entry.arn is not None:
        assert _is_output(cls, entry.arn_output)
    elif _is_output(cls, "arn"):  # the mocks refuse these until the entry has AWS's format
        assert source_of(token) == "emlops/catalog/resources_other.py" or token in (
            "aws:s3/bucketV2:BucketV2", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")


def _optional_args(args: type) -> set[str]:
    import inspect

    params = inspect.signature(args.__init__).parameters
    return {name for name, p in params.items() if p.default is not inspect.Parameter.empty}


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_every_arn_a_shipped_plan_reads_has_a_format(stack, shipped_plan):
    for token in {r.type for r in shipped_plan(stack).resources if r.custom and r.type in SDK_TYPES}:
        entry = CATALOGUE[token]
        assert (entry.arn is not None) == _is_output(_sdk_classes(token)[0], entry.arn_output), token


def test_request_validation_covers_the_entries_with_a_create_request():
    assert SUPPORTED_TYPES == {t for t, e in CATALOGUE.items() if e.create is not None}
    assert sagemaker.MODEL.create.renames == {"name": "ModelName"}


# -- stateful types, replacement and what diff reports --------------------------------------------------

@pytest.mark.parametrize("token", sorted(STATEFUL_TYPES))
def test_every_stateful_type_is_replaced_as_its_entry_says_and_diff_warns(token):
    entry = CATALOGUE[token]
    assert entry.replace_on_change
    for path in entry.replace_on_change:
        assert replaces(token, path) and replaces(token, f"{path}.child") and replaces(token, f"{path}[0]")
    assert not replaces(token, "tags.owner") and not replaces(token, "(protect)")
    if entry.naming.auto or entry.naming.property != "name":  # it has a physical name: a new one replaces it
        assert replaces(token, entry.naming.property)
    assert ResourceDiff("remove", _resource(token), "base").stateful


@pytest.mark.parametrize("token", sorted(CATALOGUE))
def test_diff_calls_exactly_the_catalogues_stateful_types_stateful(token):
    assert ResourceDiff("remove", _resource(token), "base").stateful == CATALOGUE[token].stateful


def _resource(token: str):
    from emlops.offline.plan import PlanResource

    return PlanResource(f"urn:pulumi:t::p::{token}::r", token, "r", True, None, [], None, {}, False, False)


def test_replacing_each_stateful_resource_of_prod_is_reported_with_its_data_at_stake(shipped_plan):
    base = shipped_plan("prod")
    stateful = [r for r in base.resources if r.type in STATEFUL_TYPES]
    assert {r.type for r in stateful} >= {"aws:kms/key:Key", "aws:s3/bucket:Bucket", "aws:sns/topic:Topic"}
    for resource in stateful:
        entry = resource_type(resource.type)
        head = copy.deepcopy(base)
        edited = head.get(resource.name, resource.type)
        path = entry.naming.property if physical_name(resource) else entry.replace_on_change[0]
        edited.inputs[path] = "replaced-value"
        [change] = [r for r in diff_plans(base, head).resources if r.resource.urn == resource.urn]
        assert change.action == "replace" and change.stateful, resource.urn
        assert warnings(change)[0].startswith(f"replaces (deletes the old one) stateful resource `{resource.name}`")


# -- the tools read the catalogue -------------------------------------------------------------------

TOOLS = ["emlops/offline/mocks.py", "emlops/offline/engine.py", "emlops/review/diff.py", "emlops/review/graph.py",
         "emlops/review/check.py", "emlops/catalog/requests.py"]
_TYPE_TOKEN = re.compile(r"(aws-native|aws|kubernetes|pulumi):")
_FUNCTION_TOKEN = re.compile(r":get[A-Z]\w*$")  # data sources (`aws:index/getRegion:getRegion`), not resources


def _string_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


@pytest.mark.parametrize("module", TOOLS)
def test_no_type_token_is_spelled_outside_the_catalogue(module):
    literals = [s for s in _string_literals(ROOT / module) if _TYPE_TOKEN.match(s) and not _FUNCTION_TOKEN.search(s)]
    assert literals == []


def test_the_old_per_tool_tables_are_gone():
    assert importlib.util.find_spec("emlops.offline.mock_tables") is None
    assert importlib.util.find_spec("emlops.review.diff_rules") is None
    import emlops.guardrails.governance as governance
    import emlops.offline.mocks as mocks
    import emlops.review.diff as diff
    import emlops.review.graph as graph

    assert not [name for name in ("ARN_FORMATS", "AUTONAME_OVERRIDES", "MAX_NAME_LENGTH", "LOWERCASE_NAMES")
                if hasattr(mocks, name)]
    assert not hasattr(diff, "NAME_PROPERTIES") and not hasattr(diff, "REPLACE_ON_CHANGE")
    assert not hasattr(graph, "NODE_TYPES")
    assert governance.STATEFUL_TYPES is STATEFUL_TYPES and diff.STATEFUL_TYPES is STATEFUL_TYPES


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_graph_nodes_are_the_types_the_catalogue_labels(stack, shipped_plan):
    plan = shipped_plan(stack)
    drawn = [r for members in build_graph(plan).groups.values() for r in members]
    assert drawn and {r.urn for r in drawn} == {r.urn for r in plan.resources if r.custom and r.type in GRAPH_LABELS}
    assert GRAPH_LABELS == {t: e.label for t, e in CATALOGUE.items() if e.label is not None}


def test_the_catalogue_imports_no_tool_and_no_sdk():
    forbidden = ("emlops.offline", "emlops.review", "emlops.cli", "emlops.program", "emlops.components",
                 "emlops.guardrails")
    for path in sorted((ROOT / "emlops" / "catalog").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not [n for n in names if n.startswith(forbidden)], path.name
    # `emlops diff` and `emlops graph` read the catalogue without paying for the Pulumi SDKs
    code = ("import sys, emlops.catalog.resources, emlops.catalog.requests; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'pulumi_aws', 'botocore')))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


# -- the guardrails read it -------------------------------------------------------------------------

def test_taggable_types_include_aws_native_and_fall_back_to_the_sdk_for_unknown_types():
    from emlops.guardrails.governance import is_taggable

    assert is_taggable("aws-native:sagemaker:ModelQualityJobDefinition")
    assert not is_taggable("aws:kms/alias:Alias") and not is_taggable("kubernetes:core/v1:Namespace")
    assert not is_taggable("pulumi:providers:aws")
    assert is_taggable("aws:sqs/queue:Queue") and is_taggable("aws-native:s3:Bucket")  # not catalogued
    assert not is_taggable("aws:sqs/queuePolicy:QueuePolicy")


def test_aws_native_tag_lists_are_read_as_tags():
    from emlops.guardrails.helpers import UNKNOWN, tags_of

    assert tags_of({"tags": [{"key": "owner", "value": "ml"}, {"key": "env", "value": "[unknown: x]"}]}) == {
        "owner": "ml", "env": UNKNOWN}
    assert tags_of({"tags": [{"key": "[unknown: y]", "value": "v"}]}) is UNKNOWN
    assert tags_of({"tags": {"owner": "ml"}}) == {"owner": "ml"} and tags_of({}) == {}


def test_required_tags_apply_to_the_aws_native_job_definition(shipped_plan):
    from emlops.guardrails import RULES, Settings
    from emlops.review.check import evaluate

    plan: Plan = copy.deepcopy(shipped_plan("prod"))
    [job] = plan.by_type(sagemaker.MODEL_QUALITY_JOB_DEFINITION.token)
    [provider] = plan.by_type("pulumi:providers:aws-native")
    assert [v.name for v in evaluate(plan, Settings(), [RULES["required-tags"]])] == []
    provider.inputs.pop("defaultTags")
    job.inputs["tags"] = [tag for tag in job.inputs["tags"] if tag["key"] != "owner"]
    assert [(v.name, v.message) for v in evaluate(plan, Settings(), [RULES["required-tags"]])] == [
        (job.name, "missing required tags: owner")]


# -- SageMaker instance storage -----------------------------------------------------------------------

@pytest.mark.parametrize("instance_type, local", [
    ("ml.m5.large", False), ("ml.c5.xlarge", False), ("ml.m5d.large", True), ("ml.r5d.2xlarge", True),
    ("ml.g4dn.xlarge", True), ("ml.g5.2xlarge", True), ("ml.p4d.24xlarge", True), ("ml.inf2.xlarge", True),
    ("ml.t2.medium", False), ("ml.g4ad.xlarge", True),
])
def test_instance_types_with_local_nvme_storage(instance_type, local):
    # components/endpoint_args.py keeps its own copy until the components import this one
    components = importlib.import_module("emlops.components.endpoint_args")
    assert has_local_storage(instance_type) is local
    assert getattr(components, "has_local_storage", has_local_storage)(instance_type) is local
