"""KubernetesBaseline: tenancy and GPU plumbing of the EKS training cluster (pulumi-kubernetes).

Per team: a namespace `team-<name>` under Pod Security Admission, a ResourceQuota (CPU, memory and
GPUs) and a LimitRange whose defaults make pods that declare no resources count against the quota.
Cluster-wide: the `emlops-training` and `emlops-inference` PriorityClasses and the NVIDIA device
plugin DaemonSet, which advertises `nvidia.com/gpu` on the GPU nodes (and only there).

The caller passes the cluster's kubernetes provider in `opts` (`providers=[k8s_provider]`); every
child is parented to the component and inherits it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from emlops.components.options import child, type_token
from emlops.catalog.kubernetes import kubernetes_version_error

__all__ = ["KubernetesBaseline", "KubernetesBaselineArgs", "TeamQuota", "parse_quantity"]

NAMESPACE_PREFIX = "team-"
TEAM_LABEL = "emlops.dev/team"
QUOTA_NAME = "team-quota"
LIMIT_RANGE_NAME = "container-defaults"
TRAINING_PRIORITY, INFERENCE_PRIORITY = "emlops-training", "emlops-inference"
# Online inference preempts training (a training job restarts from its checkpoint; a dropped request
# is lost). Both stay far below the system classes (2,000,000,000 and up).
TRAINING_PRIORITY_VALUE, INFERENCE_PRIORITY_VALUE = 100_000, 1_000_000
DEVICE_PLUGIN_NAME = "nvidia-device-plugin"
DEVICE_PLUGIN_IMAGE = "nvcr.io/nvidia/k8s-device-plugin:v0.17.0"
DEVICE_PLUGIN_SOCKETS = "/var/lib/kubelet/device-plugins"
GPU_RESOURCE = "nvidia.com/gpu"
POD_SECURITY_LEVELS = ("restricted", "baseline")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_MAX_TEAM_NAME = 63 - len(NAMESPACE_PREFIX)
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
# Kubernetes' quantity grammar (k8s.io/apimachinery resource.Quantity): a number, then a binary SI,
# decimal SI or decimal exponent suffix.
_QUANTITY = re.compile(r"^(?P<number>[+-]?(\d+(\.\d*)?|\.\d+))(?P<suffix>[KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$")
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def parse_quantity(quantity: str) -> Optional[Decimal]:
    """The value of a Kubernetes quantity ("500m" -> 0.5, "1Gi" -> 1073741824), or None if it is not one."""
    match = _QUANTITY.match(quantity) if isinstance(quantity, str) else None
    if not match:
        return None
    number, suffix = Decimal(match["number"]), match["suffix"] or ""
    if suffix in _BINARY:
        return number * 1024 ** _BINARY[suffix]
    if suffix in _DECIMAL:
        return number.scaleb(_DECIMAL[suffix])
    return number.scaleb(int(suffix[1:]))


def _check_positive_quantity(label: str, value: str) -> Decimal:
    parsed = parse_quantity(value)
    if parsed is None or parsed <= 0:
        raise ValueError(f"{label} {value!r} must be a positive Kubernetes quantity, e.g. '64', '500m', '256Gi'")
    return parsed


def _is_qualified_name(key: str) -> bool:
    """A label or taint key: `[<DNS subdomain>/]<name>`, the name at most 63 characters."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return False
    return len(name) <= 63 and bool(_QUALIFIED_NAME.match(name))


def _is_pinned(image: str) -> bool:
    if not isinstance(image, str) or not image or any(c.isspace() for c in image):
        return False
    if "@sha256:" in image:
        return True
    _, colon, tag = image.rsplit("/", 1)[-1].partition(":")
    return bool(colon and tag and tag != "latest")


