"""The offline engine and its mocks: truthful answers, loud gaps, the plan's value encoding."""

from __future__ import annotations

import re

import pulumi
import pulumi_aws as aws
import pytest

from emlops.offline.engine import run_function
from emlops.offline.mocks import AwsIdentity, MockGap, NameRefused, autoname
from tests.conftest import IDENTITY, run_components


def outputs_of(program, identity: AwsIdentity = IDENTITY) -> dict:
    def wrapped():
        for key, value in program().items():
            pulumi.export(key, value)
    return run_function(wrapped, identity=identity).plan.outputs


def test_data_sources_answer_for_the_stacks_identity():
    outputs = outputs_of(lambda: {
        "identity": aws.get_caller_identity_output(),
        "region": aws.get_region_output(),
        "partition": aws.get_partition_output(),
        "zones": aws.get_availability_zones_output(),
    }, AwsIdentity("210987654321", "ap-southeast-2"))
    assert outputs["identity"] == {
        "accountId": "210987654321",
        "arn": "arn:aws:sts::210987654321:assumed-role/emlops-preview/emlops-preview",
        "id": "210987654321",
        "userId": outputs["identity"]["userId"],
    }
    assert re.fullmatch(r"AROA[0-9A-F]{17}:emlops-preview", outputs["identity"]["userId"])
    assert outputs["region"] == {"description": "Asia Pacific (Sydney)", "endpoint": "ec2.ap-southeast-2.amazonaws.com",
                                 "id": "ap-southeast-2", "name": "ap-southeast-2", "region": "ap-southeast-2"}
    assert outputs["partition"] == {"dnsSuffix": "amazonaws.com", "id": "aws", "partition": "aws",
                                    "reverseDnsPrefix": "com.amazonaws"}
    assert outputs["zones"]["names"] == ["ap-southeast-2a", "ap-southeast-2b", "ap-southeast-2c"]
    assert outputs["zones"]["zoneIds"] == ["apse2-az1", "apse2-az2", "apse2-az3"]


def test_china_regions_use_their_partition_and_dns_suffix():
    outputs = outputs_of(lambda: {"partition": aws.get_partition_output(), "identity": aws.get_caller_identity_output()},
                         AwsIdentity("210987654321", "cn-north-1"))
    assert outputs["partition"]["partition"] == "aws-cn"
    assert outputs["partition"]["dnsSuffix"] == "amazonaws.com.cn"
    assert outputs["identity"]["arn"].startswith("arn:aws-cn:sts::210987654321:")


def test_invokes_through_an_explicit_provider_answer_for_its_account_and_region():
    def program():
        provider = aws.Provider("other", region="us-east-1", allowed_account_ids=["999999999999"])
        invoke = pulumi.InvokeOptions(provider=provider)
        return {"identity": aws.get_caller_identity_output(opts=invoke),
                "region": aws.get_region_output(opts=invoke),
                "default": aws.get_caller_identity_output()}

    outputs = outputs_of(program)
    assert outputs["identity"]["accountId"] == "999999999999"
    assert outputs["region"]["region"] == "us-east-1"
    assert outputs["default"]["accountId"] == IDENTITY.account_id


def test_an_unexpected_data_source_fails_loudly():
    with pytest.raises(MockGap, match=re.escape(
        "the offline preview has no answer for data source aws:ec2/getVpc:getVpc; add one to "
        "_DATA_SOURCES in emlops/offline/mocks.py"
    )):
        run_components(lambda: aws.ec2.get_vpc_output(default=True).apply(lambda v: v.id))


def test_a_resource_type_without_a_known_arn_format_fails_loudly():
    with pytest.raises(MockGap, match=re.escape(
        "the offline preview has no catalogue entry for aws:sqs/queue:Queue; add a ResourceType for it (ARN format, "
        "physical id, naming, replace-on-change inputs, stateful, taggable, graph label) to its service's module in "
        "emlops/catalog/ (resources_<service>.py)"
    )):
        run_components(lambda: aws.sqs.Queue("jobs"))


def test_a_catalogued_type_whose_entry_has_no_arn_format_fails_loudly():
    with pytest.raises(MockGap, match=re.escape(
        "the offline preview has no ARN format for aws:dynamodb/table:Table; add AWS's format for it to its entry "
        "in emlops/catalog/resources_other.py"
    )):
        run_components(lambda: aws.dynamodb.Table("features", hash_key="id", attributes=[{"name": "id", "type": "S"}]))


def test_auto_names_follow_pulumi_and_aws_limits():
    plan = run_components(lambda: [
        aws.iam.Role("a" * 56, assume_role_policy="{}"),
        aws.s3.Bucket("Mixed-Case"),
        aws.iam.Role("named", name="explicit-name", assume_role_policy="{}"),
        aws.iam.Role("prefixed", name_prefix="team-", assume_role_policy="{}"),
    ])
    longest_role = plan.get("a" * 56).inputs["name"]
    assert len(longest_role) == 64 and re.fullmatch(r"a{56}-[0-9a-f]{7}", longest_role)
    assert re.fullmatch(r"mixed-case-[0-9a-f]{7}", plan.get("Mixed-Case").inputs["bucket"])
    assert plan.get("named").inputs["name"] == "explicit-name"
    assert re.fullmatch(r"team-[0-9a-f]{26}", plan.get("prefixed").inputs["name"])


def test_auto_name_suffix_is_deterministic_per_urn():
    assert autoname("x", "urn:a") == autoname("x", "urn:a")
    assert autoname("x", "urn:a") != autoname("x", "urn:b")


