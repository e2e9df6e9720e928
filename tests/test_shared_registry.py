"""The shared-services registry: how an environment names it (`registry.shared_stack`), the one-line errors
of a relation that does not hold, the offline answer to the stack reference, and the registry's own parts
(publishers, approval notifications, image repositories)."""

from __future__ import annotations

import json

import pulumi
import pytest

from emlops.components.registry import ModelRegistry, RegistryContext, RegistrySettings
from emlops.components.retraining import RetrainingContext
from emlops.components.settings import Governance
from emlops.offline.engine import run_function
from emlops.offline.mocks import AwsIdentity, MockGap
from emlops.offline.preview import preview_stack
from emlops.program.stackfile import find_project, load_stack
from emlops.program.config import ConfigError
from emlops.program.platform import parse_platform_config
from emlops.program.shared_registry import load_shared_registry
from tests.conftest import ROOT, edit_stack, preview_error, run_components

PROD_AT = "stacks/Pulumi.prod.yaml: emlops:platform"
STAGING_AT = "stacks/Pulumi.staging.yaml: emlops:platform"
SHARED_GROUP = "arn:aws:sagemaker:eu-west-1:444444444444:model-package-group/{}"
REGISTRY_ACCOUNT = "123456789012"
NO_MLFLOW = RegistrySettings.model_validate({"mlflow": {"kind": "none"}})


# -- what the environments see ------------------------------------------------------------------

def test_staging_and_prod_see_the_shared_account_region_groups_and_their_roles():
    project = find_project(ROOT)
    prod = load_shared_registry(load_stack(project, "prod").platform, "prod", "stacks/Pulumi.prod.yaml", ROOT)
    assert (prod.stack, prod.account_id, prod.region, prod.partition) == ("shared", "444444444444", "eu-west-1", "aws")
    assert (prod.groups, prod.repositories) == (("churn", "fraud", "doc-scoring"),
                                                   ("churn-training", "fraud-training", "doc-scoring-training"))
    assert (prod.consumer, prod.publisher) == (True, True)
    assert prod.group_arn("Churn") == SHARED_GROUP.format("churn")
    staging = load_shared_registry(load_stack(project, "staging").platform, "staging", "x", ROOT)
    assert (staging.consumer, staging.publisher) == (True, False)
    assert load_shared_registry(load_stack(project, "dev").platform, "dev", "x", ROOT) is None


# -- a relation that does not hold: one line at the environment's key ---------------------------------

def test_an_unknown_shared_stack_lists_the_stacks(project_copy):
    edit_stack(project_copy, "prod", "shared_stack: shared", "shared_stack: central")
    assert preview_error(project_copy, "prod") == (
        f"{PROD_AT}.registry.shared_stack: no stack file stacks/Pulumi.central.yaml; stacks in this project: dev, "
        "prod, shared, staging")


def test_a_stack_cannot_be_its_own_shared_registry(project_copy):
    edit_stack(project_copy, "prod", "shared_stack: shared", "shared_stack: prod")
    assert preview_error(project_copy, "prod") == (
        f"{PROD_AT}.registry.shared_stack: names this stack itself; name the shared-services stack, e.g. 'shared'")


def test_the_shared_registry_is_a_stack_of_environment_shared(project_copy):
    edit_stack(project_copy, "staging", "shared_stack: shared", "shared_stack: dev")
    assert preview_error(project_copy, "staging") == (
        f"{STAGING_AT}.registry.shared_stack: stack 'dev' is environment 'dev'; the shared registry is a stack of "
        "environment 'shared'")


def test_the_shared_registry_is_in_the_environments_region(project_copy):
    edit_stack(project_copy, "shared", "region: eu-west-1", "region: eu-central-1")
    assert preview_error(project_copy, "staging") == (
        f"{STAGING_AT}.registry.shared_stack: stack 'shared' is in region 'eu-central-1' but this stack is in "
        "'eu-west-1'; SageMaker deploys and registers model packages only in their region")


