"""Environments: the network config, production's invariants, the account rule, what the shipped stacks build
in their private network, and what a one-model change touches."""

from __future__ import annotations

import copy
import json
import re
from typing import Any, Iterator

import pytest
import yaml

from emlops.review.diff import diff_plans
from emlops.offline.plan import Plan, PlanResource
from emlops.offline.preview import preview_stack
from emlops.program.config import ConfigError
from emlops.program.platform import parse_platform_config
from tests.conftest import ROOT, edit_stack, preview_error

PROD_SOURCE = "stacks/Pulumi.prod.yaml"
AT = f"{PROD_SOURCE}: emlops:platform"
BYO = {"vpc_id": "vpc-0123456789abcdef0",
       "private_subnet_ids": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1", "subnet-0123456789abcdef2"]}
PRIVATE_SUBNET = re.compile(r"^subnet-[0-9a-f]{17}$")
INTERFACE_SERVICES = ["sagemaker.api", "sagemaker.runtime", "sagemaker.featurestore-runtime", "sts", "logs",
                      "monitoring", "ecr.api", "ecr.dkr", "kms", "events"]


def shipped_config(stack: str) -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())
    return copy.deepcopy(document["config"]["emlops:platform"])


def config_error(raw: dict[str, Any], source: str = PROD_SOURCE) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_platform_config(raw, source)
    return str(caught.value)


# -- network config: managed or your own, exactly one ----------------------------------------------

def test_shipped_stacks_use_managed_networks_with_three_zones_in_prod():
    zones = {stack: parse_platform_config(shipped_config(stack), stack).network.managed.az_count
             for stack in ("dev", "staging", "prod")}
    assert zones == {"dev": 2, "staging": 2, "prod": 3}


@pytest.mark.parametrize("network, message", [
    ({"managed": {"az_count": 3}, **BYO},
     f"{AT}.network.managed: give either managed (a VPC emlops builds) or vpc_id and private_subnet_ids (your "
     "own VPC), not both; drop vpc_id and private_subnet_ids or managed"),
    ({"managed": {"az_count": 3}, "vpc_id": BYO["vpc_id"]},
     f"{AT}.network.managed: give either managed (a VPC emlops builds) or vpc_id and private_subnet_ids (your "
     "own VPC), not both; drop vpc_id or managed"),
    ({}, f"{AT}.network: give managed (a VPC emlops builds) or vpc_id and private_subnet_ids (your own VPC)"),
    ({"vpc_id": BYO["vpc_id"]},
     f"{AT}.network.private_subnet_ids: field required with vpc_id (your VPC's private subnets, in at least two "
     "availability zones)"),
    ({"private_subnet_ids": BYO["private_subnet_ids"]},
     f"{AT}.network.vpc_id: field required with private_subnet_ids (the VPC of your subnets)"),
    ({"managed": {"az_count": 7}}, f"{AT}.network.managed.az_count: must be less than or equal to 6, got 7"),
    ({"managed": {"cidr_block": "8.8.0.0/16"}},
     f"{AT}.network.managed.cidr_block: '8.8.0.0/16' is not private; use a block inside 10.0.0.0/8, 172.16.0.0/12 "
     "or 192.168.0.0/16 (RFC 1918)"),
    ({"managed": {"az_count": 3, "subnets": 3}},
     f"{AT}.network.managed.subnets: unknown key; did you mean 'public_subnets'? allowed keys: cidr_block, "
     "az_count, public_subnets, flow_log_retention_days, availability_zones"),
])
def test_network_is_managed_or_your_own_with_one_line_errors(network, message):
    raw = shipped_config("prod")
    raw["network"] = network
    assert config_error(raw) == message


def test_your_own_network_still_parses():
    raw = shipped_config("prod")
    raw["network"] = BYO
    network = parse_platform_config(raw, PROD_SOURCE).network
    assert (network.managed, network.vpc_id, network.zone_count) == (None, BYO["vpc_id"], 3)