def test_secrets_are_masked_and_whole_numbers_are_integers():
    def program():
        aws.iam.Role("r", assume_role_policy=pulumi.Output.secret("{}"), max_session_duration=3600)
        pulumi.export("token", pulumi.Output.secret("s3cr3t"))
        pulumi.export("ratio", 0.5)

    plan = run_function(program, identity=IDENTITY).plan
    inputs = plan.get("r").inputs
    assert inputs["assumeRolePolicy"] == "[secret]"
    assert inputs["maxSessionDuration"] == 3600 and isinstance(inputs["maxSessionDuration"], int)
    assert plan.outputs == {"ratio": 0.5, "token": "[secret]"}
    assert "s3cr3t" not in plan.dumps()


def test_urns_carry_the_whole_parent_type_chain_but_not_the_root_stack():
    class Outer(pulumi.ComponentResource):
        def __init__(self, name):
            super().__init__("emlops:index:Outer", name)
            Inner(f"{name}-inner", opts=pulumi.ResourceOptions(parent=self))

    class Inner(pulumi.ComponentResource):
        def __init__(self, name, opts):
            super().__init__("emlops:index:Inner", name, None, opts)
            aws.s3.Bucket(f"{name}-bucket", opts=pulumi.ResourceOptions(parent=self))

    plan = run_components(lambda: Outer("o"))
    assert plan.get("o").urn == "urn:pulumi:test::emlops::emlops:index:Outer::o"
    assert plan.get("o-inner-bucket").urn == (
        "urn:pulumi:test::emlops::emlops:index:Outer$emlops:index:Inner$aws:s3/bucket:Bucket::o-inner-bucket"
    )
    assert [r.name for r in plan.resources] == ["emlops-test", "o", "o-inner", "o-inner-bucket"]


def test_runs_are_isolated_from_each_other():
    first = run_components(lambda: aws.s3.Bucket("one"))
    second = run_components(lambda: aws.s3.Bucket("two"))
    assert [r.name for r in first.resources] == ["emlops-test", "one"]
    assert [r.name for r in second.resources] == ["emlops-test", "two"]


def test_an_auto_name_longer_than_aws_allows_is_refused_as_pulumi_does():
    # Pulumi does not cut the logical name: "name '<prefix>-' plus 7 random chars is longer than maximum length"
    with pytest.raises(NameRefused, match=re.escape(
        f"could not make instance of 'aws:iam/role:Role' {'a' * 57!r}: name {'a' * 57 + '-'!r} plus 7 random chars "
        "is longer than maximum length 64 (AWS's limit for its name; see emlops/catalog/resources_iam.py)")):
        run_components(lambda: aws.iam.Role("a" * 57, assume_role_policy="{}"))


@pytest.mark.parametrize("build, message", [
    (lambda: aws.cloudwatch.EventRule("rule", name="r" * 65, schedule_expression="rate(1 day)"),
     f"aws:cloudwatch/eventRule:EventRule 'rule': AWS refuses its name {'r' * 65!r}: it is 65 characters; AWS "
     "allows 64"),
    (lambda: aws.cloudwatch.EventRule("rule", name="retrain on drift", schedule_expression="rate(1 day)"),
     "aws:cloudwatch/eventRule:EventRule 'rule': AWS refuses its name 'retrain on drift': it has characters AWS "
     "does not allow (the name must match [\\.\\-_A-Za-z0-9]+)"),
    (lambda: aws.iam.Role("role", name="team/role", assume_role_policy="{}"),
     "aws:iam/role:Role 'role': AWS refuses its name 'team/role': it has characters AWS does not allow (the name "
     "must match [\\w+=,.@-]+)"),
    (lambda: aws.sagemaker.Endpoint("endpoint", name="churn_endpoint", endpoint_config_name="config"),
     "aws:sagemaker/endpoint:Endpoint 'endpoint': AWS refuses its name 'churn_endpoint': it has characters AWS does "
     "not allow (the name must match [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})"),
    (lambda: aws.sagemaker.Model("model", name="m" * 64, execution_role_arn="arn:aws:iam::123456789012:role/r"),
     f"aws:sagemaker/model:Model 'model': AWS refuses its name {'m' * 64!r}: it is 64 characters; AWS allows 63"),
    (lambda: aws.s3.Bucket("bucket", bucket="ab"),
     "aws:s3/bucket:Bucket 'bucket': AWS refuses its bucket 'ab': it is 2 characters; AWS needs at least 3"),
])
def test_mocks_refuse_a_name_aws_would_refuse(build, message):
    with pytest.raises(NameRefused) as caught:
        run_components(build)
    assert str(caught.value) == message


def test_a_refused_name_ends_the_run_alone_not_wrapped_by_its_dependents():
    from emlops.components.iam import ServiceRole, ServiceRoleArgs, Statement

    def program() -> None:
        role = ServiceRole("r" * 52, ServiceRoleArgs(services=["sagemaker.amazonaws.com"],
                                                     source_account_id="123456789012"))
        role.add_policy("read", [Statement(actions=["s3:GetObject"], resources=["arn:aws:s3:::b/*"])])

    with pytest.raises(NameRefused) as caught:
        run_components(program)
    assert str(caught.value) == (
        f"could not make instance of 'aws:iam/role:Role' {'r' * 52 + '-role'!r}: name {'r' * 52 + '-role-'!r} plus 7 "
        "random chars is longer than maximum length 64 (AWS's limit for its name; see emlops/catalog/resources_iam.py)")