@dataclass(frozen=True)
class TeamQuota:
    """One team: its namespace `team-<name>` and what the team may request in it."""

    name: str
    """DNS-1123 label (at most 58 characters); the namespace is `team-<name>`."""
    gpus: int
    """`requests.nvidia.com/gpu` the namespace may hold (0 for a CPU-only team)."""
    cpu: str
    """CPU the namespace's pods may request, a Kubernetes quantity, e.g. "64"."""
    memory: str
    """Memory the namespace's pods may request and be limited to, e.g. "256Gi"."""
    pod_security: str = "restricted"
    """Pod Security Admission level enforced: "restricted" or "baseline" (for images that must run as
    root). Warnings and audit annotations always use "restricted". Default: "restricted"."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or len(self.name) > _MAX_TEAM_NAME or not _DNS_LABEL.match(self.name):
            raise ValueError(f"team name {self.name!r} must be a DNS-1123 label of at most {_MAX_TEAM_NAME} characters "
                             "(lowercase letters, digits and '-', starting and ending with a letter or digit)")
        if isinstance(self.gpus, bool) or not isinstance(self.gpus, int) or self.gpus < 0:
            raise ValueError(f"team {self.name!r}: gpus ({self.gpus!r}) must be a whole number, 0 or more")
        _check_positive_quantity(f"team {self.name!r}: cpu", self.cpu)
        _check_positive_quantity(f"team {self.name!r}: memory", self.memory)
        if self.pod_security not in POD_SECURITY_LEVELS:
            raise ValueError(f"team {self.name!r}: pod_security {self.pod_security!r} must be restricted or baseline")

    @property
    def namespace(self) -> str:
        return f"{NAMESPACE_PREFIX}{self.name}"


@dataclass
class KubernetesBaselineArgs:
    """Arguments of a `KubernetesBaseline`: the tenancy and GPU plumbing of one cluster."""

    kubernetes_version: str
    """The cluster's Kubernetes version, e.g. "1.33"; pins the Pod Security Admission policy version."""
    teams: Sequence[TeamQuota] = ()
    """Teams with a namespace and quota each. Default: none."""
    gpu_node_taint_key: str = GPU_RESOURCE
    """Taint key of the GPU nodes (any value and effect); the device plugin tolerates it. Default: "nvidia.com/gpu"."""
    gpu_node_label: tuple[str, str] = ("emlops.dev/node-pool", "gpu")
    """Label (key, value) of the GPU nodes; the device plugin runs only there. Default: emlops.dev/node-pool=gpu."""
    install_device_plugin: bool = True
    """Deploy the NVIDIA device plugin DaemonSet (off for AMIs that ship it, e.g. Bottlerocket). Default: true."""
    device_plugin_image: str = DEVICE_PLUGIN_IMAGE
    """Device plugin image, pinned (a private mirror for clusters without internet). Default: nvcr.io's v0.17.0."""
    default_cpu_request: str = "500m"
    """CPU request of a container that declares none (counts against the quota). Default: "500m"."""
    default_cpu_limit: str = "4"
    """CPU limit of a container that declares none. Default: "4"."""
    default_memory_request: str = "1Gi"
    """Memory request of a container that declares none. Default: "1Gi"."""
    default_memory_limit: str = "8Gi"
    """Memory limit of a container that declares none; must fit every team's memory. Default: "8Gi"."""
    protect: bool = False
    """Protect and retain the namespaces (deleting one deletes every job, volume and secret in it). Default: false."""

    def __post_init__(self) -> None:
        error = kubernetes_version_error(self.kubernetes_version)
        if error:
            raise ValueError(error)
        names = [team.name for team in self.teams]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"team names must be unique; {', '.join(duplicates)} given more than once")
        if not _is_qualified_name(self.gpu_node_taint_key):
            raise ValueError(f"gpu_node_taint_key {self.gpu_node_taint_key!r} must be a Kubernetes label key, "
                             "[<DNS subdomain>/]<name of at most 63 characters>")
        self._check_node_label()
        if not _is_pinned(self.device_plugin_image):
            raise ValueError(f"device_plugin_image {self.device_plugin_image!r} must be pinned to a version tag "
                             "(not 'latest') or a digest, e.g. " + repr(DEVICE_PLUGIN_IMAGE))
        self._check_defaults()

    def _check_node_label(self) -> None:
        if not isinstance(self.gpu_node_label, tuple) or len(self.gpu_node_label) != 2:
            raise ValueError(f"gpu_node_label {self.gpu_node_label!r} must be a (key, value) pair")
        key, value = self.gpu_node_label
        if not isinstance(key, str) or not _is_qualified_name(key):
            raise ValueError(f"gpu_node_label key {key!r} must be a Kubernetes label key, "
                             "[<DNS subdomain>/]<name of at most 63 characters>")
        if not isinstance(value, str) or len(value) > 63 or not _QUALIFIED_NAME.match(value):
            raise ValueError(f"gpu_node_label value {value!r} must be a Kubernetes label value: at most 63 letters, "
                             "digits, '-', '_' or '.', starting and ending with a letter or digit")

    def _check_defaults(self) -> None:
        values = {label: _check_positive_quantity(label, getattr(self, label)) for label in (
            "default_cpu_request", "default_cpu_limit", "default_memory_request", "default_memory_limit")}
        for resource in ("cpu", "memory"):
            request, limit = f"default_{resource}_request", f"default_{resource}_limit"
            if values[request] > values[limit]:
                raise ValueError(f"{request} ({getattr(self, request)}) is larger than {limit} "
                                 f"({getattr(self, limit)}); lower the request or raise the limit")
        for team in self.teams:
            # a pod that declares nothing must fit the quota (limits.memory is part of it)
            if parse_quantity(team.cpu) < values["default_cpu_request"]:
                raise ValueError(f"team {team.name!r}: cpu ({team.cpu}) is smaller than default_cpu_request "
                                 f"({self.default_cpu_request}); raise cpu or lower default_cpu_request")
            if parse_quantity(team.memory) < values["default_memory_limit"]:
                raise ValueError(f"team {team.name!r}: memory ({team.memory}) is smaller than default_memory_limit "
                                 f"({self.default_memory_limit}); raise memory or lower default_memory_limit")