# -- production invariants --------------------------------------------------------------------------

@pytest.mark.parametrize("network, message", [
    ({"managed": {"az_count": 2}},
     f"{AT}.network.managed.az_count: production networks span at least 3 availability zones, got 2"),
    ({"managed": {"az_count": 3, "public_subnets": True}},
     f"{AT}.network.managed.public_subnets: production networks have private subnets only; workloads reach AWS "
     "through the VPC endpoints (set it to false)"),
    ({**BYO, "private_subnet_ids": BYO["private_subnet_ids"][:2]},
     f"{AT}.network.private_subnet_ids: production networks span at least 3 availability zones: give 3 private "
     "subnets in different zones, got 2"),
])
def test_production_networks_span_three_zones_and_are_private(network, message):
    raw = shipped_config("prod")
    raw["network"] = network
    assert config_error(raw) == message


def test_non_production_may_use_two_zones_and_public_subnets():
    raw = shipped_config("staging")
    raw["network"] = {"managed": {"az_count": 2, "public_subnets": True}}
    assert parse_platform_config(raw, "stacks/Pulumi.staging.yaml").network.managed.public_subnets is True


def test_production_keeps_its_other_invariants():
    raw = shipped_config("prod")
    raw["models"][0]["variants"][0]["initial_instance_count"] = 1
    assert config_error(raw) == (f"{AT}.models[0].variants[0].initial_instance_count: production endpoints need at "
                                 "least 2 instances per variant, got 1")
    raw = shipped_config("prod")
    del raw["models"][0]["autoscaling"]
    assert config_error(raw) == (f"{AT}.models[0].autoscaling: production endpoints need autoscaling "
                                 "(min_instances >= 2)")


def test_instances_and_training_need_a_network_with_the_new_wording():
    raw = shipped_config("prod")
    del raw["network"]
    assert config_error(raw) == (f"{AT}.models[0]: runs on instances in private subnets; add network.managed (or "
                                 "network.vpc_id and network.private_subnet_ids), or use serverless")


# -- the account rule -------------------------------------------------------------------------------

DEV_IMAGE = '''        image:
          uri: 111111111111.dkr.ecr.eu-west-1.amazonaws.com/mlflow-pyfunc:3.17.2
        serverless:'''


def test_dev_may_not_pull_prods_image(project_copy):
    edit_stack(project_copy, "dev", DEV_IMAGE, '''        image:
          uri: 333333333333.dkr.ecr.eu-west-1.amazonaws.com/mlflow-pyfunc:3.17.2
        serverless:''')
    assert preview_error(project_copy, "dev") == (
        "stacks/Pulumi.dev.yaml: emlops:platform.models[0].image.uri: '333333333333' is the account of stack 'prod' "
        "(environment 'prod'); a stack references only its own account and shared-services accounts (environment "
        "'shared')")


def test_an_s3_uri_in_another_environments_bucket_is_refused(project_copy):
    edit_stack(project_copy, "dev", "s3_uri: s3://acme-ml-dev-models/fraud/2026-11-20/model.tar.gz",
               "s3_uri: s3://acme-ml-222222222222-models/fraud/model.tar.gz")
    assert preview_error(project_copy, "dev") == (
        "stacks/Pulumi.dev.yaml: emlops:platform.models[1].source.s3_uri: '222222222222' is the account of stack "
        "'staging' (environment 'staging'); a stack references only its own account and shared-services accounts "
        "(environment 'shared')")


def test_the_shared_account_may_be_referenced(project_copy):
    edit_stack(project_copy, "dev", DEV_IMAGE, '''        image:
          uri: 444444444444.dkr.ecr.eu-west-1.amazonaws.com/mlflow-pyfunc:3.17.2
        serverless:''')
    from emlops.program.stackfile import find_project, load_stack

    config = load_stack(find_project(project_copy), "dev")
    assert config.platform.models[0].image.uri.startswith("444444444444.")


