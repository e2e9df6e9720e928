"""ModelDashboard and EnvironmentDashboard: their one child each, the widgets and metrics of every serving mode,
names, argument checks (exact messages), CloudWatch's limits, and a body that is valid, plain and stable JSON."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Callable

import pulumi
import pulumi_aws as aws
import pytest

from emlops.components.dashboards import (EnvironmentDashboard, EnvironmentDashboardContext, ModelDashboard,
                                          ModelDashboardContext, derived_names)
from emlops.components.dashboards_args import MAX_METRICS, MAX_WIDGETS, check_limits
from emlops.components.naming import DerivedName
from emlops.offline.plan import Plan
from emlops.review.graph import build_graph
from tests.conftest import ACCOUNT, REGION, api_problems, run_components

STACK = "pulumi:pulumi:Stack"
MODEL_COMPONENT, ENV_COMPONENT = "emlops:index:ModelDashboard", "emlops:index:EnvironmentDashboard"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
SAGEMAKER, INSTANCES = "AWS/SageMaker", "/aws/sagemaker/Endpoints"
DATA_METRICS = "aws/sagemaker/Endpoints/data-metrics"
SCHEDULE = "dev-churn-monitor-schedule-1a2b3c4"
MANAGED = "Managed by emlops: changes made in the console are overwritten by the next deploy."


def context(**changes: Any) -> ModelDashboardContext:
    return ModelDashboardContext(**{"endpoint_name": "dev-churn", "variant_names": ["primary"], "region": REGION,
                                    **changes})


def model_plan(name: str = "dev-churn", **changes: Any) -> Plan:
    return run_components(lambda: ModelDashboard(name, context(**changes)))


def body(plan: Plan, name: str = "dev-churn-dashboard") -> dict[str, Any]:
    return json.loads(plan.get(name, DASHBOARD).inputs["dashboardBody"])


def titles(document: dict[str, Any]) -> list[str]:
    return [w["properties"].get("title", w["type"]) for w in document["widgets"]]


def widget(document: dict[str, Any], title: str) -> dict[str, Any]:
    [found] = [w for w in document["widgets"] if w["properties"].get("title") == title]
    return found


def lines(found: dict[str, Any]) -> list[tuple]:
    """A metric widget's lines as (namespace, metric, {dimension: value}, stat, label)."""
    out = []
    for entry in found["properties"]["metrics"]:
        *names, rendering = entry
        namespace, metric, *dimensions = names
        out.append((namespace, metric, dict(zip(dimensions[::2], dimensions[1::2])), rendering["stat"],
                    rendering["label"]))
    return out


def all_lines(document: dict[str, Any]) -> list[tuple]:
    return [line for w in document["widgets"] if w["type"] == "metric" for line in lines(w)]


def at(found: dict[str, Any]) -> tuple[str, int, int, int, int]:
    return found["type"], found["x"], found["y"], found["width"], found["height"]


PRIMARY = {"EndpointName": "dev-churn", "VariantName": "primary"}
QUEUE = {"EndpointName": "dev-churn"}
MICROSECONDS = {"left": {"label": "microseconds", "showUnits": False}}


# -- one model's dashboard ------------------------------------------------------------------------------

def test_a_model_dashboard_is_one_dashboard_named_after_its_component():
    plan = model_plan()
    assert [(r.type, r.name) for r in plan.resources] == [
        (STACK, "emlops-test"), (MODEL_COMPONENT, "dev-churn"), (DASHBOARD, "dev-churn-dashboard")]
    component, dashboard = plan.get("dev-churn", MODEL_COMPONENT), plan.get("dev-churn-dashboard", DASHBOARD)
    assert dashboard.parent == component.urn
    assert sorted(dashboard.inputs) == ["dashboardBody", "dashboardName"]
    assert dashboard.inputs["dashboardName"] == "dev-churn"
    assert api_problems(dashboard) == []
    assert [r.name for members in build_graph(plan).groups.values() for r in members] == ["dev-churn-dashboard"]
    assert derived_names("dev-churn") == [DerivedName(DASHBOARD, "dev-churn", auto=False)]


