"""The `models`, `network` and `registry` sections of the stack config: defaults, exact one-line errors, schema."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest

from emlops.program.config import ConfigError
from emlops.program.platform import json_schema, parse_platform_config

SOURCE = "stacks/Pulumi.dev.yaml"
AT = f"{SOURCE}: emlops:platform"
NETWORK = {"vpc_id": "vpc-0123456789abcdef0",
           "private_subnet_ids": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]}
BASE: dict[str, Any] = {
    "environment": "dev",
    "account_id": "111111111111",
    "region": "eu-west-1",
    "tags": {"owner": "ml-team", "cost-center": "cc-1", "data-classification": "internal"},
    "network": NETWORK,
    "registry": {"mlflow_tracking_uri": "http://127.0.0.1:5000"},
}
TARBALL = "s3://ml-models/churn/model.tar.gz"
IMAGE_URI = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/churn:1.0"
XGBOOST = {"framework": "xgboost", "framework_version": "1.7-1"}
MODEL: dict[str, Any] = {"name": "churn", "source": {"s3_uri": TARBALL}, "image": XGBOOST,
                         "variants": [{"instance_type": "ml.m5.large"}]}
SERVERLESS: dict[str, Any] = {"name": "fraud", "source": {"mlflow": "models:/fraud@champion"},
                              "image": {"uri": IMAGE_URI}, "serverless": {}}
BASELINE = {"statistics_s3_uri": "s3://ml-monitoring/churn/statistics.json",
            "constraints_s3_uri": "s3://ml-monitoring/churn/constraints.json"}
PRODUCTION: dict[str, Any] = {**MODEL, "variants": [{"instance_type": "ml.m5.large", "initial_instance_count": 2}],
                              "autoscaling": {"min_instances": 2, "max_instances": 4},
                              "monitoring": {"baseline": BASELINE},
                              "model_card": {"intended_uses": "Scores churn risk", "risk_rating": "Medium",
                                             "owner": "churn-team@example.com"}}


def platform(*models: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """BASE with `models` and top-level `changes` (a value of None removes the key)."""
    raw = {**copy.deepcopy(BASE), "models": copy.deepcopy(list(models)), **changes}
    return {key: value for key, value in raw.items() if value is not None}


def model(base: dict[str, Any] = MODEL, drop: tuple[str, ...] = (), **changes: Any) -> dict[str, Any]:
    return {**{k: v for k, v in copy.deepcopy(base).items() if k not in drop}, **changes}


def error_of(raw: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_platform_config(raw, SOURCE)
    message = str(caught.value)
    assert "\n" not in message
    return message


# -- what parses, with the documented defaults -------------------------------------------------------

DEFAULT_CAPTURE = {"enabled": None, "sampling_percentage": 100, "csv_content_types": ["text/csv"],
                   "json_content_types": ["application/json"]}
DEFAULT_DEPLOYMENT = {"strategy": "all_at_once", "canary_percent": 10, "linear_step_percent": 25, "wait_minutes": 10,
                      "termination_wait_minutes": 5, "max_execution_timeout_minutes": 60}
DEFAULT_ALARMS = {"model_latency_ms": 1000, "invocation_5xx_errors": 5}
DEFAULT_MONITORING = {"enabled": None, "schedule": None, "instance_type": "ml.m5.xlarge", "instance_count": 1,
                      "volume_size_gb": 20, "max_runtime_minutes": 60, "baseline": None, "drift_features": [],
                      "drift_threshold": 0.1, "model_quality": None, "bias": None,
                      "explainability": None}
DEFAULT_RETRAINING = {"enabled": False, "metric_name": "auc", "metric_threshold": 0.8, "comparison": ">=",
                      "schedule": None, "processing_instance_type": "ml.m5.xlarge",
                      "training_instance_type": "ml.m5.xlarge", "training_instance_count": 1, "training_image": None,
                      "processing_image": None, "prepare_command": ["python3", "/opt/program/prepare.py"],
                      "evaluate_command": ["python3", "/opt/program/evaluate.py"], "volume_size_gb": 30,
                      "max_runtime_hours": 24, "content_types": ["text/csv"],
                      "inference_instance_types": ["ml.m5.large"], "features": None}
DEFAULTS = {"environment": {}, "network_isolation": None, "data_capture": DEFAULT_CAPTURE,
            "deployment": DEFAULT_DEPLOYMENT, "alarms": DEFAULT_ALARMS, "autoscaling": None, "serving": "realtime",
            "async_inference": None, "mode": "single_model", "shadow": None, "container_startup_timeout_seconds": None,
            "model_download_timeout_seconds": None, "volume_size_gb": None, "secret_environment": {},
            "monitoring": DEFAULT_MONITORING, "retraining": DEFAULT_RETRAINING, "model_card": None}
NO_SOURCE = {"mlflow": None, "model_package_group": None, "model_package_arn": None, "s3_uri": None}


def test_minimal_dev_models_parse_with_documented_defaults():
    config = parse_platform_config(platform(MODEL, SERVERLESS), SOURCE)
    assert [m.model_dump() for m in config.models] == [
        {**DEFAULTS, "name": "churn", "source": {**NO_SOURCE, "s3_uri": TARBALL},
         "image": {**XGBOOST, "python_version": None, "base_framework_version": None, "uri": None},
         "variants": [{"name": "primary", "instance_type": "ml.m5.large", "initial_instance_count": 1,
                       "weight": 1.0}],
         "serverless": None},
        {**DEFAULTS, "name": "fraud", "source": {**NO_SOURCE, "mlflow": "models:/fraud@champion"},
         "image": {"framework": None, "framework_version": None, "python_version": None,
                   "base_framework_version": None, "uri": IMAGE_URI},
         "variants": [], "serverless": {"memory_mb": 2048, "max_concurrency": 5}},
    ]
    assert config.network.model_dump() == {"managed": None, **NETWORK, "security_group_ids": [], "vpc_cidr": None}
    assert config.registry.mlflow_tracking_uri == "http://127.0.0.1:5000"


def test_sections_default_to_no_models_no_network_and_no_registry():
    config = parse_platform_config(platform(network=None, registry=None, models=None), SOURCE)
    assert (config.models, config.network, config.registry.mlflow_tracking_uri) == ([], None, None)


def test_autoscaling_and_off_hours_defaults():
    raw = platform(model(autoscaling={"off_hours": {}}))
    autoscaling = parse_platform_config(raw, SOURCE).models[0].autoscaling
    assert autoscaling.model_dump() == {
        "min_instances": 1, "max_instances": 2, "target_invocations_per_instance": 100,
        "scale_in_cooldown_seconds": 300, "scale_out_cooldown_seconds": 60,
        "off_hours": {"scale_down_cron": "cron(0 19 ? * MON-FRI *)", "scale_up_cron": "cron(0 7 ? * MON-FRI *)",
                      "timezone": "UTC", "off_hours_max_instances": 1}}


def test_minimal_production_model_parses_and_may_leave_capture_to_its_default():
    package = {"name": "fraud", "source": {"model_package_group": "fraud"},
               "variants": [{"instance_type": "ml.c5.xlarge", "initial_instance_count": 3}],
               "autoscaling": {"min_instances": 2, "max_instances": 6}, "data_capture": {"enabled": True},
               "monitoring": {"baseline": BASELINE},
               "model_card": {"intended_uses": "Flags fraud", "risk_rating": "High", "owner": "fraud-team"}}
    three_zones = {**NETWORK, "private_subnet_ids": [*NETWORK["private_subnet_ids"], "subnet-0123456789abcdef2"]}
    config = parse_platform_config(platform(PRODUCTION, package, production=True, environment="prod",
                                            network=three_zones, audit={"trail": {}}), SOURCE)
    churn, fraud = config.models
    assert (churn.data_capture.enabled, churn.autoscaling.min_instances, churn.variants[0].initial_instance_count) == (
        None, 2, 2)
    assert (fraud.image, fraud.source.model_package_group, fraud.data_capture.enabled) == (None, "fraud", True)


# -- one exact line per problem -----------------------------------------------------------------------

M0 = f"{AT}.models[0]"
WITHOUT_VARIANTS = model(drop=("variants",), serverless={})


@pytest.mark.parametrize("raw, expected", [
    (platform(model(source={"s3_uri": TARBALL, "mlflow": "models:/churn@champion"})),
     f"{M0}.source: give exactly one of mlflow, model_package_group, model_package_arn, s3_uri (got mlflow, s3_uri)"),
    (platform(model(source={})),
     f"{M0}.source: give exactly one of mlflow, model_package_group, model_package_arn, s3_uri"),
    (platform(model(source={"mlflow": "models:/churn"})),
     f"{M0}.source.mlflow: must be 'models:/<name>@<alias>' or 'models:/<name>/<version>', got 'models:/churn'"),
    (platform(model(source={"s3_uri": "s3://ml-models/churn/model.zip"})),
     f"{M0}.source.s3_uri: must be s3://<bucket>/<key>.tar.gz or an S3 prefix ending in '/', "
     "got 's3://ml-models/churn/model.zip'"),
    (platform(model(source={"model_package_arn": "arn:aws:sagemaker:eu-west-1:1:model-package/fraud"}), ),
     f"{M0}.source.model_package_arn: must be a model package ARN, "
     "arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>, "
     "got 'arn:aws:sagemaker:eu-west-1:1:model-package/fraud'"),
    (platform(model(variants=[{"instance_type": "ml.m5.larg"}])),
     f"{M0}.variants[0].instance_type: 'ml.m5.larg' is not a SageMaker hosting instance type; "
     "did you mean 'ml.m5.large'?"),
    (platform(model(variants=[{"instance_type": "m5"}])),
     f"{M0}.variants[0].instance_type: 'm5' is not a SageMaker hosting instance type "
     "(see ProductionVariantInstanceType in the SageMaker API)"),
    (platform(model(variants=[{"instance_type": "ml.m5.large"}, {"instance_type": "ml.c5.large"}])),
     f"{M0}: variant names must be unique; got primary, primary"),
    (platform(model(image={"framework": "xgboost"})), f"{M0}.image: framework 'xgboost' needs a framework_version"),
    (platform(model(image={**XGBOOST, "uri": IMAGE_URI})),
     f"{M0}.image: give either framework (with framework_version) or uri"),
    (platform(model(image={"uri": "docker.io/library/churn:1.0"})),
     f"{M0}.image.uri: must be an ECR image URI, <account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>, "
     "got 'docker.io/library/churn:1.0'"),
    (platform(model(source={"model_package_group": "fraud"})),
     f"{M0}: a model package names its own image; drop image"),
    (platform(model(drop=("image",))), f"{M0}: image is required unless the source is a model package"),
    (platform(model(serverless={})), f"{M0}: give either variants (provisioned instances) or serverless"),
    (platform(model(drop=("variants",))), f"{M0}: give either variants (provisioned instances) or serverless"),
    (platform(model(WITHOUT_VARIANTS, data_capture={"enabled": True})),
     f"{M0}: serverless endpoints cannot capture data; use variants or disable data_capture"),
    (platform(model(WITHOUT_VARIANTS, autoscaling={})),
     f"{M0}: serverless endpoints scale by themselves; drop autoscaling"),
    (platform(model(WITHOUT_VARIANTS, network_isolation=True)),
     f"{M0}: serverless endpoints do not support network isolation; use variants or drop it"),
    (platform(model(WITHOUT_VARIANTS, serverless={"memory_mb": 1000})),
     f"{M0}.serverless.memory_mb: must be 1024, 2048, 3072, 4096, 5120 or 6144, got 1000"),
    (platform(model(deployment={"canary_percent": 60})),
     f"{M0}.deployment.canary_percent: must be less than or equal to 50, got 60"),
    (platform(model(deployment={"linear_step_percent": 5})),
     f"{M0}.deployment.linear_step_percent: must be greater than or equal to 10, got 5"),
    (platform(model(deployment={"strategy": "blue_green"})),
     f"{M0}.deployment.strategy: must be 'all_at_once', 'canary' or 'linear', got 'blue_green'"),
    (platform(model(autoscaling={"min_instances": 3, "max_instances": 2})),
     f"{M0}.autoscaling: min_instances (3) is larger than max_instances (2); "
     "lower min_instances or raise max_instances"),
    (platform(model(autoscaling={"off_hours": {"scale_down_cron": "0 19 * * 1-5"}})),
     f"{M0}.autoscaling.off_hours.scale_down_cron: '0 19 * * 1-5' must be a cron expression of six fields, "
     "'cron(<minutes> <hours> <day-of-month> <month> <day-of-week> <year>)', e.g. 'cron(0 3 ? * MON *)'"),
    (platform(model(name="Churn_1")),
     f"{M0}.name: must be lowercase letters and digits, single '-' between, got 'Churn_1'"),
    (platform(MODEL, model(SERVERLESS, name="churn")),
     f"{AT}.models[1].name: model name 'churn' is used twice; names must be unique"),
    (platform(model(name="a" * 32), environment="abcdefghijklmnop"),
     f"{M0}.name: {'a' * 32!r} makes the endpoint config name 'abcdefghijklmnop-{'a' * 32}-config-1a2b3c4' 64 "
     "characters (with Pulumi's auto-name suffix); AWS allows 63 (at most 31 characters here)"),
    (platform(SERVERLESS, registry=None),
     f"{M0}.source.mlflow: needs registry.mlflow_tracking_uri to resolve the reference"),
    (platform(MODEL, network=None),
     f"{M0}: runs on instances in private subnets; add network.managed (or network.vpc_id and "
     "network.private_subnet_ids), or use serverless"),
    (platform(MODEL, network={**NETWORK, "vpc_id": "vpc-123"}),
     f"{AT}.network.vpc_id: must be a VPC id like 'vpc-0123456789abcdef0', got 'vpc-123'"),
    (platform(MODEL, network={**NETWORK, "private_subnet_ids": ["subnet-0123456789abcdef0", "subnet-xyz"]}),
     f"{AT}.network.private_subnet_ids: 'subnet-xyz' is not a subnet id like 'subnet-0123456789abcdef0'"),
    (platform(MODEL, network={**NETWORK, "private_subnet_ids": ["subnet-0123456789abcdef0"]}),
     f"{AT}.network.private_subnet_ids: must have at least 2 item(s), got ['subnet-0123456789abcdef0']"),
    (platform(MODEL, network={**NETWORK, "private_subnet_ids": ["subnet-0123456789abcdef0"] * 2}),
     f"{AT}.network.private_subnet_ids: subnet ids must be unique"),
    (platform(model(instance_type="ml.m5.large")),
     f"{M0}.instance_type: unknown key; allowed keys: name, source, image, environment, variants, serverless, "
     "network_isolation, data_capture, deployment, alarms, autoscaling, serving, async_inference, mode, shadow, "
     "container_startup_timeout_seconds, model_download_timeout_seconds, volume_size_gb, secret_environment, "
     "monitoring, retraining, model_card"),
    (platform(model(variant=[{"instance_type": "ml.m5.large"}])),
     f"{M0}.variant: unknown key; did you mean 'variants'? allowed keys: name, source, image, environment, "
     "variants, serverless, network_isolation, data_capture, deployment, alarms, autoscaling, serving, "
     "async_inference, mode, shadow, container_startup_timeout_seconds, model_download_timeout_seconds, "
     "volume_size_gb, secret_environment, "
     "monitoring, retraining, model_card"),
    (platform(model(autoscaling={"min_instance": 2})),
     f"{M0}.autoscaling.min_instance: unknown key; did you mean 'min_instances'? allowed keys: min_instances, "
     "max_instances, target_invocations_per_instance, scale_in_cooldown_seconds, scale_out_cooldown_seconds, "
     "off_hours"),
])
def test_invalid_models_fail_with_one_exact_line(raw, expected):
    assert error_of(raw) == expected


def test_the_longest_model_name_an_environment_allows_parses():
    # the endpoint's execution role, `<environment>-<model>-execution-role-<7 hex>`, is the longest name an
    # unmonitored model derives: IAM allows 64 characters, so 24 are left beside a 16-character environment
    unmonitored = {"data_capture": {"enabled": False}}
    raw = platform(model(name="a" * 24, **unmonitored), environment="abcdefghijklmnop")
    assert parse_platform_config(raw, SOURCE).models[0].name == "a" * 24
    with pytest.raises(ConfigError, match=r"models\[0\]\.name: 'a{25}' makes the IAM role name "
                       r"'abcdefghijklmnop-a{25}-execution-role-1a2b3c4' 65 characters \(with Pulumi's auto-name "
                       r"suffix\); AWS allows 64 \(at most 24 characters here\)$"):
        parse_platform_config(platform(model(name="a" * 25, **unmonitored), environment="abcdefghijklmnop"), SOURCE)


PRODUCTION_PLATFORM = {"production": True, "environment": "prod"}
PROD_AT = f"{AT}.models[0]"


@pytest.mark.parametrize("raw_model, expected", [
    (model(WITHOUT_VARIANTS), f"{PROD_AT}.serverless: production endpoints run on at least 2 instances; use variants"),
    (model(PRODUCTION, variants=[{"instance_type": "ml.m5.large"}]),
     f"{PROD_AT}.variants[0].initial_instance_count: production endpoints need at least 2 instances per variant, "
     "got 1"),
    (model(PRODUCTION, drop=("autoscaling",)),
     f"{PROD_AT}.autoscaling: production endpoints need autoscaling (min_instances >= 2)"),
    (model(PRODUCTION, autoscaling={"min_instances": 1, "max_instances": 4}),
     f"{PROD_AT}.autoscaling.min_instances: production endpoints keep at least 2 instances, got 1"),
    (model(PRODUCTION, autoscaling={"min_instances": 2, "max_instances": 4, "off_hours": {}}),
     f"{PROD_AT}.autoscaling.off_hours: production endpoints are not scaled down off hours"),
    (model(PRODUCTION, data_capture={"enabled": False}),
     f"{PROD_AT}.data_capture.enabled: production endpoints capture data for monitoring"),
])
def test_production_models_fail_with_one_exact_line(raw_model, expected):
    assert error_of(platform(raw_model, **PRODUCTION_PLATFORM)) == expected


def test_the_same_model_is_fine_outside_production():
    for raw_model in (model(WITHOUT_VARIANTS), model(PRODUCTION, data_capture={"enabled": False},
                                                     autoscaling={"min_instances": 1, "off_hours": {}})):
        assert parse_platform_config(platform(raw_model), SOURCE).models[0].name == "churn"


def test_off_hours_timezone_must_be_an_iana_zone():
    assert error_of(platform(model(autoscaling={"off_hours": {"timezone": "Europe/Dubln"}}))) == (
        f"{AT}.models[0].autoscaling.off_hours.timezone: 'Europe/Dubln' is not an IANA time zone "
        "(e.g. 'Europe/Berlin'); did you mean 'Europe/Dublin'?")


def test_off_hours_cannot_raise_the_ceiling():
    assert error_of(platform(model(autoscaling={"max_instances": 2, "off_hours": {"off_hours_max_instances": 3}}))) == (
        f"{AT}.models[0].autoscaling: off_hours.off_hours_max_instances (3) is larger than max_instances (2); "
        "off hours scale down, never up")


# -- the JSON Schema ----------------------------------------------------------------------------------

def test_json_schema_accepts_a_models_section_and_rejects_unknown_model_keys():
    validator = jsonschema.Draft202012Validator(json_schema())
    full = model(PRODUCTION, environment={"MODEL_SERVER_WORKERS": "2"}, network_isolation=True,
                 data_capture={"enabled": True, "sampling_percentage": 20},
                 deployment={"strategy": "canary", "canary_percent": 20, "wait_minutes": 15},
                 alarms={"model_latency_ms": 300, "invocation_5xx_errors": 3},
                 autoscaling={"min_instances": 2, "max_instances": 8, "off_hours": {"timezone": "Europe/Dublin"}})
    assert list(validator.iter_errors(platform(full, SERVERLESS))) == []
    errors = list(validator.iter_errors(platform(model(instance_type="ml.m5.large"))))
    assert [(list(e.absolute_path), e.message) for e in errors] == [
        (["models", 0], "Additional properties are not allowed ('instance_type' was unexpected)")]
    assert not validator.is_valid(platform(model(serverless={"memory_mb": 1000}, drop=("variants",))))
    assert not validator.is_valid(platform(model(source={"s3_uri": "s3://ml-models/churn/model.zip"})))