SHARED_CHURN = "          model_package_group: churn\n"


def test_registry_consumers_and_publishers_are_the_promotion_path(project_copy):
    from emlops.program.stackfile import find_project, load_stack

    project = find_project(project_copy)
    # the shared stack lists staging and prod as consumers and prod as publisher: allowed
    registry = load_stack(project, "shared").platform.registry
    assert (registry.consumer_account_ids, registry.publisher_account_ids) == (["222222222222", "333333333333"],
                                                                               ["333333333333"])
    # staging may pin a package of the shared registry
    edit_stack(project_copy, "staging", SHARED_CHURN,
               "          model_package_arn: arn:aws:sagemaker:eu-west-1:444444444444:model-package/churn/3\n")
    assert load_stack(project, "staging").platform.models[0].source.model_package_arn.endswith("/churn/3")


def test_a_package_of_a_registry_that_does_not_list_the_stack_is_refused(project_copy):
    edit_stack(project_copy, "staging", SHARED_CHURN,
               "          model_package_arn: arn:aws:sagemaker:eu-west-1:333333333333:model-package/churn/3\n")
    assert preview_error(project_copy, "staging") == (
        "stacks/Pulumi.staging.yaml: emlops:platform.models[0].source.model_package_arn: '333333333333' is the "
        "account of stack 'prod' (environment 'prod'); stack 'prod' does not list '222222222222' in its "
        "registry.consumer_account_ids")


# -- the shipped prod plan: a private network, and everything in it ---------------------------------

def private_subnets(plan: Plan, network: str) -> list[str]:
    """The ids of the network's private subnets, as the plan gives them (through their route table associations)."""
    subnets = [r for r in plan.by_type("aws:ec2/subnet:Subnet") if r.name.startswith(f"{network}-private-")]
    ids = [plan.get(f"{subnet.name}-rta").inputs["subnetId"] for subnet in subnets]
    assert ids and all(PRIVATE_SUBNET.match(i) for i in ids) and len(set(ids)) == len(ids)
    return ids


def subnet_references(value: Any) -> Iterator[list[str]]:
    """Every list of subnets under `value`, JSON documents (pipeline definitions) included."""
    if isinstance(value, str) and value.startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            return
    if isinstance(value, dict):
        for key, item in value.items():
            if key.lower() in ("subnets", "subnetids") and isinstance(item, list):
                yield item
            else:
                yield from subnet_references(item)
    elif isinstance(value, list):
        for item in value:
            yield from subnet_references(item)


def test_prod_network_is_private_with_vpc_endpoints(shipped_plan):
    plan = shipped_plan("prod")
    endpoints = plan.by_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert len(endpoints) >= 10
    interface = [e.inputs["serviceName"] for e in endpoints if e.inputs["vpcEndpointType"] == "Interface"]
    assert interface == [f"com.amazonaws.eu-west-1.{service}" for service in INTERFACE_SERVICES]
    [gateway] = [e for e in endpoints if e.inputs["vpcEndpointType"] == "Gateway"]
    assert gateway.inputs["serviceName"] == "com.amazonaws.eu-west-1.s3"
    subnets = private_subnets(plan, "prod-network")
    assert len(subnets) == 3
    assert all(e.inputs["subnetIds"] == subnets and e.inputs["privateDnsEnabled"] is True
               for e in endpoints if e.inputs["vpcEndpointType"] == "Interface")
    for absent in ("aws:ec2/internetGateway:InternetGateway", "aws:ec2/natGateway:NatGateway", "aws:ec2/eip:Eip",
                   "aws:ec2/route:Route"):
        assert not plan.by_type(absent), absent
    assert [s.inputs["mapPublicIpOnLaunch"] for s in plan.by_type("aws:ec2/subnet:Subnet")] == [False] * 3
    flow_log = plan.get("prod-network-flow-log").inputs
    assert (flow_log["trafficType"], flow_log["logDestinationType"]) == ("ALL", "cloud-watch-logs")
    group = plan.get("prod-network-flow-logs")
    assert group.protect and group.retain_on_delete
    assert group.inputs["kmsKeyId"].startswith("arn:aws:kms:eu-west-1:333333333333:key/")


