"""IAM hardening that no guardrail sees in one resource: invariants of the shipped plans (role paths, Object Lock on
registered artifacts, the training group required for people's jobs, scoped listing, the data key through services)
and the stack file's IAM rules (the deploy role, persona accounts, IAM's size quotas), each one line naming the key."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from emlops.components.aws_context import AwsContext
from emlops.components.personas import policy_sizes
from emlops.offline.plan import Plan
from emlops.program.platform import parse_platform_config
from emlops.program.rules_iam import estimated_personas_context, mlflow_policies_size
from tests.conftest import ROOT, SHIPPED_STACKS, edit_stack, preview_error

ROLE, ROLE_POLICY = "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy"
DATA_ACTIONS = ("s3:GetObject", "s3:PutObject")


def statements(plan: Plan, role_name: str) -> list[dict[str, Any]]:
    return [s for p in plan.by_type(ROLE_POLICY) if p.inputs["role"] == role_name
            for s in json.loads(p.inputs["policy"])["Statement"]]


def size(text: str) -> int:
    return len(re.sub(r"\s", "", text))


# -- role paths -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_only_roles_without_data_access_are_on_the_admins_path(stack, shipped_plan):
    plan = shipped_plan(stack)
    data_key, paths = plan.outputs["dataKeyArn"], {}
    for role in plan.by_type(ROLE):
        # objects of the platform's buckets, or the data key (not, e.g., an EKS cluster's own secrets key)
        reaches_data = any(s["Effect"] == "Allow" and (set(s["Action"]) & set(DATA_ACTIONS) or (
            "kms:Decrypt" in s["Action"] and data_key in s["Resource"])) for s in statements(plan, role.inputs["name"]))
        paths[role.name] = role.inputs.get("path", "/")
        if role.inputs.get("path", "/") == "/personas/":
            continue
        if reaches_data:
            assert role.inputs.get("path", "/") == "/", role.name
    # the roles admins may change: flow-log delivery, EventBridge's pipeline starters and the batch transform
    # pipelines' runners (no data; nothing stateful is replaced with them). The others stay at '/': those with data
    # access, and those a stateful resource names (a feature group's, MLflow's and the EKS cluster's roles are
    # replaced with it: moving them would lose it).
    assert sorted(name for name, path in paths.items() if path == f"/emlops/{stack}/") == sorted(
        name for name in paths if name.endswith(("-flow-logs-delivery-role", "-events-role", "-runner-role")))


# -- the approval gate ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stack, mode, days", [("dev", "GOVERNANCE", 14), ("staging", "GOVERNANCE", 30),
                                               ("prod", "COMPLIANCE", 365), ("shared", "COMPLIANCE", 365)])
def test_the_artifacts_bucket_keeps_every_version_under_object_lock(stack, mode, days, shipped_plan):
    plan = shipped_plan(stack)
    [lock] = plan.by_type("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")
    assert lock.name == f"{stack}-artifacts-object-lock"
    assert lock.inputs == {"bucket": plan.get(f"{stack}-artifacts-bucket").inputs["bucket"],
                           "objectLockEnabled": "Enabled",
                           "rule": {"defaultRetention": {"days": days, "mode": mode}}}
    # enabled in place: the bucket itself is not replaced
    assert "objectLockEnabled" not in plan.get(f"{stack}-artifacts-bucket").inputs


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_persona_listing_of_model_packages_is_scoped_to_the_groups(stack, shipped_plan):
    """Data scientists and ML engineers list the versions of their groups only (admins read all configuration)."""
    plan = shipped_plan(stack)
    for role in [plan.get(f"{stack}-personas-{p}") for p in ("data-scientist", "ml-engineer")]:
        for statement in statements(plan, role.inputs["name"]):
            if "sagemaker:ListModelPackages" in statement["Action"]:
                assert "*" not in statement["Resource"], role.name


def test_retraining_uses_the_data_key_only_through_services_or_grants(shipped_plan):
    plan = shipped_plan("prod")
    roles = [r.inputs["name"] for r in plan.by_type(ROLE) if r.name.endswith("-retraining-execution-role")]
    assert len(roles) == 3  # churn, fraud, doc-scoring
    for role in roles:
        kms = [s for s in statements(plan, role) if any(a.startswith("kms:") for a in s["Action"])]
        assert kms and all("kms:ViaService" in s.get("Condition", {}).get("StringEquals", {})
                           or s.get("Condition", {}).get("Bool", {}).get("kms:GrantIsForAWSResource") == "true"
                           for s in kms), role


# -- network and people's jobs ----------------------------------------------------------------------------------

def test_dev_training_group_is_required_for_data_scientists_jobs_and_sends_https_to_the_endpoints(shipped_plan):
    plan = shipped_plan("dev")
    group = plan.get("dev-training-sg")
    [start] = [s for s in statements(plan, plan.get("dev-personas-data-scientist").inputs["name"])
               if s.get("Sid") == "StartJobsInVpcWithDataKey"]
    [required] = start["Condition"]["ForAllValues:StringEquals"]["sagemaker:VpcSecurityGroupIds"]
    # the one group the jobs must use is the training group (the policy is made from its id)
    assert re.fullmatch(r"sg-[0-9a-f]{17}", required)
    assert group.urn in plan.get("dev-personas-data-scientist-run-jobs").dependencies
    assert start["Condition"]["Bool"] == {"sagemaker:NetworkIsolation": "true"}
    endpoints_group = plan.get("dev-network-endpoints-sg")
    prefix_list = plan.get("dev-network-endpoint-s3")
    egress = group.inputs["egress"]
    assert [rule["description"] for rule in egress] == [
        "HTTPS to the interface VPC endpoints", "HTTPS to S3 through the gateway endpoint",
        "Distributed training between the instances of a job"]
    assert re.fullmatch(r"sg-[0-9a-f]{17}", egress[0]["securityGroups"][0])
    assert re.fullmatch(r"pl-[0-9a-f]{8}", egress[1]["prefixListIds"][0])
    assert endpoints_group.inputs["egress"] == [] and prefix_list.inputs["vpcEndpointType"] == "Gateway"


@pytest.mark.parametrize("stack, accounts", [("dev", ["111111111111"]), ("prod", ["333333333333", "444444444444"])])
def test_every_vpc_endpoint_admits_the_accounts_principals_on_its_own_and_the_registrys_resources(
        stack, accounts, shipped_plan):
    endpoints = shipped_plan(stack).by_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert len(endpoints) == 11
    for endpoint in endpoints:
        first = json.loads(endpoint.inputs["policy"])["Statement"][0]
        assert first["Condition"] == {"StringEquals": {"aws:PrincipalAccount": [accounts[0]]},
                                      "StringEqualsIfExists": {"aws:ResourceAccount": accounts}}
    s3 = json.loads(shipped_plan(stack).get(f"{stack}-network-endpoint-s3").inputs["policy"])["Statement"]
    assert s3[1]["Resource"] == ["arn:aws:s3:::prod-eu-west-1-starport-layer-bucket/*"]


# -- the stack file's IAM rules ---------------------------------------------------------------------------------

def stack_config(stack: str):
    raw = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]["emlops:platform"]
    return parse_platform_config(raw, f"stacks/Pulumi.{stack}.yaml")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_policy_sizes_computed_from_the_stack_file_are_the_plans(stack, shipped_plan):
    """The config-time check sizes exactly what the platform deploys (names known, suffixes of fixed length)."""
    config, plan = stack_config(stack), shipped_plan(stack)
    facts = AwsContext(config.account_id, config.region, config.partition.name)
    for persona, (trust, inline) in policy_sizes(config.personas, estimated_personas_context(config), facts).items():
        role = plan.get(f"{stack}-personas-{persona}")
        assert trust == size(role.inputs["assumeRolePolicy"])
        assert inline == sum(size(p.inputs["policy"]) for p in plan.by_type(ROLE_POLICY)
                             if p.inputs["role"] == role.inputs["name"])
    if stack == "dev":
        role = plan.get("dev-registry-mlflow-role").inputs["name"]
        assert mlflow_policies_size(config, facts, config.registry_groups()) == sum(
            size(p.inputs["policy"]) for p in plan.by_type(ROLE_POLICY) if p.inputs["role"] == role)


def _models(count: int) -> str:
    return "".join(f"""
      - name: m{i:02d}
        source:
          s3_uri: s3://acme-ml-dev-models/m{i:02d}/model.tar.gz
        image:
          framework: xgboost
          framework_version: "1.7-1"
        serverless:
          memory_mb: 2048""" for i in range(count))


def test_an_environment_whose_roles_cover_the_deploy_role_is_refused(project_copy):
    edit_stack(project_copy, "dev", "environment: dev", "environment: emlops")
    assert preview_error(project_copy, "dev") == (
        "stacks/Pulumi.dev.yaml: emlops:platform.environment: 'emlops' puts the deploy role "
        "arn:aws:iam::111111111111:role/emlops-deploy among the platform's own roles (role/emlops-*), which platform "
        "admins may change; choose an environment name (or a deploy role) that keeps them apart")


def test_a_deploy_role_on_the_platforms_path_is_refused(project_copy):
    edit_stack(project_copy, "dev", "role/emlops-deploy", "role/emlops/dev/deploy")
    assert preview_error(project_copy, "dev") == (
        "stacks/Pulumi.dev.yaml: emlops:platform.environment: 'dev' puts the deploy role "
        "arn:aws:iam::111111111111:role/emlops/dev/deploy among the platform's own roles (role/emlops/dev/*), which "
        "platform admins may change; choose an environment name (or a deploy role) that keeps them apart")


def test_a_principal_of_a_foreign_account_is_refused_unless_it_is_an_identity_account(project_copy):
    edit_stack(project_copy, "dev", "      max_session_hours: 8", """      max_session_hours: 8
      trusted_principal_arns:
        data-scientist: ["arn:aws:iam::999999999999:role/*"]""")
    assert preview_error(project_copy, "dev") == (
        "stacks/Pulumi.dev.yaml: emlops:platform.personas.trusted_principal_arns.data-scientist: "
        "'arn:aws:iam::999999999999:role/*' is in account 999999999999, neither this stack's (111111111111) nor one "
        "of personas.identity_account_ids; list the account people sign in through there")
    edit_stack(project_copy, "dev", "      max_session_hours: 8", """      max_session_hours: 8
      identity_account_ids: ["999999999999"]""")
    assert stack_config_of(project_copy, "dev").personas.identity_account_ids == ["999999999999"]


def stack_config_of(project: Path, stack: str):
    raw = yaml.safe_load((project / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]["emlops:platform"]
    return parse_platform_config(raw, f"stacks/Pulumi.{stack}.yaml")


def test_300_trusted_principals_are_refused_at_config_time_naming_the_key(project_copy):
    principals = ", ".join(f'"arn:aws:iam::111111111111:role/scientist-{i:03d}"' for i in range(300))
    edit_stack(project_copy, "dev", "      max_session_hours: 8", f"""      max_session_hours: 8
      trusted_principal_arns:
        data-scientist: [{principals}]""")
    assert preview_error(project_copy, "dev") == (
        "stacks/Pulumi.dev.yaml: emlops:platform.personas.trusted_principal_arns.data-scientist: 300 principals make "
        "the data-scientist trust policy 14,382 characters; IAM allows 2,048 (a '*' in a name can stand for several "
        "principals)")


def test_too_many_models_for_a_personas_inline_policies_are_refused_at_config_time(project_copy):
    edit_stack(project_copy, "dev", "    models:\n", f"    models:{_models(30)}\n")
    assert preview_error(project_copy, "dev") == (
        "stacks/Pulumi.dev.yaml: emlops:platform.models: 33 models make the data-scientist role's inline policies "
        "12,966 characters; IAM allows 10,240 per role")


@pytest.mark.parametrize("value, message", [
    ('"??????/"', "must be folders each ending in '/' (not starting with '/'), without '*', '?', '${', control "
                  "characters or '.'/'..' folders, e.g. 'experiments/', got '??????/'"),
    ("models/", "'models/' is under models/, which only the platform's pipelines and MLflow write; choose another "
                "prefix, e.g. 'experiments/'"),
])
def test_a_persona_prefix_that_reaches_the_registry_is_refused(project_copy, value, message):
    edit_stack(project_copy, "dev", "      max_session_hours: 8", f"      max_session_hours: 8\n"
                                                                   f"      experiments_prefix: {value}")
    assert preview_error(project_copy, "dev") == f"stacks/Pulumi.dev.yaml: emlops:platform.personas.experiments_prefix: {message}"


def test_the_training_role_follows_the_data_scientists_prefixes():
    from emlops.guardrails import RULES, Settings
    from emlops.review.check import evaluate
    from tests.conftest import run_platform

    plan = run_platform({"network": {"managed": {"cidr_block": "10.10.0.0/16"}}, "training": {"kind": "sagemaker"},
                         "personas": {"datasets_prefix": "curated/", "experiments_prefix": "research/"}})
    role = plan.get("dev-training-training-role").inputs["name"]
    objects = {(a, r) for s in statements(plan, role) if s["Effect"] == "Allow" for a in s["Action"]
               if a in ("s3:GetObject", "s3:PutObject") for r in s["Resource"]}
    datasets, artifacts = (plan.get(f"dev-{p}-bucket").inputs["bucket"] for p in ("datasets", "artifacts"))
    assert objects == {("s3:GetObject", f"arn:aws:s3:::{datasets}/curated/*"),
                       ("s3:PutObject", f"arn:aws:s3:::{artifacts}/research/*")}
    assert evaluate(plan, Settings(environment="dev"), [RULES["iam-passrole-no-widening"]]) == []


def test_too_many_package_groups_for_the_mlflow_role_are_refused_naming_the_key():
    from emlops.program.config import ConfigError
    from tests.conftest import BASE_SETTINGS

    groups = {"registry": {"package_groups": [f"group-{i:03d}" for i in range(40)]}}
    with pytest.raises(ConfigError) as caught:
        parse_platform_config({**BASE_SETTINGS, **groups}, "stacks/Pulumi.dev.yaml")
    assert str(caught.value) == (
        "stacks/Pulumi.dev.yaml: emlops:platform.registry.package_groups: 40 package groups make the MLflow server "
        "role's inline policies 12,629 characters; IAM allows 10,240 per role")
    # without MLflow, no role holds them all
    parse_platform_config({**BASE_SETTINGS, "registry": {**groups["registry"], "mlflow": {"kind": "none"}}},
                          "stacks/Pulumi.dev.yaml")
