"""Model-quality job definitions: a Pulumi dynamic resource over boto3, and the model-quality rules.

pulumi_aws has SageMaker's data-quality job definition and monitoring schedule, but no model-quality
job definition, so `ModelQualityJobDefinition` calls SageMaker itself (`CreateModelQualityJobDefinition`).
SageMaker cannot update a job definition: every change replaces it, creating the new one (under a new
name: the name prefix plus a random suffix) before deleting the old, so the schedule that names it
moves over without a gap. The provider checks the request against botocore's service model (types,
required members, enums, patterns, bounds) before any call, and refuses credentials of another
account than the stack's.

Dynamic providers are pickled (dill) into the stack's state and unpickled by Pulumi's provider host:
the provider holds no state and is pickled by reference to this importable module, which imports
neither boto3 nor pulumi_aws until a method runs.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional

import pulumi
import pulumi.dynamic

if TYPE_CHECKING:
    from emlops.components.monitoring import ModelMonitorArgs

__all__ = ["ModelQualityJobDefinition", "ModelQualityJobDefinitionProvider", "QUALITY_METRICS",
           "check_model_quality", "default_metric", "metric_alarm_direction", "monitor_quality_job"]

RESOURCE_TYPE = "pulumi-python:dynamic/sagemaker:ModelQualityJobDefinition"
NAME, PREFIX = "jobDefinitionName", "namePrefix"
_OUTPUTS = frozenset({"__provider", "arn", "name"})
_MAX_NAME, _SUFFIX = 63, 7
_PROBLEM_TYPES = ("BinaryClassification", "MulticlassClassification", "Regression")

# -- what the analyzer publishes --------------------------------------------------------------------

HIGHER_IS_BETTER, LOWER_IS_BETTER = "higher", "lower"
# Metrics the Model Monitor analyzer publishes per problem type (namespace
# aws/sagemaker/Endpoints/model-metrics, dimensions Endpoint and MonitoringSchedule), and which way is good.
QUALITY_METRICS: dict[str, dict[str, str]] = {
    "BinaryClassification": {
        **dict.fromkeys(("auc", "f1", "f0_5", "f2", "accuracy", "precision", "recall", "true_positive_rate",
                         "true_negative_rate"), HIGHER_IS_BETTER),
        **dict.fromkeys(("false_positive_rate", "false_negative_rate"), LOWER_IS_BETTER)},
    "MulticlassClassification": dict.fromkeys(
        ("accuracy", "weighted_f1", "weighted_f0_5", "weighted_f2", "weighted_precision", "weighted_recall"),
        HIGHER_IS_BETTER),
    "Regression": {"rmse": LOWER_IS_BETTER, "mae": LOWER_IS_BETTER, "mse": LOWER_IS_BETTER, "r2": HIGHER_IS_BETTER},
}
_DEFAULT_METRIC = {"BinaryClassification": "auc", "MulticlassClassification": "accuracy", "Regression": "rmse"}
_UNBOUNDED = {"rmse", "mae", "mse", "r2"}
ARG_LABELS = {"probability_threshold": "probability_threshold_attribute", "metric": "model_quality_metric",
              "threshold": "model_quality_threshold"}


def problem_types() -> tuple[str, ...]:
    """SageMaker's problem types (botocore's `MonitoringProblemType`)."""
    from emlops.components.aws_catalog import api_enum

    return api_enum("sagemaker", "MonitoringProblemType")


def default_metric(problem_type: str) -> str:
    return _DEFAULT_METRIC[problem_type]


def metric_alarm_direction(problem_type: str, metric: str) -> str:
    """`higher` if a higher value is better (alarm below the threshold), `lower` otherwise."""
    return QUALITY_METRICS[problem_type][metric]


def check_model_quality(problem_type: str, inference_attribute: Optional[str], probability_attribute: Optional[str],
                        probability_threshold: Optional[float], metric: Optional[str], threshold: Optional[float],
                        labels: Mapping[str, str] = ARG_LABELS) -> str:
    """The alarm's metric (given or the problem type's default); ValueError in one line if SageMaker or the
    analyzer would not accept the combination. `labels` names the probability threshold, metric and
    threshold as the caller calls them."""
    if problem_type not in problem_types():
        raise ValueError(f"problem_type {problem_type!r} must be one of {', '.join(problem_types())} "
                         "(SageMaker's MonitoringProblemType)")
    p_threshold = labels["probability_threshold"]
    if problem_type == "BinaryClassification":
        if not probability_attribute or probability_threshold is None:
            raise ValueError(f"BinaryClassification needs probability_attribute and {p_threshold} (where the "
                             "captured response holds the probability, and the probability from which it is positive)")
    else:
        if not inference_attribute:
            raise ValueError(f"{problem_type} needs inference_attribute (where the captured response holds the "
                             "prediction)")
        if probability_threshold is not None:
            raise ValueError(f"{p_threshold} applies only to BinaryClassification; drop it for {problem_type}")
        if problem_type == "Regression" and probability_attribute:
            raise ValueError("probability_attribute applies only to classification; drop it for Regression")
    if probability_threshold is not None and not 0 < probability_threshold < 1:
        raise ValueError(f"{p_threshold} ({probability_threshold}) must be between 0 and 1, exclusive")
    metric = metric or _DEFAULT_METRIC[problem_type]
    allowed = QUALITY_METRICS[problem_type]
    if metric not in allowed:
        raise ValueError(f"{labels['metric']} {metric!r} is not published for {problem_type}; use one of "
                         f"{', '.join(allowed)}")
    label = labels["threshold"]
    if threshold is None:
        raise ValueError(f"{label} is required: the alarm fires when {metric} goes "
                         f"{'below' if allowed[metric] == HIGHER_IS_BETTER else 'above'} it")
    if metric == "r2" and threshold >= 1:
        raise ValueError(f"{label} ({threshold}) must be below 1 for r2")
    if metric in _UNBOUNDED - {"r2"} and threshold <= 0:
        raise ValueError(f"{label} ({threshold}) must be above 0 for {metric}")
    if metric not in _UNBOUNDED and not 0 < threshold < 1:
        raise ValueError(f"{label} ({threshold}) must be between 0 and 1, exclusive, for {metric}")
    return metric


# -- the request ------------------------------------------------------------------------------------

def create_request(inputs: Mapping[str, Any]) -> dict:
    """The `CreateModelQualityJobDefinition` request (API member names) of the resource's inputs."""
    from emlops.aws_requests import to_api_request

    return to_api_request(RESOURCE_TYPE, dict(inputs)).params