def test_a_real_time_endpoint_shows_traffic_latency_and_its_instances():
    document = body(model_plan())
    assert (document["start"], document["periodOverride"]) == ("-P1D", "inherit")
    assert [(titles(document)[i], *at(w)) for i, w in enumerate(document["widgets"])] == [
        ("text", "text", 0, 0, 24, 2),
        ("Invocations and errors", "metric", 0, 2, 12, 6),
        ("Latency", "metric", 12, 2, 12, 6),
        ("Instances: primary", "metric", 0, 8, 12, 6),
    ]
    assert document["widgets"][0]["properties"] == {"markdown": (
        "# dev-churn\nReal-time endpoint in eu-west-1: production variants primary. Latencies in microseconds. "
        f"{MANAGED}")}
    traffic = widget(document, "Invocations and errors")
    assert {k: v for k, v in traffic["properties"].items() if k != "metrics"} == {
        "title": "Invocations and errors", "view": "timeSeries", "stacked": False, "region": REGION, "period": 300}
    assert lines(traffic) == [
        (SAGEMAKER, "Invocations", PRIMARY, "Sum", "primary invocations"),
        (SAGEMAKER, "Invocation4XXErrors", PRIMARY, "Sum", "primary 4XX errors"),
        (SAGEMAKER, "Invocation5XXErrors", PRIMARY, "Sum", "primary 5XX errors"),
    ]
    latency = widget(document, "Latency")
    assert latency["properties"]["yAxis"] == MICROSECONDS
    assert lines(latency) == [
        (SAGEMAKER, "ModelLatency", PRIMARY, "p50", "primary model p50"),
        (SAGEMAKER, "ModelLatency", PRIMARY, "p99", "primary model p99"),
        (SAGEMAKER, "OverheadLatency", PRIMARY, "p50", "primary overhead p50"),
        (SAGEMAKER, "OverheadLatency", PRIMARY, "p99", "primary overhead p99"),
    ]
    assert lines(widget(document, "Instances: primary")) == [
        (INSTANCES, "CPUUtilization", PRIMARY, "Average", "CPU"),
        (INSTANCES, "MemoryUtilization", PRIMARY, "Average", "memory"),
        (INSTANCES, "DiskUtilization", PRIMARY, "Average", "disk"),
    ]


def test_every_production_variant_gets_its_lines_and_its_instances():
    document = body(model_plan(variant_names=["blue", "green"]))
    assert titles(document) == ["text", "Invocations and errors", "Latency", "Instances: blue", "Instances: green"]
    assert [(line[1], line[2]["VariantName"]) for line in lines(widget(document, "Invocations and errors"))] == [
        ("Invocations", "blue"), ("Invocation4XXErrors", "blue"), ("Invocation5XXErrors", "blue"),
        ("Invocations", "green"), ("Invocation4XXErrors", "green"), ("Invocation5XXErrors", "green")]


def test_gpu_instances_show_gpu_and_gpu_memory_utilisation():
    document = body(model_plan(gpu=True))
    assert [line[1] for line in lines(widget(document, "Instances: primary"))] == [
        "CPUUtilization", "MemoryUtilization", "DiskUtilization", "GPUUtilization", "GPUMemoryUtilization"]
    assert "GPU instances" in document["widgets"][0]["properties"]["markdown"]
    assert not [line for line in all_lines(body(model_plan())) if line[1].startswith("GPU")]


