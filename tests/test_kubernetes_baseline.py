"""KubernetesBaseline: settings and context checks, every child and its inputs, and the plan's Kubernetes schema
check."""

from __future__ import annotations

import copy
import dataclasses
from decimal import Decimal
from typing import Any, Callable, Optional

import pulumi
import pulumi_kubernetes as k8s
import pytest
from kubernetes_validate.utils import all_versions, major_minor
from pydantic import BaseModel, ValidationError

from emlops.components.kubernetes_args import parse_quantity
from emlops.components.kubernetes_baseline import BaselineContext, BaselineSettings, KubernetesBaseline, TeamSettings
from emlops.catalog.kubernetes import supported_kubernetes_versions, validate_plan_objects
from emlops.offline.plan import Plan, PlanResource
from tests.conftest import run_components

STACK = "urn:pulumi:test::emlops::pulumi:pulumi:Stack::emlops-test"
COMPONENT = "emlops:index:KubernetesBaseline"
COMPONENT_URN = f"urn:pulumi:test::emlops::{COMPONENT}::train"
PROVIDER_URN = "urn:pulumi:test::emlops::pulumi:providers:kubernetes::k8s"
NAMESPACE, QUOTA = "kubernetes:core/v1:Namespace", "kubernetes:core/v1:ResourceQuota"
LIMITS = "kubernetes:core/v1:LimitRange"
PRIORITY, DAEMONSET = "kubernetes:scheduling.k8s.io/v1:PriorityClass", "kubernetes:apps/v1:DaemonSet"
VISION = {"name": "vision", "gpus": 8, "cpu": "64", "memory": "256Gi"}
NLP = {"name": "nlp", "gpus": 0, "cpu": "16", "memory": "64Gi", "pod_security": "baseline"}
TEAMS = [VISION, NLP]
SUPPORTED = ", ".join(supported_kubernetes_versions())
ALL_PSA = ("enforce", "warn", "audit")


def settings(**changes: Any) -> BaselineSettings:
    """A stack file's tenancy keys (`training.eks`) with two teams, validated like one."""
    return BaselineSettings.model_validate({"teams": TEAMS, **changes})


def context(**changes: Any) -> BaselineContext:
    return BaselineContext(**{"kubernetes_version": "1.33", **changes})


def error_of(factory: Callable[[], Any]) -> str:
    with pytest.raises(ValueError) as caught:
        factory()
    assert not isinstance(caught.value, ValidationError)
    return str(caught.value)


