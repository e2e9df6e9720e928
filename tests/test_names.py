"""Physical names: each type's limit in the catalogue, the mocks refusing what AWS would, and the config-time
check (infra/names.py) that names the stack-file key whose value makes a derived name too long."""

from __future__ import annotations

import re

import botocore.loaders
import pytest

from emlops.catalog.resources import resource_type
from emlops.components import endpoint, monitoring, retraining
from emlops.components.naming import DerivedName
from emlops.program.names import endpoint_component, monitor_component, retraining_component
from tests.conftest import SHIPPED_STACKS, edit_stack, preview_error

# Catalogue type -> (service, the create API's name shape): the catalogue's limits are AWS's.
NAME_SHAPES = {
    "aws:iam/role:Role": ("iam", "roleNameType"),
    "aws:iam/rolePolicy:RolePolicy": ("iam", "policyNameType"),
    "aws:iam/policy:Policy": ("iam", "policyNameType"),
    "aws:cloudwatch/eventRule:EventRule": ("events", "RuleName"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("cloudwatch", "AlarmName"),
    "aws:cloudwatch/logGroup:LogGroup": ("logs", "LogGroupName"),
    "aws:appautoscaling/policy:Policy": ("application-autoscaling", "PolicyName"),
    "aws:appautoscaling/scheduledAction:ScheduledAction": ("application-autoscaling", "ScheduledActionName"),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": ("sagemaker", "EndpointConfigName"),
    "aws:sagemaker/endpoint:Endpoint": ("sagemaker", "EndpointName"),
    "aws:sagemaker/monitoringSchedule:MonitoringSchedule": ("sagemaker", "MonitoringScheduleName"),
    "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition": ("sagemaker", "MonitoringJobDefinitionName"),
    "aws-native:sagemaker:ModelQualityJobDefinition": ("sagemaker", "MonitoringJobDefinitionName"),
    "aws:sagemaker/featureGroup:FeatureGroup": ("sagemaker", "FeatureGroupName"),
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": ("sagemaker", "EntityName"),
    "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer": ("sagemaker", "TrackingServerName"),
    "aws:sagemaker/pipeline:Pipeline": ("sagemaker", "PipelineName"),
    "aws:ecr/repository:Repository": ("ecr", "RepositoryName"),
    "aws:eks/cluster:Cluster": ("eks", "ClusterName"),
}
# Java's \p{Print} and the scheduled action's look-ahead pattern, in Python's words
TRANSLATED = {"aws:appautoscaling/policy:Policy", "aws:appautoscaling/scheduledAction:ScheduledAction",
              "aws:eks/cluster:Cluster"}


@pytest.mark.parametrize("token", sorted(NAME_SHAPES))
def test_catalogue_name_limits_are_the_apis(token):
    service, shape_name = NAME_SHAPES[token]
    shape = botocore.loaders.create_loader().load_service_model(service, "service-2")["shapes"][shape_name]
    naming = resource_type(token).naming
    assert naming.max_length == shape["max"]
    if token not in TRANSLATED:
        assert naming.pattern == shape.get("pattern")


def test_catalogue_limits_without_an_api_shape():
    # S3's and SNS's models do not carry them: the services' documentation does
    bucket = resource_type("aws:s3/bucket:Bucket").naming
    assert (bucket.min_length, bucket.max_length, bucket.lowercase) == (3, 63, True)
    assert bucket.problem("acme-models") is None and bucket.problem("Acme") is not None
    topic = resource_type("aws:sns/topic:Topic").naming
    assert topic.max_length == 256 and topic.problem("alerts.fifo") is None and topic.problem("a b") is not None
    # the model's own pattern differs from EndpointName's but allows the same names
    model = resource_type("aws:sagemaker/model:Model").naming
    assert (model.max_length, model.problem("churn-model-1a2b3c4"), model.problem("churn_model")) == (
        63, None, "has characters AWS does not allow (the name must match [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})")


def test_dashboard_names_are_what_putdashboard_documents():
    # botocore's DashboardName shape has no max or pattern: its documentation states them
    shape = botocore.loaders.create_loader().load_service_model("cloudwatch", "service-2")["shapes"]["DashboardName"]
    assert "max" not in shape and "pattern" not in shape
    member = botocore.loaders.create_loader().load_service_model("cloudwatch", "service-2")["shapes"][
        "PutDashboardInput"]["members"]["DashboardName"]["documentation"]
    assert 'The maximum length is 255, and valid characters are A-Z, a-z, 0-9, "-", and "_".' in member
    naming = resource_type("aws:cloudwatch/dashboard:Dashboard").naming
    assert (naming.max_length, naming.pattern) == (255, "[A-Za-z0-9_-]+")


def test_scheduled_action_names_follow_application_auto_scaling():
    naming = resource_type("aws:appautoscaling/scheduledAction:ScheduledAction").naming
    assert naming.problem("prod-churn-primary-off-hours") is None
    for bad in (" leading", "trailing ", "a:b", "a/b", "a|b", "tab\there"):
        assert naming.problem(bad) is not None, bad


# -- the derived names are the plan's names --------------------------------------------------------------------

@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_derived_names_are_the_names_the_components_give(shipped_plan, stack):
    from emlops.program.stackfile import find_project, load_stack
    from tests.conftest import ROOT

    config = load_stack(find_project(ROOT), stack).platform
    plan = shipped_plan(stack)
    derived: list[DerivedName] = []
    for model in config.models:
        derived += endpoint.derived_names(endpoint_component(config.environment, model.name), model)
        if model.monitoring.is_enabled(model.captures_data(config.environment)):
            derived += monitoring.derived_names(monitor_component(config.environment, model.name), model.monitoring)
        if model.retraining.enabled:
            derived += retraining.derived_names(retraining_component(config.environment, model.name),
                                                model.retraining, retraining_pipeline(config, model.name))
    for name in derived:
        naming = resource_type(name.token).naming
        physical = [r.inputs.get(naming.property) for r in plan.resources if r.type == name.token]
        if name.auto:
            (resource,) = [r for r in plan.resources if r.type == name.token and r.name == name.name]
            assert re.fullmatch(rf"{re.escape(name.name)}-[0-9a-f]{{7}}", resource.inputs[naming.property])
        else:
            assert name.name in physical, name
    assert len(derived) >= 5 * len(config.models)


def retraining_pipeline(config, model: str) -> str:
    from emlops.components.retraining_args import pipeline_name

    return pipeline_name(config.environment, model)


# -- config time: the key whose value makes a name too long ----------------------------------------------------

def test_a_model_name_too_long_for_the_monitoring_schedule(project_copy):
    edit_stack(project_copy, "prod", "environment: prod", "environment: production-eu-01")
    edit_stack(project_copy, "prod", "      - name: fraud\n", "      - name: customer-lifetime-value\n")
    assert preview_error(project_copy, "prod") == (
        "stacks/Pulumi.prod.yaml: emlops:platform.models[1].name: 'customer-lifetime-value' makes the monitoring "
        "schedule name 'production-eu-01-customer-lifetime-value-monitor-schedule-1a2b3c4' 65 characters (with "
        "Pulumi's auto-name suffix); AWS allows 63 (at most 21 characters here)")


def test_a_model_name_too_long_for_an_eventbridge_rule(project_copy):
    # every name churn derives fits but the rule of its model-quality monitor's violations (64 at most)
    edit_stack(project_copy, "prod", "environment: prod", "environment: production-eu-01")
    edit_stack(project_copy, "prod", "      - name: churn\n", "      - name: customer-churn-2\n")
    assert preview_error(project_copy, "prod") == (
        "stacks/Pulumi.prod.yaml: emlops:platform.models[0].name: 'customer-churn-2' makes the EventBridge rule name "
        "'production-eu-01-customer-churn-2-monitor-quality-violations-1a2b3c4' 68 characters (with Pulumi's "
        "auto-name suffix); AWS allows 64 (at most 12 characters here)")


def test_names_that_fit_reach_the_plan(project_copy):
    edit_stack(project_copy, "prod", "environment: prod", "environment: production-eu-01")
    from emlops.offline.preview import preview_stack

    plan = preview_stack("prod", start=project_copy).plan
    rule = plan.get("production-eu-01-churn-monitor-quality-violations")
    assert len(rule.inputs["name"]) == 57
    longest = max((r for r in plan.resources if r.custom), key=lambda r: len(str(r.inputs.get("name", ""))))
    assert len(longest.inputs["name"]) <= resource_type(longest.type).naming.max_length


def test_a_registry_group_too_long_for_its_approvals_rule(project_copy):
    group = "customer-lifetime-value-propensity-2026"
    edit_stack(project_copy, "shared", "package_groups: [churn, fraud, doc-scoring]",
               f"package_groups: [churn, fraud, doc-scoring, {group}]")
    assert preview_error(project_copy, "shared") == (
        f"stacks/Pulumi.shared.yaml: emlops:platform.registry.package_groups[3]: {group!r} makes the EventBridge rule "
        f"name 'shared-registry-{group}-approved-1a2b3c4' 72 characters (with Pulumi's auto-name suffix); AWS allows "
        "64 (at most 31 characters here)")


def test_names_check_runs_on_settings_made_in_python():
    from pydantic import ValidationError

    from emlops.program.platform import PlatformConfig
    from tests.conftest import BASE_SETTINGS

    model = {"name": "m" * 32, "source": {"s3_uri": "s3://acme-models/m/model.tar.gz"},
             "image": {"framework": "xgboost", "framework_version": "1.7-1"}, "serverless": {}}
    with pytest.raises(ValidationError) as caught:
        PlatformConfig.model_validate({**BASE_SETTINGS, "environment": "abcdefghijklmnop", "models": [model],
                                       "registry": {"mlflow": {"kind": "none"}}})
    assert str(caught.value.errors()[0]["ctx"]["error"]) == (
        f"{'m' * 32!r} makes the endpoint config name 'abcdefghijklmnop-{'m' * 32}-config-1a2b3c4' 64 characters "
        "(with Pulumi's auto-name suffix); AWS allows 63 (at most 31 characters here)")