def test_an_asynchronous_endpoint_shows_its_backlog_and_no_metric_it_does_not_publish():
    document = body(model_plan(asynchronous=True))
    assert titles(document) == ["text", "Errors", "Latency", "Asynchronous backlog", "Oldest queued request",
                                "Instances: primary"]
    assert lines(widget(document, "Asynchronous backlog")) == [
        (SAGEMAKER, "ApproximateBacklogSize", QUEUE, "Average", "requests queued"),
        (SAGEMAKER, "ApproximateBacklogSizePerInstance", QUEUE, "Average", "requests queued per instance"),
        (SAGEMAKER, "HasBacklogWithoutCapacity", QUEUE, "Maximum", "requests queued, no instance (1)"),
    ]
    assert lines(widget(document, "Oldest queued request")) == [
        (SAGEMAKER, "ApproximateAgeOfOldestRequest", QUEUE, "Maximum", "age of the oldest request")]
    published = {line[1] for line in all_lines(document)}
    assert not published & {"Invocations", "OverheadLatency", "InvocationsPerInstance"}


def test_a_shadow_variant_is_compared_with_the_production_variant():
    document = body(model_plan(variant_names=["champion"], shadow_variant_names=["challenger"]))
    assert titles(document) == ["text", "Invocations and errors", "Latency", "Shadow test: invocations",
                                "Shadow test: p99 model latency", "Shadow test: errors", "Instances: champion",
                                "Instances: challenger (shadow)"]
    champion = {"EndpointName": "dev-churn", "VariantName": "champion"}
    challenger = {"EndpointName": "dev-churn", "VariantName": "challenger"}
    assert lines(widget(document, "Shadow test: invocations")) == [
        (SAGEMAKER, "Invocations", champion, "Sum", "champion (production) invocations"),
        (SAGEMAKER, "Invocations", challenger, "Sum", "challenger (shadow) invocations")]
    assert lines(widget(document, "Shadow test: p99 model latency")) == [
        (SAGEMAKER, "ModelLatency", champion, "p99", "champion (production) p99"),
        (SAGEMAKER, "ModelLatency", challenger, "p99", "challenger (shadow) p99")]
    assert [(line[1], line[2]["VariantName"]) for line in lines(widget(document, "Shadow test: errors"))] == [
        ("Invocation4XXErrors", "champion"), ("Invocation4XXErrors", "challenger"),
        ("Invocation5XXErrors", "champion"), ("Invocation5XXErrors", "challenger")]
    assert [at(widget(document, t)) for t in titles(document)[3:6]] == [
        ("metric", 0, 8, 8, 6), ("metric", 8, 8, 8, 6), ("metric", 16, 8, 8, 6)]
    # the shadow serves no responses: the production traffic widget is the production variant's
    assert {line[2]["VariantName"] for line in lines(widget(document, "Invocations and errors"))} == {"champion"}


def test_a_multi_model_endpoint_shows_models_loaded_loading_wait_and_cache_hits():
    document = body(model_plan(multi_model=True))
    assert titles(document) == ["text", "Invocations and errors", "Latency", "Models loaded", "Model loading wait",
                                "Model cache hit ratio", "Instances: primary"]
    assert lines(widget(document, "Models loaded")) == [
        (INSTANCES, "LoadedModelCount", PRIMARY, "Average", "primary per instance")]
    assert lines(widget(document, "Model loading wait")) == [
        (SAGEMAKER, "ModelLoadingWaitTime", PRIMARY, "Average", "primary average"),
        (SAGEMAKER, "ModelLoadingWaitTime", PRIMARY, "Maximum", "primary maximum")]
    assert lines(widget(document, "Model cache hit ratio")) == [
        (SAGEMAKER, "ModelCacheHit", PRIMARY, "Average", "primary already loaded")]


def test_a_serverless_endpoint_shows_cold_starts_and_no_instances():
    document = body(model_plan(variant_names=["serverless"], serverless=True))
    assert titles(document) == ["text", "Invocations and errors", "Latency",
                                "Serverless cold starts (model setup time)"]
    serverless = {"EndpointName": "dev-churn", "VariantName": "serverless"}
    assert lines(widget(document, "Serverless cold starts (model setup time)")) == [
        (SAGEMAKER, "ModelSetupTime", serverless, "Average", "serverless setup Average"),
        (SAGEMAKER, "ModelSetupTime", serverless, "p99", "serverless setup p99")]
    assert not [line for line in all_lines(document) if line[0] == INSTANCES]
    assert document["widgets"][0]["properties"]["markdown"].startswith("# dev-churn\nServerless endpoint in eu-west-1")