def test_a_group_the_shared_registry_does_not_hold_is_refused(project_copy):
    edit_stack(project_copy, "shared", "package_groups: [churn, fraud, doc-scoring]", "package_groups: [fraud, doc-scoring]")
    assert preview_error(project_copy, "staging") == (
        f"{STAGING_AT}.models[0].source.model_package_group: 'churn' is not a package group of stack 'shared' "
        "(its groups: fraud, doc-scoring); add it to its registry.package_groups")


def test_an_environment_the_shared_registry_does_not_list_as_consumer_is_refused(project_copy):
    edit_stack(project_copy, "shared", 'consumer_account_ids: ["222222222222", "333333333333"]',
         'consumer_account_ids: ["333333333333"]')
    assert preview_error(project_copy, "staging") == (
        f"{STAGING_AT}.registry.shared_stack: stack 'shared' lists '222222222222' neither in its "
        "registry.consumer_account_ids nor in its registry.publisher_account_ids")
    edit_stack(project_copy, "shared", 'publisher_account_ids: ["333333333333"]',
         'publisher_account_ids: ["222222222222", "333333333333"]')
    assert preview_error(project_copy, "staging") == (
        f"{STAGING_AT}.models[0].source.model_package_group: stack 'shared' does not list '222222222222' in its "
        "registry.consumer_account_ids, so this account may not deploy its packages")


def test_retraining_needs_the_environment_to_be_a_publisher(project_copy):
    edit_stack(project_copy, "shared", '      publisher_account_ids: ["333333333333"]\n', "")
    assert preview_error(project_copy, "prod") == (
        f"{PROD_AT}.models[0].retraining.enabled: retraining registers into stack 'shared', which does not list "
        "'333333333333' in its registry.publisher_account_ids")


def test_an_image_of_the_shared_account_must_be_one_of_its_repositories(project_copy):
    edit_stack(project_copy, "prod", "444444444444.dkr.ecr.eu-west-1.amazonaws.com/fraud-training:2.1.0",
         "444444444444.dkr.ecr.eu-west-1.amazonaws.com/fraud-trainer:2.1.0")
    assert preview_error(project_copy, "prod") == (
        f"{PROD_AT}.models[1].retraining.training_image: 'fraud-trainer' is not an image repository of stack "
        "'shared' (its repositories: churn-training, fraud-training, doc-scoring-training); add it to its registry.image_repositories")


def test_a_stack_that_uses_a_shared_registry_holds_no_promotion_settings_of_its_own():
    raw = parse_platform_config  # the section alone is enough to find the problem
    base = {"environment": "prod", "account_id": "333333333333", "region": "eu-west-1",
            "tags": {"owner": "o", "cost-center": "c", "data-classification": "internal"}}
    for key, value in (("consumer_account_ids", ["222222222222"]), ("package_groups", ["churn"]),
                       ("image_repositories", ["churn-training"])):
        with pytest.raises(ConfigError) as caught:
            raw({**base, "registry": {"shared_stack": "shared", key: value}}, "stacks/Pulumi.prod.yaml")
        assert str(caught.value) == (
            f"{PROD_AT}.registry: {key} belong to the shared stack 'shared' when shared_stack is set (this stack "
            "holds no package groups)")
    with pytest.raises(ConfigError) as caught:
        raw({**base, "registry": {"shared_stack": "../x"}}, "stacks/Pulumi.prod.yaml")
    assert str(caught.value) == f"{PROD_AT}.registry.shared_stack: must be a stack name of this project, e.g. " \
                                "'shared', got '../x'"


SHARED_AT = "stacks/Pulumi.shared.yaml: emlops:platform.registry"


@pytest.mark.parametrize("registry, message", [
    ({"publisher_account_ids": ["1"]},
     "publisher_account_ids: '1' is not a 12-digit AWS account id (quote it: '123456789012')"),
    ({"package_groups": ["churn_v2"]}, "package_groups: 'churn_v2' is not a model package group name (1-63 letters, "
     "digits and '-', starting and ending with a letter or digit)"),
    ({"package_groups": ["churn", "churn"]}, "package_groups: group names must be unique; repeated: churn"),
    ({"image_repositories": ["Churn"]}, "image_repositories: 'Churn' is not an ECR repository name (2-256 lowercase "
     "letters, digits and '.', '_', '-', '/' between them)"),
    ({"image_repositories": ["churn-training"] * 2},
     "image_repositories: repository names must be unique; repeated: churn-training"),
])
def test_the_shared_registrys_own_settings_are_one_line_errors(registry, message):
    raw = {"environment": "shared", "account_id": "444444444444", "region": "eu-west-1",
           "tags": {"owner": "o", "cost-center": "c", "data-classification": "internal"}, "registry": registry}
    with pytest.raises(ConfigError) as caught:
        parse_platform_config(raw, "stacks/Pulumi.shared.yaml")
    assert str(caught.value) == f"{SHARED_AT}.{message}"