def test_flow_log_key_lets_only_cloudwatch_logs_of_the_region_use_it(shipped_plan):
    plan = shipped_plan("prod")
    key = plan.get("prod-logs-key", "aws:kms/key:Key")
    assert key.protect and key.inputs["enableKeyRotation"] is True
    policy = json.loads(key.inputs["policy"])
    services = [s["Principal"]["Service"] for s in policy["Statement"] if "Service" in s.get("Principal", {})]
    assert services == [["logs.eu-west-1.amazonaws.com"]]


@pytest.mark.parametrize("stack", ["prod", "staging", "dev"])
def test_every_workload_runs_in_the_networks_private_subnets(stack, shipped_plan):
    plan = shipped_plan(stack)
    subnets = private_subnets(plan, f"{stack}-network")
    vpc = plan.get(f"{stack}-network-default-sg").inputs["vpcId"]
    expected_types = {"aws:sagemaker/model:Model"}
    if stack == "prod":
        expected_types |= {"aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition",
                           "aws:sagemaker/pipeline:Pipeline"}
    if stack == "staging":
        expected_types |= {"aws:eks/cluster:Cluster", "aws:eks/nodeGroup:NodeGroup"}
    found = set()
    for resource in plan.resources:
        for listed in subnet_references(resource.inputs):
            if resource.type == "aws:ec2/vpcEndpoint:VpcEndpoint":
                continue
            assert listed == subnets, resource.urn
            found.add(resource.type)
    assert expected_types <= found
    # every monitoring schedule with an inline job runs there too (a data-quality schedule names its job)
    for schedule in plan.by_type("aws:sagemaker/monitoringSchedule:MonitoringSchedule"):
        inline = schedule.inputs["monitoringScheduleConfig"].get("monitoringJobDefinition")
        if inline:
            assert inline["networkConfig"]["vpcConfig"]["subnets"] == subnets, schedule.urn
    groups = plan.by_type("aws:ec2/securityGroup:SecurityGroup")
    assert groups and all(g.inputs["vpcId"] == vpc for g in groups)
    if stack in ("prod", "dev"):  # SageMaker training's security group
        assert plan.get(f"{stack}-training-sg", "aws:ec2/securityGroup:SecurityGroup").inputs["vpcId"] == vpc


def test_prod_retraining_pipelines_run_their_jobs_in_the_private_subnets(shipped_plan):
    plan = shipped_plan("prod")
    subnets = private_subnets(plan, "prod-network")
    # (a batch transform's job runs where its model does: test_batch_transform_platform.py)
    pipelines = [p for p in plan.by_type("aws:sagemaker/pipeline:Pipeline") if p.name.endswith("-retraining-pipeline")]
    assert len(pipelines) == 3  # churn, fraud and doc-scoring
    for pipeline in pipelines:
        definition = json.loads(pipeline.inputs["pipelineDefinition"])
        configs = [step["Arguments"].get("VpcConfig") or step["Arguments"].get("NetworkConfig", {}).get("VpcConfig")
                   for step in definition["Steps"] if "Arguments" in step]
        configs = [c for c in configs if c]
        assert configs and all(c["Subnets"] == subnets for c in configs), pipeline.urn