def test_a_monitored_endpoint_shows_the_drift_of_each_feature():
    document = body(model_plan(monitoring_schedule_name=SCHEDULE, drift_features=["age", "tenure_months"]))
    drift = widget(document, "Data drift from the baseline")
    assert at(drift) == ("metric", 0, 14, 24, 6) and drift["properties"]["period"] == 3600
    dimensions = {"Endpoint": "dev-churn", "MonitoringSchedule": SCHEDULE}
    assert lines(drift) == [
        (DATA_METRICS, "feature_baseline_drift_age", dimensions, "Maximum", "age"),
        (DATA_METRICS, "feature_baseline_drift_tenure_months", dimensions, "Maximum", "tenure_months")]
    assert "data-quality monitoring, drift of 2 features" in document["widgets"][0]["properties"]["markdown"]


def test_the_schedule_name_may_be_an_output_of_the_monitor():
    def program() -> None:
        schedule = aws.cloudwatch.MetricAlarm(  # any auto-named resource stands in for the monitor's schedule
            "stand-in", comparison_operator="GreaterThanThreshold", evaluation_periods=1, threshold=1)
        ModelDashboard("dev-churn", context(monitoring_schedule_name=schedule.name, drift_features=["age"]))
    plan = run_components(program)
    [drift_line] = lines(widget(body(plan), "Data drift from the baseline"))
    assert drift_line[2]["MonitoringSchedule"] == plan.get("stand-in", ALARM).inputs["name"]