def settings_error(model: type[BaseModel], data: dict[str, Any]) -> tuple[tuple, str]:
    """The one error (where, what) validating `data` as `model` raises."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    errors = caught.value.errors()
    assert len(errors) == 1
    return errors[0]["loc"], errors[0]["msg"].removeprefix("Value error, ")


def baseline_plan(section: Optional[BaselineSettings] = None, given: Optional[BaselineContext] = None) -> Plan:
    def program() -> None:
        provider = k8s.Provider("k8s", kubeconfig="{}")
        baseline = KubernetesBaseline("train", section or settings(), given or context(),
                                      opts=pulumi.ResourceOptions(providers=[provider]))
        pulumi.export("namespaces", baseline.namespace_names)
        pulumi.export("training", baseline.training_priority_class_name)
        pulumi.export("inference", baseline.inference_priority_class_name)
    return run_components(program)


@pytest.fixture(scope="module")
def plan() -> Plan:
    return baseline_plan()


def psa_labels(enforce: str) -> dict[str, str]:
    labels = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ALL_PSA}
    labels["pod-security.kubernetes.io/enforce"] = enforce
    return {**labels, **{f"pod-security.kubernetes.io/{mode}-version": "v1.33" for mode in ALL_PSA}}


# -- settings and context ---------------------------------------------------------------------------

NAME_PATTERN = "must be at most 58 lowercase letters, digits and '-', starting and ending with a letter or digit"
QUANTITY = "is not a positive Kubernetes quantity like '64', '500m' or '256Gi'"


@pytest.mark.parametrize("changes, loc, message", [
    ({"name": "Vision"}, ("name",), NAME_PATTERN),
    ({"name": "ml_ops"}, ("name",), NAME_PATTERN),
    ({"name": "-vision"}, ("name",), NAME_PATTERN),
    ({"name": ""}, ("name",), NAME_PATTERN),
    ({"name": "a" * 59}, ("name",), "String should have at most 58 characters"),
    ({"gpus": -1}, ("gpus",), "Input should be greater than or equal to 0"),
    ({"gpus": 1025}, ("gpus",), "Input should be less than or equal to 1024"),
    ({"gpus": 1.5}, ("gpus",), "must be a whole number"),
    ({"cpu": "64 cores"}, ("cpu",), f"'64 cores' {QUANTITY}"),
    ({"cpu": "-4"}, ("cpu",), f"'-4' {QUANTITY}"),
    ({"cpu": "0"}, ("cpu",), f"'0' {QUANTITY}"),
    ({"memory": "256GB"}, ("memory",), f"'256GB' {QUANTITY}"),
    ({"memory": "Gi"}, ("memory",), f"'Gi' {QUANTITY}"),
    ({"pod_security": "privileged"}, ("pod_security",), "Input should be 'restricted' or 'baseline'"),
    ({"namespace": "ml"}, ("namespace",), "Extra inputs are not permitted"),
])
def test_team_settings_reject_with_a_message(changes, loc, message):
    assert settings_error(TeamSettings, {**VISION, **changes}) == (loc, message)


def test_team_settings_accept_the_longest_name_zero_gpus_and_numbers_as_quantities():
    team = TeamSettings.model_validate({"name": "a" * 58, "gpus": 0, "cpu": 64, "memory": " 1e9 "})
    assert (team.namespace, team.cpu, team.memory) == ("team-" + "a" * 58, "64", "1e9")
    assert TeamSettings.model_validate({**VISION, "cpu": "1.5"}).pod_security == "restricted"


UNPINNED = "must be pinned to a version tag (not 'latest') or a digest, e.g. 'nvcr.io/nvidia/k8s-device-plugin:v0.17.0'"
SETTINGS_QUANTITY = "must be a positive Kubernetes quantity, e.g. '64', '500m', '256Gi'"


@pytest.mark.parametrize("changes, loc, message", [
    ({"teams": [VISION, NLP, VISION, NLP]}, ("teams",), "team names must be unique; repeated: nlp, vision"),
    ({"teams": [{**VISION, "gpus": -1}]}, ("teams", 0, "gpus"), "Input should be greater than or equal to 0"),
    ({"device_plugin_image": "nvcr.io/nvidia/k8s-device-plugin"}, ("device_plugin_image",),
     f"'nvcr.io/nvidia/k8s-device-plugin' {UNPINNED}"),
    ({"device_plugin_image": "nvcr.io/nvidia/k8s-device-plugin:latest"}, ("device_plugin_image",),
     f"'nvcr.io/nvidia/k8s-device-plugin:latest' {UNPINNED}"),
    ({"device_plugin_image": "registry:5000/k8s-device-plugin"}, ("device_plugin_image",),
     f"'registry:5000/k8s-device-plugin' {UNPINNED}"),
    ({"install_device_plugin": "sometimes"}, ("install_device_plugin",), "must be true or false"),
    ({"default_cpu_request": "half"}, (), f"default_cpu_request 'half' {SETTINGS_QUANTITY}"),
    ({"default_memory_limit": "0Gi"}, (), f"default_memory_limit '0Gi' {SETTINGS_QUANTITY}"),
    ({"default_cpu_request": "5"}, (),
     "default_cpu_request (5) is larger than default_cpu_limit (4); lower the request or raise the limit"),
    ({"default_memory_request": "9Gi"}, (),
     "default_memory_request (9Gi) is larger than default_memory_limit (8Gi); lower the request or raise the limit"),
    ({"teams": [{"name": "tiny", "gpus": 0, "cpu": "250m", "memory": "64Gi"}]}, (),
     "team 'tiny': cpu (250m) is smaller than default_cpu_request (500m); raise cpu or lower default_cpu_request"),
    ({"teams": [{"name": "tiny", "gpus": 0, "cpu": "4", "memory": "4Gi"}]}, (),
     "team 'tiny': memory (4Gi) is smaller than default_memory_limit (8Gi); raise memory or lower "
     "default_memory_limit"),
    ({"kubernetes_version": "1.33"}, ("kubernetes_version",), "Extra inputs are not permitted"),
])
def test_settings_reject_with_a_message(changes, loc, message):
    assert settings_error(BaselineSettings, {"teams": TEAMS, **changes}) == (loc, message)


LABEL_KEY_RULE = "must be a Kubernetes label key, [<DNS subdomain>/]<name of at most 63 characters>"


@pytest.mark.parametrize("changes, message", [
    ({"kubernetes_version": "1.20"}, f"kubernetes_version '1.20' is not supported; supported: {SUPPORTED}"),
    ({"kubernetes_version": "v1.33"}, f"kubernetes_version 'v1.33' is not supported; supported: {SUPPORTED}"),
    ({"kubernetes_version": "1.33.1"}, f"kubernetes_version '1.33.1' is not supported; supported: {SUPPORTED}"),
    ({"gpu_node_taint_key": "nvidia.com/gpu/x"}, f"gpu_node_taint_key 'nvidia.com/gpu/x' {LABEL_KEY_RULE}"),
    ({"gpu_node_taint_key": "Nvidia.com/gpu"}, f"gpu_node_taint_key 'Nvidia.com/gpu' {LABEL_KEY_RULE}"),
    ({"gpu_node_label": ("a", "b", "c")}, "gpu_node_label ('a', 'b', 'c') must be a (key, value) pair"),
    ({"gpu_node_label": ["pool", "gpu"]}, "gpu_node_label ['pool', 'gpu'] must be a (key, value) pair"),
    ({"gpu_node_label": ("pool/", "gpu")}, f"gpu_node_label key 'pool/' {LABEL_KEY_RULE}"),
    ({"gpu_node_label": ("pool", "gpu nodes")},
     "gpu_node_label value 'gpu nodes' must be a Kubernetes label value: at most 63 letters, digits, '-', '_' "
     "or '.', starting and ending with a letter or digit"),
])
def test_context_is_checked_before_anything_is_created(changes, message):
    assert error_of(lambda: context(**changes).check()) == message
    # the component checks it first (outside the mocks: nothing may be registered)
    assert error_of(lambda: KubernetesBaseline("train", settings(), context(**changes))) == message


def test_settings_accept_pinned_images_and_the_context_every_supported_version():
    for image in ("registry:5000/nvidia/k8s-device-plugin:v0.17.0",
                  "nvcr.io/nvidia/k8s-device-plugin@sha256:" + "a" * 64):
        assert settings(device_plugin_image=image).device_plugin_image == image
    for version in supported_kubernetes_versions():
        assert context(kubernetes_version=version).check() is None


def test_settings_defaults():
    defaults = BaselineSettings()
    assert (defaults.teams, defaults.install_device_plugin, defaults.device_plugin_image) == (
        [], True, "nvcr.io/nvidia/k8s-device-plugin:v0.17.0")
    assert (defaults.default_cpu_request, defaults.default_cpu_limit, defaults.default_memory_request,
            defaults.default_memory_limit) == ("500m", "4", "1Gi", "8Gi")
    assert context() == BaselineContext("1.33", "nvidia.com/gpu", ("emlops.dev/node-pool", "gpu"), protect=False)


def test_supported_versions_are_the_schemas_kubernetes_validate_ships():
    assert supported_kubernetes_versions() == tuple(dict.fromkeys(major_minor(v) for v in all_versions()))
    assert "1.33" in supported_kubernetes_versions()


@pytest.mark.parametrize("quantity, value", [
    ("64", Decimal(64)), ("500m", Decimal("0.5")), ("1.5", Decimal("1.5")), (".5", Decimal("0.5")),
    ("256Gi", Decimal(256 * 2**30)), ("1Ki", Decimal(1024)), ("2k", Decimal(2000)), ("1e3", Decimal(1000)),
    ("1E-3", Decimal("0.001")), ("100n", Decimal("0.0000001")), ("+3M", Decimal(3_000_000)),
    ("1GB", None), ("1 Gi", None), ("", None), ("1.2.3", None), ("e3", None), ("1ki", None),
])
def test_parse_quantity_follows_the_kubernetes_grammar(quantity, value):
    assert parse_quantity(quantity) == value


# -- children ---------------------------------------------------------------------------------------

def test_children_are_exact_and_use_the_callers_provider(plan):
    component = plan.get("train", COMPONENT)
    assert component.urn == COMPONENT_URN and component.parent == STACK
    children = plan.children(COMPONENT_URN)
    assert [(r.type, r.name) for r in children] == [
        (NAMESPACE, "train-vision-namespace"), (QUOTA, "train-vision-quota"), (LIMITS, "train-vision-limits"),
        (NAMESPACE, "train-nlp-namespace"), (QUOTA, "train-nlp-quota"), (LIMITS, "train-nlp-limits"),
        (PRIORITY, "train-training-priority"), (PRIORITY, "train-inference-priority"),
        (DAEMONSET, "train-device-plugin"),
    ]
    assert all(r.provider == PROVIDER_URN for r in children)
    assert all(not r.protect and not r.retain_on_delete for r in children)
    assert plan.type_counts() == {"pulumi:pulumi:Stack": 1, "pulumi:providers:kubernetes": 1, COMPONENT: 1,
                                  NAMESPACE: 2, QUOTA: 2, LIMITS: 2, PRIORITY: 2, DAEMONSET: 1}
    # quota and defaults are created in their namespace, after it
    namespace_urn = plan.get("train-vision-namespace").urn
    assert plan.get("train-vision-quota").dependencies == [namespace_urn]
    assert plan.get("train-vision-limits").dependencies == [namespace_urn]


def test_outputs_name_the_namespaces_and_priority_classes(plan):
    assert plan.outputs == {"namespaces": {"vision": "team-vision", "nlp": "team-nlp"},
                            "training": "emlops-training", "inference": "emlops-inference"}


def test_namespaces_carry_the_team_and_pod_security_labels(plan):
    assert plan.get("train-vision-namespace").inputs == {
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "team-vision", "labels": {"emlops.dev/team": "vision", **psa_labels("restricted")}},
    }
    assert plan.get("train-nlp-namespace").inputs["metadata"]["labels"] == {
        "emlops.dev/team": "nlp", **psa_labels("baseline")}


def test_quota_bounds_cpu_memory_and_gpu_requests(plan):
    assert plan.get("train-vision-quota").inputs == {
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "team-quota", "namespace": "team-vision", "labels": {"emlops.dev/team": "vision"}},
        "spec": {"hard": {"requests.cpu": "64", "requests.memory": "256Gi", "limits.memory": "256Gi",
                          "requests.nvidia.com/gpu": "8"}},
    }
    # a CPU-only team may not request GPUs at all
    assert plan.get("train-nlp-quota").inputs["spec"]["hard"]["requests.nvidia.com/gpu"] == "0"


def test_limit_range_gives_containers_default_requests_and_limits(plan):
    assert plan.get("train-nlp-limits").inputs == {
        "apiVersion": "v1", "kind": "LimitRange",
        "metadata": {"name": "container-defaults", "namespace": "team-nlp", "labels": {"emlops.dev/team": "nlp"}},
        "spec": {"limits": [{"type": "Container", "defaultRequest": {"cpu": "500m", "memory": "1Gi"},
                             "default": {"cpu": "4", "memory": "8Gi"}}]},
    }


def test_priority_classes_put_inference_above_training(plan):
    common = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "globalDefault": False,
              "preemptionPolicy": "PreemptLowerPriority"}
    labels = {"app.kubernetes.io/part-of": "emlops"}
    assert plan.get("train-training-priority").inputs == {
        **common, "metadata": {"name": "emlops-training", "labels": labels}, "value": 100000,
        "description": "Training jobs: preempt lower-priority pods, are preempted by inference."}
    assert plan.get("train-inference-priority").inputs == {
        **common, "metadata": {"name": "emlops-inference", "labels": labels}, "value": 1000000,
        "description": "Online inference: preempts training when the cluster is full."}


def device_plugin(taint: str = "nvidia.com/gpu", label: tuple[str, str] = ("emlops.dev/node-pool", "gpu"),
                  image: str = "nvcr.io/nvidia/k8s-device-plugin:v0.17.0") -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "nvidia-device-plugin", "app.kubernetes.io/part-of": "emlops"}
    sockets = "/var/lib/kubelet/device-plugins"
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "nvidia-device-plugin", "namespace": "kube-system", "labels": labels},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "nvidia-device-plugin"}},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {"metadata": {"labels": labels}, "spec": {
                "priorityClassName": "system-node-critical",
                "automountServiceAccountToken": False,
                "tolerations": [{"key": taint, "operator": "Exists"}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [
                        {"key": label[0], "operator": "In", "values": [label[1]]}]}]}}},
                "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{
                    "name": "nvidia-device-plugin-ctr", "image": image,
                    "securityContext": {"allowPrivilegeEscalation": False, "privileged": False,
                                        "capabilities": {"drop": ["ALL"]}},
                    "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                                  "limits": {"cpu": "500m", "memory": "256Mi"}},
                    "volumeMounts": [{"name": "device-plugin", "mountPath": sockets}],
                }],
                "volumes": [{"name": "device-plugin", "hostPath": {"path": sockets, "type": "Directory"}}],
            }},
        },
    }


def test_device_plugin_runs_unprivileged_on_gpu_nodes_only(plan):
    assert plan.get("train-device-plugin").inputs == device_plugin()


def test_device_plugin_follows_the_gpu_taint_label_and_image():
    image = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/nvidia/k8s-device-plugin:v0.17.0"
    custom = baseline_plan(settings(device_plugin_image=image),
                           context(gpu_node_taint_key="gpu", gpu_node_label=("karpenter.sh/nodepool", "gpu-a100")))
    expected = device_plugin("gpu", ("karpenter.sh/nodepool", "gpu-a100"), image)
    assert custom.get("train-device-plugin").inputs == expected


def test_without_device_plugin_or_teams_only_priority_classes_remain():
    bare = baseline_plan(settings(teams=[], install_device_plugin=False))
    assert [(r.type, r.name) for r in bare.children(COMPONENT_URN)] == [
        (PRIORITY, "train-training-priority"), (PRIORITY, "train-inference-priority")]
    assert bare.outputs["namespaces"] == {}


def test_protect_keeps_the_namespaces_only():
    protected = baseline_plan(given=context(protect=True))
    kept = {r.name for r in protected.children(COMPONENT_URN) if r.protect and r.retain_on_delete}
    assert kept == {"train-vision-namespace", "train-nlp-namespace"}
    assert not any(r.protect or r.retain_on_delete for r in protected.children(COMPONENT_URN) if r.name not in kept)


# -- the plan's objects against the Kubernetes API schema ---------------------------------------------

@pytest.mark.parametrize("version", supported_kubernetes_versions())
def test_baseline_objects_are_valid_for_every_supported_version(plan, version):
    assert validate_plan_objects(plan, version) == []


def k8s_resource(type_: str, name: str, inputs: dict[str, Any]) -> PlanResource:
    return PlanResource(urn=f"urn:pulumi:test::emlops::{type_}::{name}", type=type_, name=name, custom=True,
                        parent=STACK, dependencies=[], provider=PROVIDER_URN, inputs=inputs)


def with_resources(plan: Plan, *resources: PlanResource) -> Plan:
    return dataclasses.replace(plan, resources=[*plan.resources, *resources])


def test_an_invalid_field_type_is_one_problem_line(plan):
    broken = device_plugin()
    broken["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": "http"}]
    resource = k8s_resource(DAEMONSET, "broken", broken)
    assert validate_plan_objects(with_resources(plan, resource), "1.33") == [
        f"{resource.urn}: DaemonSet/nvidia-device-plugin: spec.template.spec.containers.0.ports.0.containerPort: "
        "'http' is not of type 'integer'"]


def test_unknown_fields_are_problems_in_strict_mode(plan):
    typo = k8s_resource(NAMESPACE, "typo", {"apiVersion": "v1", "kind": "Namespace",
                                            "metadata": {"name": "team-x", "lables": {"a": "b"}}})
    assert validate_plan_objects(with_resources(plan, typo), "1.33") == [
        f"{typo.urn}: Namespace/team-x: metadata: Additional properties are not allowed ('lables' was unexpected)"]


def test_apis_the_version_no_longer_serves_are_problems():
    psp = k8s_resource("kubernetes:policy/v1beta1:PodSecurityPolicy", "psp", {
        "apiVersion": "policy/v1beta1", "kind": "PodSecurityPolicy", "metadata": {"name": "legacy"}, "spec": {}})
    assert validate_plan_objects(Plan("emlops", "test", [psp]), "1.33") == [
        f"{psp.urn}: PodSecurityPolicy/legacy: Kubernetes 1.33 does not serve PodSecurityPolicy in policy/v1beta1"]


def test_api_version_and_kind_come_from_the_type_token_when_missing():
    bare = k8s_resource(PRIORITY, "bare", {"metadata": {"name": "p"}, "value": "high"})
    assert validate_plan_objects(Plan("emlops", "test", [bare]), "1.33") == [
        f"{bare.urn}: PriorityClass/p: value: 'high' is not of type 'integer', 'null'"]


def test_values_unknown_offline_are_not_problems(plan):
    unknown = device_plugin()
    unknown["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": "[unknown: port of svc]"}]
    unknown["spec"]["template"]["spec"]["automountServiceAccountToken"] = "[secret]"
    resource = k8s_resource(DAEMONSET, "unknown", unknown)
    before = copy.deepcopy(unknown)
    assert validate_plan_objects(with_resources(plan, resource), "1.33") == []
    assert resource.inputs == before  # the plan itself is not changed


def test_custom_resources_patches_and_helm_releases_are_not_checked():
    others = [
        k8s_resource("kubernetes:karpenter.sh/v1:NodePool", "pool", {
            "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gpu"}, "spec": {"any": 1}}),
        k8s_resource("kubernetes:core/v1:NamespacePatch", "patch", {"metadata": {"name": "kube-system"}}),
        k8s_resource("kubernetes:helm.sh/v3:Release", "release", {"chart": "x", "values": {"a": 1}}),
        k8s_resource("pulumi:providers:kubernetes", "k8s", {"kubeconfig": "{}"}),
    ]
    assert validate_plan_objects(Plan("emlops", "test", others), "1.33") == []


def test_an_unsupported_version_is_refused(plan):
    assert error_of(lambda: validate_plan_objects(plan, "1.20")) == (
        f"kubernetes_version '1.20' is not supported; supported: {SUPPORTED}")