def test_prod_personas_exist_with_distinct_policies_and_identity_center_trust(shipped_plan):
    plan = shipped_plan("prod")
    roles = {r.name: r for r in plan.by_type("aws:iam/role:Role") if r.inputs.get("path") == "/personas/"}
    assert sorted(roles) == ["prod-personas-business-viewer", "prod-personas-data-scientist",
                             "prod-personas-ml-engineer", "prod-personas-platform-admin"]
    sso = {"data-scientist": "DataScientist", "ml-engineer": "MLEngineer", "platform-admin": "PlatformAdmin",
           "business-viewer": "BusinessViewer"}
    documents = {}
    for persona, permission_set in sso.items():
        role = roles[f"prod-personas-{persona}"]
        assert role.inputs["permissionsBoundary"] == "arn:aws:iam::333333333333:policy/ml-workload-boundary"
        assert role.inputs["maxSessionDuration"] == 3600
        [trust] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert trust["Principal"] == {"AWS": "arn:aws:iam::333333333333:root"} or trust["Principal"] == {
            "AWS": ["arn:aws:iam::333333333333:root"]}
        assert trust["Condition"]["ArnLike"]["aws:PrincipalArn"] in (
            [f"arn:aws:iam::333333333333:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_{permission_set}_*"],
            f"arn:aws:iam::333333333333:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_{permission_set}_*")
        assert "Bool" not in trust["Condition"]  # require_mfa: false (Identity Center)
        policies = [p for p in plan.by_type("aws:iam/rolePolicy:RolePolicy")
                    if p.name.startswith(f"prod-personas-{persona}-")]
        assert policies
        documents[persona] = sorted(p.inputs["policy"] for p in policies)
    assert len({json.dumps(d) for d in documents.values()}) == 4
    # the ML engineer operates both endpoints and the retraining pipelines; the admin cannot read data, nor the
    # business viewer, who sees the shared groups' approval history
    assert "NoData" in " ".join(documents["business-viewer"])
    assert "444444444444:model-package-group/churn" in " ".join(documents["business-viewer"])
    engineer = " ".join(documents["ml-engineer"])
    assert "endpoint/prod-churn" in engineer and "endpoint/prod-fraud" in engineer and ":pipeline/" in engineer
    assert "NoDatasetReads" in " ".join(documents["platform-admin"])
    assert set(json.loads(json.dumps(plan.outputs["personaRoleArns"]))) == set(sso)


def test_dev_personas_trust_tagged_principals(shipped_plan):
    plan = shipped_plan("dev")
    role = plan.get("dev-personas-ml-engineer", "aws:iam/role:Role")
    [trust] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Condition"]["StringEquals"] == {"aws:PrincipalTag/emlops-persona": "ml-engineer"}


# -- one model's change touches only that model ---------------------------------------------------------

def owner_endpoint(plan: Plan, resource: PlanResource) -> str | None:
    by_urn = {r.urn: r for r in plan.resources}
    current: PlanResource | None = resource
    while current is not None:
        if current.type == "emlops:index:ModelEndpoint":
            return current.name
        current = by_urn.get(current.parent) if current.parent else None
    return None


def test_changing_one_models_instance_count_changes_only_that_models_resources(project_copy, shipped_plan):
    base = shipped_plan("dev")  # the copy's dev stack file before the edit is the shipped one
    edit_stack(project_copy, "dev", '''            instance_type: ml.m5.large
            initial_instance_count: 1
''', '''            instance_type: ml.m5.large
            initial_instance_count: 2
''')
    head = preview_stack("dev", start=project_copy).plan
    diff = diff_plans(base, head)
    assert diff.resources
    assert {(r.action, r.resource.name) for r in diff.resources} >= {("replace", "dev-fraud-config"),
                                                                    ("update", "dev-fraud-endpoint")}
    assert {owner_endpoint(head, r.resource) for r in diff.resources} == {"dev-fraud"}
    assert not [r for r in diff.resources if r.action in ("add", "remove")]


# -- stacks/README.md ---------------------------------------------------------------------------------