class KubernetesBaseline(pulumi.ComponentResource):
    """Team namespaces with quotas and defaults, priority classes and the NVIDIA device plugin."""

    namespaces: dict[str, k8s.core.v1.Namespace]
    namespace_names: dict[str, pulumi.Output[str]]
    training_priority_class_name: pulumi.Output[str]
    inference_priority_class_name: pulumi.Output[str]
    device_plugin: Optional[k8s.apps.v1.DaemonSet]

    def __init__(self, name: str, args: KubernetesBaselineArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_token("KubernetesBaseline"), name, None, opts)
        self.namespaces = {}
        for team in args.teams:
            self.namespaces[team.name] = _team(self, name, team, args)
        self.namespace_names = {team: ns.metadata.apply(lambda m: m.name) for team, ns in self.namespaces.items()}

        training = _priority_class(self, f"{name}-training-priority", TRAINING_PRIORITY, TRAINING_PRIORITY_VALUE,
                                   "Training jobs: preempt lower-priority pods, are preempted by inference.")
        inference = _priority_class(self, f"{name}-inference-priority", INFERENCE_PRIORITY, INFERENCE_PRIORITY_VALUE,
                                    "Online inference: preempts training when the cluster is full.")
        self.training_priority_class_name = training.metadata.apply(lambda m: m.name)
        self.inference_priority_class_name = inference.metadata.apply(lambda m: m.name)

        self.device_plugin = _device_plugin(self, name, args) if args.install_device_plugin else None
        self.register_outputs({
            "namespaceNames": self.namespace_names,
            "trainingPriorityClassName": self.training_priority_class_name,
            "inferencePriorityClassName": self.inference_priority_class_name,
        })


def _team(parent: KubernetesBaseline, name: str, team: TeamQuota,
          args: KubernetesBaselineArgs) -> k8s.core.v1.Namespace:
    # Pinning the policy version to the cluster's keeps admission stable until the cluster (and this
    # argument) is upgraded. "restricted" suits GPU training: the device plugin hands GPUs to
    # unprivileged, non-root containers; DataLoader shared memory is an emptyDir (medium: Memory).
    psa_version = f"v{args.kubernetes_version}"
    namespace = k8s.core.v1.Namespace(
        f"{name}-{team.name}-namespace",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=team.namespace, labels={
            TEAM_LABEL: team.name,
            "pod-security.kubernetes.io/enforce": team.pod_security,
            "pod-security.kubernetes.io/enforce-version": psa_version,
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/warn-version": psa_version,
            "pod-security.kubernetes.io/audit": "restricted",
            "pod-security.kubernetes.io/audit-version": psa_version,
        }),
        opts=child(parent, protect=args.protect),
    )
    namespace_name = namespace.metadata.apply(lambda m: m.name)
    labels = {TEAM_LABEL: team.name}
    # Memory is incompressible, so limits are bounded too (no overcommit that OOM-kills neighbours);
    # extended resources such as GPUs can only be quota'd with the `requests.` prefix.
    k8s.core.v1.ResourceQuota(
        f"{name}-{team.name}-quota",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=QUOTA_NAME, namespace=namespace_name, labels=labels),
        spec=k8s.core.v1.ResourceQuotaSpecArgs(hard={
            "requests.cpu": team.cpu,
            "requests.memory": team.memory,
            "limits.memory": team.memory,
            f"requests.{GPU_RESOURCE}": str(team.gpus),
        }),
        opts=child(parent),
    )
    k8s.core.v1.LimitRange(
        f"{name}-{team.name}-limits",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=LIMIT_RANGE_NAME, namespace=namespace_name, labels=labels),
        spec=k8s.core.v1.LimitRangeSpecArgs(limits=[k8s.core.v1.LimitRangeItemArgs(
            type="Container",
            default_request={"cpu": args.default_cpu_request, "memory": args.default_memory_request},
            default={"cpu": args.default_cpu_limit, "memory": args.default_memory_limit},
        )]),
        opts=child(parent),
    )
    return namespace