def test_stacks_that_reference_each_other_are_refused(project_copy):
    # a shared stack that itself names a shared registry is refused before any cycle could form
    edit_stack(project_copy, "shared", "    registry:\n", "    registry:\n      shared_stack: prod\n")
    message = preview_error(project_copy, "staging")
    assert message.startswith("stacks/Pulumi.shared.yaml: emlops:platform.registry: ")


# -- the stack reference, offline ------------------------------------------------------------------

def test_the_reference_is_answered_with_the_previewed_shared_stacks_outputs(shipped_plan):
    shared = shipped_plan("shared")
    prod = shipped_plan("prod")
    text = json.dumps([r.inputs for r in prod.resources])
    assert shared.outputs["artifactsBucket"] in text and shared.outputs["dataKeyArn"] in text


# Pulumi's StackReference.require_output hands an Output its value's coroutines; when the reference fails, they are
# never awaited and Python says so as they are collected (the `emlops` command's stderr stays the one line).
@pytest.mark.filterwarnings(r"ignore:coroutine 'Output\.(is_known|future)' was never awaited:RuntimeWarning")
@pytest.mark.filterwarnings(r"ignore:Exception ignored in. <coroutine object Output\.(is_known|future):"
                            "pytest.PytestUnraisableExceptionWarning")
def test_a_reference_without_outputs_is_a_clear_gap():
    def program():
        pulumi.export("bucket", pulumi.StackReference("organization/emlops/elsewhere").require_output("bucket"))

    with pytest.raises(MockGap, match="the program references stack 'organization/emlops/elsewhere', whose outputs "
                                      r"the offline preview does not have \(previewed first: none\)"):
        run_function(program, identity=AwsIdentity("111111111111", "eu-west-1"))
    result = run_function(program, identity=AwsIdentity("111111111111", "eu-west-1"),
                          stack_outputs={"organization/emlops/elsewhere": {"bucket": "b-1234567"}})
    assert result.plan.outputs == {"bucket": "b-1234567"}
    [reference] = result.plan.by_type("pulumi:pulumi:StackReference")
    assert (reference.custom, reference.inputs) == (True, {"name": "organization/emlops/elsewhere"})


# -- the registry's parts ----------------------------------------------------------------------------

def test_approvals_are_announced_per_group_on_the_given_topic():
    topic = "arn:aws:sns:eu-west-1:123456789012:alerts"
    plan = run_components(lambda: ModelRegistry("reg", NO_MLFLOW, RegistryContext(
        account_id=REGISTRY_ACCOUNT, model_groups=["churn", "fraud"], approval_topic_arn=topic)))
    rules = plan.by_type("aws:cloudwatch/eventRule:EventRule")
    assert [json.loads(r.inputs["eventPattern"]) for r in rules] == [{
        "source": ["aws.sagemaker"], "detail-type": ["SageMaker Model Package State Change"],
        "detail": {"ModelPackageGroupName": [group], "ModelApprovalStatus": ["Approved"]}} for group in ("churn", "fraud")]
    assert [t.inputs["arn"] for t in plan.by_type("aws:cloudwatch/eventTarget:EventTarget")] == [topic, topic]