def test_stacks_readme_shows_only_commands_that_exist():
    from typer.main import get_command

    from emlops.cli import app

    text = (ROOT / "stacks" / "README.md").read_text()
    # commands in code blocks and in `inline code`
    shown = set(re.findall(r"(?:^\s*|`)emlops ([a-z-]+)", text, flags=re.M))
    assert {"preview", "check", "diff"} <= shown
    assert shown <= set(get_command(app).commands), shown - set(get_command(app).commands)
    pulumi = re.findall(r"^\s*(pulumi [a-z]+[^\n]*)$", text, flags=re.M)
    assert pulumi == ["pulumi stack init qa", "pulumi up -s qa"]


def test_stacks_readme_states_the_production_invariants_the_config_enforces():
    text = (ROOT / "stacks" / "README.md").read_text()
    for phrase in ("at least 3 availability zones", "private subnets only", "at least 2 instances",
                   "autoscaling", "data capture", "baseline", "registry.consumer_account_ids"):
        assert phrase in text, phrase


# -- components take the platform's network (Outputs), and check it is there before creating anything ---

VPC = "vpc-0123456789abcdef0"
SUBNETS = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
IMAGE = "763104351884.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1"
NO_PLACEMENT = "provisioned variants run in private subnets: give a placement (vpc_id and subnet_ids)"


def error_of(factory) -> str:
    with pytest.raises(ValueError) as caught:
        factory()
    return str(caught.value)


def provisioned(**changes):
    """The settings and the context (without a placement) of an MLflow model on instances."""
    from emlops.components.endpoint import EndpointContext, EndpointSettings, ModelArtifact

    settings = EndpointSettings.model_validate({"variants": [{"name": "primary", "instance_type": "ml.m5.large"}]})
    artifact = ModelArtifact("s3://ml-artifacts/models/churn/3/", compressed=False)
    return settings, EndpointContext(**{"artifact": artifact, "image_uri": IMAGE, **changes})


def test_an_endpoint_without_a_placement_is_refused_before_anything_is_created():
    from emlops.components.endpoint import ModelEndpoint
    from emlops.components.settings import Placement
    from tests.conftest import run_components

    raised = []

    def program():
        try:
            ModelEndpoint("churn", *provisioned())  # no placement: a platform gives its network's
        except ValueError as exc:
            raised.append(str(exc))
    plan = run_components(program)
    assert (raised, [r.type for r in plan.resources]) == ([NO_PLACEMENT], ["pulumi:pulumi:Stack"])
    assert error_of(lambda: Placement(VPC, [])) == "a placement needs vpc_id and a list of subnet_ids"


def test_a_training_context_needs_a_placement_and_a_placement_needs_the_network():
    from emlops.components.settings import Placement
    from emlops.components.training import TrainingContext

    with pytest.raises(TypeError) as caught:  # a platform gives its network's
        TrainingContext()
    assert str(caught.value) == "TrainingContext.__init__() missing 1 required positional argument: 'placement'"
    assert error_of(lambda: Placement(None, SUBNETS)) == "a placement needs vpc_id and a list of subnet_ids"


def test_a_monitor_context_needs_a_placement_and_a_placement_needs_the_network():
    from emlops.components.monitoring import MonitorContext
    from emlops.components.settings import Placement

    class Bucket:
        kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-4333-8444-555555555555"

    with pytest.raises(TypeError) as caught:  # a platform gives its network's
        MonitorContext(endpoint_name="churn", capture_s3_uri="s3://capture/datacapture/churn", reports_bucket=Bucket())
    assert str(caught.value) == "MonitorContext.__init__() missing 1 required positional argument: 'placement'"
    assert [error_of(lambda: Placement(*network)) for network in ((None, ()), (VPC, ()), (None, SUBNETS))] == [
        "a placement needs vpc_id and a list of subnet_ids"] * 3