def test_alarms_are_shown_by_arn_whether_their_names_are_known_or_outputs():
    def program() -> None:
        rollback = aws.cloudwatch.MetricAlarm(
            "dev-churn-primary-5xx", comparison_operator="GreaterThanOrEqualToThreshold", evaluation_periods=3,
            threshold=5)
        ModelDashboard("dev-churn", context(alarm_names=[rollback.name, "dev-churn-drift-age"]))
    plan = run_components(program)
    rollback = plan.get("dev-churn-primary-5xx", ALARM).inputs["name"]
    document = body(plan)
    assert titles(document)[:2] == ["text", "Alarms (rollback and drift)"]
    assert document["widgets"][1] == {"type": "alarm", "x": 0, "y": 2, "width": 24, "height": 3, "properties": {
        "title": "Alarms (rollback and drift)",
        "alarms": [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{rollback}",
                   f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:dev-churn-drift-age"],
        "sortBy": "stateUpdatedTimestamp"}}
    # the account given (a known string) and the region's partition
    china = body(model_plan(region="cn-north-1", account_id="210987654321", alarm_names=["a"]))
    assert china["widgets"][1]["properties"]["alarms"] == ["arn:aws-cn:cloudwatch:cn-north-1:210987654321:alarm:a"]


def test_more_than_100_alarms_take_more_than_one_widget():
    names = [f"alarm-{i:03}" for i in range(130)]
    document = body(model_plan(alarm_names=names, account_id=ACCOUNT))
    alarms = [w for w in document["widgets"] if w["type"] == "alarm"]
    assert [(w["properties"]["title"], len(w["properties"]["alarms"]), w["y"], w["height"]) for w in alarms] == [
        ("Alarms (rollback and drift) (1/2)", 100, 2, 19), ("Alarms (rollback and drift) (2/2)", 30, 21, 7)]


def test_the_body_is_plain_valid_and_stable_json():
    made: list[ModelDashboard] = []
    changes = dict(variant_names=["champion"], shadow_variant_names=["challenger"], gpu=True, multi_model=False,
                   monitoring_schedule_name=SCHEDULE, drift_features=["age"], alarm_names=["a", "b"],
                   account_id=ACCOUNT)
    first = model_plan(**changes).get("dev-churn-dashboard", DASHBOARD).inputs["dashboardBody"]
    second = run_components(lambda: made.append(ModelDashboard("dev-churn", context(**changes))))
    assert second.get("dev-churn-dashboard", DASHBOARD).inputs["dashboardBody"] == first
    [component] = made
    assert isinstance(component.body, str) and component.body == first  # no Output when everything is known
    assert json.loads(first)["widgets"] and first == json.dumps(json.loads(first))
    assert component.dashboard_name == "dev-churn"


def test_the_callers_options_reach_the_dashboard():
    def program() -> None:
        provider = aws.Provider("us", region="us-east-1")
        ModelDashboard("dev-churn", context(), opts=pulumi.ResourceOptions(providers=[provider]))
    plan = run_components(program)
    assert plan.get("dev-churn-dashboard", DASHBOARD).provider.endswith("::us")


# -- one environment's dashboard ----------------------------------------------------------------------

def environment(**changes: Any) -> EnvironmentDashboardContext:
    models = [context(), context(endpoint_name="dev-fraud", variant_names=["blue", "green"]),
              context(endpoint_name="dev-docs", asynchronous=True)]
    return EnvironmentDashboardContext(**{"environment": "dev", "region": REGION, "models": models, **changes})


def test_an_environment_dashboard_has_a_row_per_model_under_its_alarms():
    plan = run_components(lambda: EnvironmentDashboard("dev-models", environment(
        alarm_names=["dev-churn-primary-5xx"], account_id=ACCOUNT)))
    assert [(r.type, r.name) for r in plan.resources] == [
        (STACK, "emlops-test"), (ENV_COMPONENT, "dev-models"), (DASHBOARD, "dev-models-dashboard")]
    dashboard = plan.get("dev-models-dashboard", DASHBOARD)
    assert dashboard.inputs["dashboardName"] == "dev-models" and api_problems(dashboard) == []
    document = body(plan, "dev-models-dashboard")
    assert [(t, *at(w)) for t, w in zip(titles(document), document["widgets"])] == [
        ("text", "text", 0, 0, 24, 2),
        ("Alarms of dev", "alarm", 0, 2, 24, 3),
        ("dev-churn: invocations", "metric", 0, 5, 8, 6),
        ("dev-churn: 5XX errors", "metric", 8, 5, 8, 6),
        ("dev-churn: p99 model latency", "metric", 16, 5, 8, 6),
        ("dev-fraud: invocations", "metric", 0, 11, 8, 6),
        ("dev-fraud: 5XX errors", "metric", 8, 11, 8, 6),
        ("dev-fraud: p99 model latency", "metric", 16, 11, 8, 6),
        ("dev-docs: asynchronous backlog", "metric", 0, 17, 8, 6),
        ("dev-docs: 5XX errors", "metric", 8, 17, 8, 6),
        ("dev-docs: p99 model latency", "metric", 16, 17, 8, 6),
    ]
    assert document["widgets"][0]["properties"]["markdown"].startswith(
        "# dev\nThe served models of the dev environment")
    assert document["widgets"][1]["properties"]["alarms"] == [
        f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:dev-churn-primary-5xx"]
    fraud = {"EndpointName": "dev-fraud"}
    assert lines(widget(document, "dev-fraud: invocations")) == [
        (SAGEMAKER, "Invocations", {**fraud, "VariantName": "blue"}, "Sum", "blue"),
        (SAGEMAKER, "Invocations", {**fraud, "VariantName": "green"}, "Sum", "green")]
    assert lines(widget(document, "dev-fraud: p99 model latency")) == [
        (SAGEMAKER, "ModelLatency", {**fraud, "VariantName": "blue"}, "p99", "blue"),
        (SAGEMAKER, "ModelLatency", {**fraud, "VariantName": "green"}, "p99", "green")]
    assert lines(widget(document, "dev-docs: asynchronous backlog")) == [
        (SAGEMAKER, "ApproximateBacklogSize", {"EndpointName": "dev-docs"}, "Average", "requests queued")]


def test_an_environment_without_models_or_alarms_still_names_itself():
    plan = run_components(lambda: EnvironmentDashboard("prod-models", EnvironmentDashboardContext("prod", REGION)))
    assert titles(body(plan, "prod-models-dashboard")) == ["text"]


# -- argument checks ------------------------------------------------------------------------------------

def refusal(make: Callable[[], Any]) -> str:
    """The ValueError a dashboard raises, after checking that it registered nothing."""
    raised: list[str] = []

    def program() -> None:
        try:
            make()
        except ValueError as exc:
            raised.append(str(exc))
    plan = run_components(program)
    assert [r.type for r in plan.resources] == [STACK]
    [message] = raised
    return message


NAME_RULE = "1-63 letters, digits and '-', starting and ending with a letter or digit"


@pytest.mark.parametrize("changes, message", [
    ({"endpoint_name": "dev_churn"},
     f"endpoint_name 'dev_churn' must be a SageMaker endpoint name: {NAME_RULE}"),
    ({"endpoint_name": "e" * 64}, f"endpoint_name '{'e' * 64}' must be a SageMaker endpoint name: {NAME_RULE}"),
    ({"variant_names": "primary"}, "variant_names must be a list, e.g. ['primary']"),
    ({"variant_names": []}, "variant_names: give the endpoint's production variants, e.g. ['primary']"),
    ({"variant_names": [f"v{i}" for i in range(11)]},
     "variant_names: 11 production variants; SageMaker allows at most 10"),
    ({"variant_names": ["primary_1"]}, f"variant name 'primary_1' must be {NAME_RULE}"),
    ({"shadow_variant_names": ["s1", "s2"]},
     "shadow_variant_names: SageMaker allows one shadow variant per endpoint; got s1, s2"),
    ({"variant_names": ["a", "b"], "shadow_variant_names": ["s"]},
     "an endpoint with a shadow variant has exactly one production variant; got a, b"),
    ({"shadow_variant_names": ["primary"]},
     "variant names must be unique across production and shadow variants; got primary, primary"),
    ({"serverless": True, "variant_names": ["a", "b"]}, "a serverless endpoint has one variant; got a, b"),
    ({"serverless": True, "asynchronous": True},
     "asynchronous endpoints run on instances: drop asynchronous or serverless"),
    ({"serverless": True, "gpu": True}, "serverless endpoints have no GPUs: drop gpu or serverless"),
    ({"serverless": True, "multi_model": True}, "serverless endpoints host one model: drop multi_model or serverless"),
    ({"drift_features": ["age"]},
     "drift_features are the model monitor's metrics: give monitoring_schedule_name too"),
    ({"serverless": True, "monitoring_schedule_name": SCHEDULE},
     "Model Monitor does not monitor serverless endpoints (they capture no data); drop monitoring_schedule_name"),
    ({"multi_model": True, "monitoring_schedule_name": SCHEDULE},
     "Model Monitor does not monitor multi-model endpoints; drop monitoring_schedule_name"),
    ({"monitoring_schedule_name": "churn schedule"},
     f"monitoring_schedule_name 'churn schedule' must be {NAME_RULE}"),
    ({"monitoring_schedule_name": SCHEDULE, "drift_features": ["age group"]},
     "drift feature 'age group' must be 1-128 letters, digits, '_', '.' or '-'"),
    ({"monitoring_schedule_name": SCHEDULE, "drift_features": ["age", "age"]},
     "drift_features must be unique; got age, age"),
    ({"monitoring_schedule_name": SCHEDULE, "drift_features": "age"}, "drift_features must be a list, e.g. ['age']"),
    ({"region": "mars-1"}, "region 'mars-1' is not an AWS region (no AWS partition has it), e.g. 'eu-west-1'"),
    ({"alarm_names": "dev-churn-5xx"}, "alarm_names must be a list, e.g. ['dev-churn-5xx']"),
    ({"alarm_names": ["a", "a"]}, "alarm_names must be unique; got a, a"),
    ({"account_id": "1234"}, "account_id '1234' must be 12 digits"),
])
def test_a_model_dashboard_refuses_what_sagemaker_would_not_serve(changes, message):
    assert refusal(lambda: ModelDashboard("dev-churn", context(**changes))) == message


@pytest.mark.parametrize("name", ["dev churn", "dev.churn", "", "d" * 256])
def test_dashboard_names_are_cloudwatchs(name):
    message = f"dashboard name {name!r} must be 1-255 letters, digits, '-' or '_' (CloudWatch's dashboard names)"
    assert refusal(lambda: ModelDashboard(name, context())) == message
    assert refusal(lambda: EnvironmentDashboard(name, environment())) == message


def test_the_longest_dashboard_name_is_accepted():
    assert body(model_plan("d" * 255), f"{'d' * 255}-dashboard")["widgets"]


@pytest.mark.parametrize("changes, message", [
    ({"environment": " "}, "environment: give the environment's name, e.g. 'prod'"),
    ({"models": [context(variant_names=[])]},
     "models[0]: variant_names: give the endpoint's production variants, e.g. ['primary']"),
    ({"models": [context(), "dev-fraud"]}, "models[1] must be a ModelDashboardContext, got str"),
    ({"models": [context(), context(variant_names=["blue"])]},
     "models: one row per endpoint; got dev-churn, dev-churn"),
    ({"region": "moon"}, "region 'moon' is not an AWS region (no AWS partition has it), e.g. 'eu-west-1'"),
    ({"alarm_names": ["a", "a"]}, "alarm_names must be unique; got a, a"),
])
def test_an_environment_dashboard_refuses_with_a_message(changes, message):
    assert refusal(lambda: EnvironmentDashboard("dev-models", environment(**changes))) == message


# -- CloudWatch's limits ----------------------------------------------------------------------------------

def test_an_environment_takes_as_many_models_as_500_widgets_hold():
    most = (MAX_WIDGETS - 1) // 3  # the heading, and three widgets a model
    models = [context(endpoint_name=f"dev-model-{i}") for i in range(most)]
    plan = run_components(lambda: EnvironmentDashboard("dev-models",
                                                       EnvironmentDashboardContext("dev", REGION, models)))
    assert len(body(plan, "dev-models-dashboard")["widgets"]) == 499
    one_more = replace(environment(), models=[*models, context(endpoint_name="dev-model-x")])
    assert refusal(lambda: EnvironmentDashboard("dev-models", one_more)) == (
        "dashboard 'dev-models' would have 502 widgets; CloudWatch allows 500 per dashboard: show fewer models or "
        "alarms on one dashboard")


def test_drift_lines_fill_widgets_of_500_and_a_dashboard_of_2500_metrics():
    # with one variant, a model dashboard graphs 3 + 4 + 3 metrics besides the drift lines
    most = MAX_METRICS - 10
    features = [f"f{i}" for i in range(most)]
    document = body(model_plan(monitoring_schedule_name=SCHEDULE, drift_features=features))
    drift = [w for w in document["widgets"] if w["properties"].get("title", "").startswith("Data drift")]
    assert [(w["properties"]["title"], len(w["properties"]["metrics"]), w["y"]) for w in drift] == [
        (f"Data drift from the baseline ({i}/5)", 500 if i < 5 else 490, 8 + 6 * i) for i in range(1, 6)]
    assert refusal(lambda: ModelDashboard("dev-churn", context(
        monitoring_schedule_name=SCHEDULE, drift_features=[*features, "one-more"]))) == (
        "dashboard 'dev-churn' would graph 2501 metrics; CloudWatch allows 2500 per dashboard: name fewer "
        "drift_features or alarms")


def test_a_widget_holds_at_most_500_metrics():
    with pytest.raises(ValueError) as caught:
        check_limits("dev-churn", [3, 501], 2, "graph less")
    assert str(caught.value) == ("dashboard 'dev-churn' would graph 501 metrics in one widget; CloudWatch allows 500 "
                                 "per widget: graph less")
    check_limits("dev-churn", [500] * 5, MAX_WIDGETS, "graph less")