def test_image_repositories_are_hardened_and_pullable_by_the_promotion_accounts_only():
    key = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-4333-8444-555555555555"
    registry = RegistrySettings.model_validate({
        "mlflow": {"kind": "none"}, "image_repositories": ["ml/churn-training"],
        "consumer_account_ids": ["222222222222"], "publisher_account_ids": ["222222222222", "333333333333"]})
    plan = run_components(lambda: ModelRegistry("reg", registry, RegistryContext(
        account_id=REGISTRY_ACCOUNT, kms_key_arn=key, governance=Governance(protect=True))))
    [repository] = plan.by_type("aws:ecr/repository:Repository")
    assert (repository.name, repository.inputs["name"]) == ("reg-ml-churn-training-repository", "ml/churn-training")
    assert repository.inputs["imageTagMutability"] == "IMMUTABLE"
    assert repository.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repository.inputs["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": key}]
    assert repository.protect and repository.retain_on_delete
    assert plan.by_type("aws:ecr/lifecyclePolicy:LifecyclePolicy") == []  # versions refer to their images
    [policy] = plan.by_type("aws:ecr/repositoryPolicy:RepositoryPolicy")
    assert json.loads(policy.inputs["policy"])["Statement"][0]["Principal"] == {
        "AWS": ["arn:aws:iam::222222222222:root", "arn:aws:iam::333333333333:root"]}


def test_retraining_into_another_accounts_group_is_checked():
    base = dict(model_name="churn", pipeline_name="prod-churn-retraining",
                input_s3_uri="s3://in/datasets/churn/", output_s3_uri="s3://out/models/churn/")
    with pytest.raises(ValueError) as caught:
        RetrainingContext(**base, package_group_arn=SHARED_GROUP.format("fraud")).check()
    assert str(caught.value) == (
        f"package_group_arn {SHARED_GROUP.format('fraud')!r} must be the ARN of model package group 'churn': "
        "arn:<partition>:sagemaker:<region>:<account>:model-package-group/churn")
    with pytest.raises(ValueError) as caught:
        RetrainingContext(**base, model_output_s3_uri="s3://shared/models/churn/").check()
    assert str(caught.value) == "model_output_s3_uri and model_kms_key_arn go together: give both or neither"


def test_adding_an_environment_as_stacks_readme_says(project_copy):
    """Copy staging to qa in a new account: refused until the shared stack lists qa, then it previews."""
    staging = (project_copy / "stacks" / "Pulumi.staging.yaml").read_text()
    qa = staging.replace("environment: staging", "environment: qa").replace("222222222222", "555555555555")
    (project_copy / "stacks" / "Pulumi.qa.yaml").write_text(qa.replace("10.20.0.0/16", "10.40.0.0/16"))
    assert preview_error(project_copy, "qa") == (
        "stacks/Pulumi.qa.yaml: emlops:platform.registry.shared_stack: stack 'shared' lists '555555555555' neither "
        "in its registry.consumer_account_ids nor in its registry.publisher_account_ids")
    edit_stack(project_copy, "shared", 'consumer_account_ids: ["222222222222", "333333333333"]',
         'consumer_account_ids: ["222222222222", "333333333333", "555555555555"]')
    plan = preview_stack("qa", start=project_copy).plan
    assert plan.get("qa-churn-model").inputs["primaryContainer"]["modelPackageName"] == (
        f"[unknown: {SHARED_GROUP.format('churn')} (latest Approved)]")
    shared = preview_stack("shared", start=project_copy).plan
    policy = json.loads(shared.get("shared-registry-churn-group-policy").inputs["resourcePolicy"])
    assert "arn:aws:iam::555555555555:root" in policy["Statement"][0]["Principal"]["AWS"]


def test_only_the_groups_a_deploy_picks_from_are_announced():
    topic = "arn:aws:sns:eu-west-1:123456789012:alerts"
    plan = run_components(lambda: ModelRegistry("reg", NO_MLFLOW, RegistryContext(
        account_id=REGISTRY_ACCOUNT, model_groups=["churn", "fraud"], approval_topic_arn=topic,
        announced_groups=["fraud"])))
    assert [r.name for r in plan.by_type("aws:cloudwatch/eventRule:EventRule")] == ["reg-fraud-approved"]
    with pytest.raises(ValueError) as caught:
        RegistryContext(account_id=REGISTRY_ACCOUNT, model_groups=["churn"], announced_groups=["fraud"]).check(
            RegistrySettings())
    assert str(caught.value) == "announced_groups and descriptions name groups the registry does not hold: fraud"