def test_a_managed_platform_network_needs_the_region():
    # the stack file always names it: the managed network's flow-log key lets logs.<region>.amazonaws.com use it
    from tests.conftest import BASE_SETTINGS

    raw = {key: value for key, value in BASE_SETTINGS.items() if key != "region"}
    with pytest.raises(ConfigError) as caught:
        parse_platform_config({**raw, "network": {"managed": {}}}, "stacks/Pulumi.test.yaml")
    assert str(caught.value) == "stacks/Pulumi.test.yaml: emlops:platform.region: field required"


def platform_model() -> dict:
    """`provisioned()` as a stack file's `models[]` entry."""
    return {"name": "churn", "source": {"s3_uri": "s3://ml-artifacts/models/churn/3/"}, "image": {"uri": IMAGE},
            "variants": [{"name": "primary", "instance_type": "ml.m5.large"}]}


def test_the_platform_puts_endpoints_and_training_into_its_network():
    from tests.conftest import run_platform

    plan = run_platform({"network": {"managed": {"az_count": 2}}, "training": {"kind": "sagemaker"},
                         "models": [platform_model()]}, name="ml")
    platform = plan.get("ml", "emlops:index:MlPlatform")
    children = [r.name for r in plan.children(platform.urn)]
    assert children[:3] == ["ml-logs", "ml-network", "ml-data"]
    subnets = private_subnets(plan, "ml-network")
    vpc = plan.get("ml-network-default-sg").inputs["vpcId"]
    assert plan.get("ml-churn-model").inputs["vpcConfig"]["subnets"] == subnets
    # the endpoint's interfaces are in the platform's one no-inbound workloads group, not a group of their own
    workloads = plan.get("ml-workloads-sg")
    assert (workloads.inputs["vpcId"], workloads.inputs["ingress"]) == (vpc, [])
    [group_id] = plan.get("ml-churn-model").inputs["vpcConfig"]["securityGroupIds"]
    assert re.fullmatch(r"sg-[0-9a-f]{17}", group_id)
    assert [g.name for g in plan.by_type("aws:ec2/securityGroup:SecurityGroup")] == [
        "ml-network-endpoints-sg", "ml-training-sg", "ml-workloads-sg"]
    assert plan.get("ml-training-sg", "aws:ec2/securityGroup:SecurityGroup").inputs["vpcId"] == vpc
    assert plan.get("ml-network-flow-logs").inputs["kmsKeyId"].startswith("arn:aws:kms:eu-west-1:123456789012:key/")


def test_the_platform_passes_your_own_network_through_and_creates_no_vpc():
    from tests.conftest import run_platform

    plan = run_platform({"network": {"vpc_id": VPC, "private_subnet_ids": SUBNETS}, "models": [platform_model()]},
                        name="ml")
    assert not plan.by_type("aws:ec2/vpc:Vpc") and not plan.by_type("aws:kms/key:Key")[1:]
    assert plan.get("ml-churn-model").inputs["vpcConfig"]["subnets"] == SUBNETS
    assert plan.get("ml-workloads-sg").inputs["vpcId"] == VPC


def test_every_endpoint_and_monitoring_job_of_a_shipped_plan_shares_the_one_workloads_group(shipped_plan):
    """One no-inbound group per environment for SageMaker's network interfaces (besides training's own)."""
    for stack in ("dev", "staging", "prod"):
        plan = shipped_plan(stack)
        groups = {tuple(m.inputs["vpcConfig"]["securityGroupIds"]) for m in plan.by_type("aws:sagemaker/model:Model")
                  if "vpcConfig" in m.inputs}
        groups |= {tuple(j.inputs["networkConfig"]["vpcConfig"]["securityGroupIds"])
                   for j in plan.by_type("aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition")}
        assert len(groups) == 1, stack
        workloads = plan.get(f"{stack}-workloads-sg")
        # HTTPS out, to the VPC endpoints' group and the S3 gateway's prefix list only (never 0.0.0.0/0)
        assert workloads.inputs["ingress"] == [] and [
            (e["fromPort"], sorted(k for k in e if k in ("cidrBlocks", "prefixListIds", "securityGroups")))
            for e in workloads.inputs["egress"]] == [(443, ["securityGroups"]), (443, ["prefixListIds"])]
        # besides it: the VPC endpoints' group and training's (SageMaker jobs' instances, or the EKS cluster)
        assert not [g.name for g in plan.by_type("aws:ec2/securityGroup:SecurityGroup") if g.name not in (
            f"{stack}-workloads-sg", f"{stack}-training-sg", f"{stack}-training-cluster-sg",
            f"{stack}-network-endpoints-sg")]