def _priority_class(parent: KubernetesBaseline, logical: str, name: str, value: int,
                    description: str) -> k8s.scheduling.v1.PriorityClass:
    return k8s.scheduling.v1.PriorityClass(
        logical,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, labels={"app.kubernetes.io/part-of": "emlops"}),
        value=value,
        global_default=False,
        preemption_policy="PreemptLowerPriority",
        description=description,
        opts=child(parent),
    )


def _device_plugin(parent: KubernetesBaseline, name: str, args: KubernetesBaselineArgs) -> k8s.apps.v1.DaemonSet:
    labels = {"app.kubernetes.io/name": DEVICE_PLUGIN_NAME, "app.kubernetes.io/part-of": "emlops"}
    label_key, label_value = args.gpu_node_label
    return k8s.apps.v1.DaemonSet(
        f"{name}-device-plugin",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=DEVICE_PLUGIN_NAME, namespace="kube-system", labels=labels),
        spec=k8s.apps.v1.DaemonSetSpecArgs(
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"app.kubernetes.io/name": DEVICE_PLUGIN_NAME}),
            update_strategy=k8s.apps.v1.DaemonSetUpdateStrategyArgs(type="RollingUpdate"),
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                spec=k8s.core.v1.PodSpecArgs(
                    priority_class_name="system-node-critical",
                    # the plugin only talks to the kubelet's socket, never to the API server
                    automount_service_account_token=False,
                    tolerations=[k8s.core.v1.TolerationArgs(key=args.gpu_node_taint_key, operator="Exists")],
                    affinity=k8s.core.v1.AffinityArgs(node_affinity=k8s.core.v1.NodeAffinityArgs(
                        required_during_scheduling_ignored_during_execution=k8s.core.v1.NodeSelectorArgs(
                            node_selector_terms=[k8s.core.v1.NodeSelectorTermArgs(match_expressions=[
                                k8s.core.v1.NodeSelectorRequirementArgs(key=label_key, operator="In",
                                                                       values=[label_value]),
                            ])],
                        ),
                    )),
                    security_context=k8s.core.v1.PodSecurityContextArgs(
                        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
                    ),
                    containers=[k8s.core.v1.ContainerArgs(
                        name="nvidia-device-plugin-ctr",
                        image=args.device_plugin_image,
                        # runs as root only to write its socket into the kubelet's root-owned directory
                        security_context=k8s.core.v1.SecurityContextArgs(
                            allow_privilege_escalation=False,
                            privileged=False,
                            capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
                        ),
                        resources=k8s.core.v1.ResourceRequirementsArgs(
                            requests={"cpu": "50m", "memory": "64Mi"},
                            limits={"cpu": "500m", "memory": "256Mi"},
                        ),
                        volume_mounts=[k8s.core.v1.VolumeMountArgs(name="device-plugin",
                                                                   mount_path=DEVICE_PLUGIN_SOCKETS)],
                    )],
                    volumes=[k8s.core.v1.VolumeArgs(
                        name="device-plugin",
                        host_path=k8s.core.v1.HostPathVolumeSourceArgs(path=DEVICE_PLUGIN_SOCKETS, type="Directory"),
                    )],
                ),
            ),
        ),
        opts=child(parent),
    )