def request_problems(inputs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every problem of the request as (input property, one-line reason); [] if SageMaker would accept it."""
    from emlops.aws_requests import to_api_request, validate_request

    problems = []
    for line in validate_request(to_api_request(RESOURCE_TYPE, dict(inputs))):
        reason = line.split(": ", 1)[1]
        member = reason.split(":", 1)[0].split(".", 1)[0].split("[", 1)[0]
        prop = next((key for key in inputs if key.lower() == member.lower()), member)
        problems.append((prop, reason))
    return problems


def unique_name(prefix: str) -> str:
    """`<prefix>-<7 random hex>`, the prefix cut so the name fits SageMaker's 63 characters."""
    return f"{prefix[:_MAX_NAME - _SUFFIX - 1]}-{secrets.token_hex(4)[:_SUFFIX]}"


def _known(value: Any) -> Any:
    """Pulumi's unknown sentinel (a value not known during a preview) as the validator's placeholder."""
    from pulumi.runtime import rpc

    if isinstance(value, dict):
        return {k: _known(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_known(v) for v in value]
    return "[unknown]" if value == rpc.UNKNOWN else value


# -- the provider -----------------------------------------------------------------------------------

class ModelQualityJobDefinitionProvider(pulumi.dynamic.ResourceProvider):
    """Creates, reads and deletes SageMaker model-quality job definitions with boto3."""

    # nothing secret is captured: keep the pickled provider readable in the state
    serialize_as_secret_always = False

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.CheckResult:
        olds, inputs = _olds or {}, dict(news)
        if not inputs.get(NAME):
            # Keep the name while nothing replaces the definition; on a replacement the engine checks again
            # without the old inputs, and the new definition gets a new name.
            same_prefix = olds.get(NAME) and olds.get(PREFIX) == inputs.get(PREFIX)
            inputs[NAME] = olds[NAME] if same_prefix else unique_name(inputs.get(PREFIX) or "model-quality")
        failures = [pulumi.dynamic.CheckFailure(prop, reason) for prop, reason in request_problems(_known(inputs))]
        for key in ("region", "accountId"):
            if not inputs.get(key):
                failures.append(pulumi.dynamic.CheckFailure(key, f"{key} is required: the provider calls "
                                                                 "SageMaker in the stack's account and region"))
        return pulumi.dynamic.CheckResult(inputs, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        changed = sorted(k for k in (set(olds) | set(news)) - _OUTPUTS if olds.get(k) != news.get(k))
        return pulumi.dynamic.DiffResult(
            changes=bool(changed), replaces=[k for k in changed if k != "assumeRoleArn"], stables=[],
            delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        response = _sagemaker(props).create_model_quality_job_definition(**create_request(props))
        return pulumi.dynamic.CreateResult(props[NAME], {**props, "arn": response["JobDefinitionArn"],
                                                         "name": props[NAME]})

    def read(self, id_: str, props: dict[str, Any]) -> pulumi.dynamic.ReadResult:
        client = _sagemaker(props)
        try:
            found = client.describe_model_quality_job_definition(JobDefinitionName=id_)
        except client.exceptions.ResourceNotFound:
            return pulumi.dynamic.ReadResult(None, {})  # deleted outside Pulumi
        # a definition cannot change after creation: what exists is what was created
        return pulumi.dynamic.ReadResult(id_, {**props, NAME: found["JobDefinitionName"],
                                               "arn": found["JobDefinitionArn"], "name": found["JobDefinitionName"]})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.UpdateResult:
        # only assumeRoleArn updates in place (diff replaces on everything else): nothing to call
        return pulumi.dynamic.UpdateResult({**news, "arn": olds["arn"], "name": olds["name"]})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        client = _sagemaker(props)
        try:
            client.delete_model_quality_job_definition(JobDefinitionName=id_)
        except client.exceptions.ResourceNotFound:
            pass  # already gone


def _sagemaker(props: Mapping[str, Any]):
    """A SageMaker client in the inputs' region, as the inputs' role if any, refusing another account."""
    import boto3

    region, account, role = props["region"], props["accountId"], props.get("assumeRoleArn")
    session = boto3.session.Session(region_name=region)
    if role:
        credentials = session.client("sts").assume_role(RoleArn=role, RoleSessionName="emlops-model-quality")
        credentials = credentials["Credentials"]
        session = boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"], region_name=region)
    actual = session.client("sts").get_caller_identity()["Account"]
    if actual != account:
        raise RuntimeError(f"the credentials are for account {actual}, not the stack's account {account}; "
                           "use the stack's credentials or set assumeRoleArn to a role in that account")
    return session.client("sagemaker")


# -- the resource -----------------------------------------------------------------------------------

def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _camel_keys(value: Any) -> Any:
    """snake_case keys of nested blocks as Pulumi's camelCase; an `environment` map keeps its keys."""
    if isinstance(value, Mapping):
        return {_camel(k): v if k == "environment" else _camel_keys(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_camel_keys(v) for v in value]
    return value


class ModelQualityJobDefinition(pulumi.dynamic.Resource, module="sagemaker", name="ModelQualityJobDefinition"):
    """A SageMaker model-quality job definition (created by `ModelQualityJobDefinitionProvider`).

    Blocks are plain dicts with snake_case keys of the API's members, as pulumi_aws's
    `DataQualityJobDefinition` takes them (values may be Outputs); `monitoring_outputs` is a list.
    """

    arn: pulumi.Output[str]
    name: pulumi.Output[str]

    def __init__(self, resource_name: str, *, region: pulumi.Input[str], account_id: pulumi.Input[str],
                 model_quality_app_specification: Mapping[str, Any], model_quality_job_input: Mapping[str, Any],
                 model_quality_job_output_config: Mapping[str, Any], job_resources: Mapping[str, Any],
                 role_arn: pulumi.Input[str], model_quality_baseline_config: Optional[Mapping[str, Any]] = None,
                 network_config: Optional[Mapping[str, Any]] = None,
                 stopping_condition: Optional[Mapping[str, Any]] = None, tags: Optional[Mapping[str, str]] = None,
                 name_prefix: Optional[str] = None, assume_role_arn: Optional[pulumi.Input[str]] = None,
                 opts: Optional[pulumi.ResourceOptions] = None):
        blocks = dict(
            model_quality_app_specification=model_quality_app_specification,
            model_quality_baseline_config=model_quality_baseline_config,
            model_quality_job_input=model_quality_job_input,
            model_quality_job_output_config=model_quality_job_output_config,
            job_resources=job_resources, network_config=network_config, stopping_condition=stopping_condition)
        props = {_camel(k): _camel_keys(v) for k, v in blocks.items() if v is not None}
        props.update({PREFIX: name_prefix or resource_name, "region": region, "accountId": account_id,
                      "roleArn": role_arn, "arn": None, "name": None})
        if assume_role_arn is not None:
            props["assumeRoleArn"] = assume_role_arn
        if tags:
            props["tags"] = dict(tags)
        super().__init__(ModelQualityJobDefinitionProvider(), resource_name, props, opts)


def monitor_quality_job(resource_name: str, args: "ModelMonitorArgs", *, endpoint_input: Mapping[str, Any],
                        image_uri: pulumi.Input[str], output_key: pulumi.Input[str], reports_s3_uri: pulumi.Input[str],
                        **shared: Any) -> ModelQualityJobDefinition:
    """A ModelMonitor's model-quality job definition: the analyzer merges the endpoint's captured predictions
    with the ground truth, publishes the problem type's metrics and checks the baseline's constraints (if any).
    `shared` are the arguments it shares with the data-quality definition (resources, network, role, ...)."""
    attributes = {key: getattr(args, key) for key in ("inference_attribute", "probability_attribute",
                                                      "probability_threshold_attribute")
                  if getattr(args, key) is not None}
    constraints = args.model_quality_baseline_constraints_s3_uri
    return ModelQualityJobDefinition(
        resource_name,
        assume_role_arn=args.assume_role_arn,
        model_quality_app_specification={"image_uri": image_uri, "problem_type": args.problem_type,
                                         "environment": {"publish_cloudwatch_metrics": "Enabled"}},
        model_quality_baseline_config={"constraints_resource": {"s3_uri": constraints}} if constraints else None,
        model_quality_job_input={"endpoint_input": {**endpoint_input, **attributes},
                                 "ground_truth_s3_input": {"s3_uri": args.ground_truth_s3_uri}},
        model_quality_job_output_config={"kms_key_id": output_key, "monitoring_outputs": [{"s3_output": {
            "s3_uri": reports_s3_uri, "local_path": "/opt/ml/processing/output", "s3_upload_mode": "EndOfJob"}}]},
        **shared,
    )