GROUP = "sg-0123456789abcdef0"


def test_given_security_groups_replace_the_workloads_own():
    from emlops.components.endpoint import ModelEndpoint
    from emlops.components.settings import Placement
    from tests.conftest import run_components

    plan = run_components(lambda: ModelEndpoint("churn", *provisioned(placement=Placement(VPC, SUBNETS, [GROUP]))))
    assert plan.by_type("aws:ec2/securityGroup:SecurityGroup") == []
    assert plan.get("churn-model").inputs["vpcConfig"] == {"subnets": SUBNETS, "securityGroupIds": [GROUP]}


@pytest.mark.parametrize("groups, message", [
    (GROUP, f"security_group_ids must be a list, e.g. [{GROUP!r}]"),
    (["sg-1"], "security_group_ids: 'sg-1' is not a security group id (sg-...)"),
    ([GROUP] * 6, "security_group_ids: at most 5 security groups, got 6"),
])
def test_security_group_ids_are_checked(groups, message):
    from emlops.components.settings import Placement

    assert error_of(lambda: Placement(VPC, SUBNETS, groups)) == message


def test_a_serverless_endpoint_refuses_a_placement_before_anything_is_created():
    from emlops.components.endpoint import EndpointContext, EndpointSettings, ModelArtifact, ModelEndpoint
    from emlops.components.settings import Placement
    from tests.conftest import run_components

    raised = []

    def program():
        try:
            ModelEndpoint("churn", EndpointSettings.model_validate({"serverless": {"memory_mb": 2048}}),
                          EndpointContext(ModelArtifact("s3://ml-artifacts/models/churn/model.tar.gz"), IMAGE,
                                          placement=Placement(VPC, SUBNETS, [GROUP])))
        except ValueError as exc:
            raised.append(str(exc))
    plan = run_components(program)
    assert (raised, [r.type for r in plan.resources]) == (
        ["serverless endpoints have no VPC: drop the placement"], ["pulumi:pulumi:Stack"])


def test_stacks_readme_says_where_each_setting_is_defined():
    """Each row of 'Where each setting goes': its keys are keys of emlops:platform, the model is the one
    the keys are validated with, and the module named defines it."""
    import importlib
    import typing

    from emlops.program.config import StackConfig
    from emlops.program.platform import PlatformConfig

    text = (ROOT / "stacks" / "README.md").read_text()
    rows = re.findall(r"^\| (`[^|]+`) \| `(\w+)`[^|]* \| `([\w/]+)\.py` \| [^|]+ \|$", text, flags=re.M)
    seen = []
    for keys, model, module in rows:
        keys = re.findall(r"`(\w+)`", keys)
        seen += keys
        package = {"components": "emlops.components", "infra": "emlops.program"}[module.split("/")[0]]
        defined = getattr(importlib.import_module(f"{package}.{module.split('/')[1]}"), model)
        if model == "StackConfig":
            assert keys == list(StackConfig.model_fields)
            continue
        [key] = keys
        annotation = PlatformConfig.model_fields[key].annotation
        inner = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
        assert inner[0] is defined, (key, model)
    assert seen == list(PlatformConfig.model_fields)[:len(seen)]
    assert len(seen) == len(StackConfig.model_fields) + 13
