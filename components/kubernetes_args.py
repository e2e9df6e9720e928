"""What a `KubernetesBaseline` takes: its settings (teams and container defaults; a stack file's
`training.eks` section embeds them) and its context (the cluster's version, GPU node taint and label).

This module is cheap to import (no pulumi_kubernetes): the training settings embed these, and a stack
without an EKS cluster must not pay for the Kubernetes SDK.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Optional

from pydantic import Field, field_validator, model_validator

from emlops.catalog.kubernetes import kubernetes_version_error
from emlops.components.settings import Settings

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



class TeamSettings(Settings):
    """A team with its own namespace (`team-<name>`) and a quota on the GPU cluster."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", max_length=_MAX_TEAM_NAME,
                      description="Team name; its namespace is `team-<name>` (a DNS-1123 label of at most 63 "
                      "characters).",
                      json_schema_extra={"errorMessage": f"must be at most {_MAX_TEAM_NAME} lowercase letters, digits "
                                         "and '-', starting and ending with a letter or digit"})
    gpus: int = Field(ge=0, le=1024, strict=True, description="GPUs (`requests.nvidia.com/gpu`) the team may use at once.")
    cpu: str = Field(description="CPU the team may request, a Kubernetes quantity, e.g. `64` or `500m`.")
    memory: str = Field(description="Memory the team may request, a Kubernetes quantity, e.g. `256Gi`.")
    pod_security: Literal["restricted", "baseline"] = Field(
        "restricted", description="Pod Security level enforced in the namespace (`baseline` for images that must "
        "run as root). Warnings and audit annotations always use restricted. Default: restricted.")

    @field_validator("cpu", "memory", mode="before")
    @classmethod
    def _quantity(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # `cpu: 64` in YAML is a number; as a quantity it is "64"
        if isinstance(value, str):
            value = value.strip()
            parsed = parse_quantity(value)
            if parsed is None or parsed <= 0:
                raise ValueError(f"{value!r} is not a positive Kubernetes quantity like '64', '500m' or '256Gi'")
        return value

    @property
    def namespace(self) -> str:
        return f"{NAMESPACE_PREFIX}{self.name}"


class BaselineSettings(Settings):
    """Tenancy on the GPU cluster: team namespaces with quotas, and what a container that declares nothing
    requests and is limited to."""

    teams: list[TeamSettings] = Field(default_factory=list, description="Teams with namespaces and quotas. "
                                      "Default: none.")
    install_device_plugin: bool = Field(True, description="Deploy the NVIDIA device plugin DaemonSet (off for AMIs "
                                        "that ship it). Default: true.")
    device_plugin_image: str = Field(DEVICE_PLUGIN_IMAGE, description="NVIDIA device plugin image, pinned to a "
                                     "version or digest (a private mirror for clusters without internet). "
                                     f"Default: {DEVICE_PLUGIN_IMAGE}.")
    default_cpu_request: str = Field("500m", description="CPU request of a container that declares none (counts "
                                     "against the quota). Default: 500m.")
    default_cpu_limit: str = Field("4", description="CPU limit of a container that declares none. Default: 4.")
    default_memory_request: str = Field("1Gi", description="Memory request of a container that declares none. "
                                        "Default: 1Gi.")
    default_memory_limit: str = Field("8Gi", description="Memory limit of a container that declares none; every "
                                      "team's memory must fit it. Default: 8Gi.")

    @field_validator("teams")
    @classmethod
    def _unique_teams(cls, teams: list[TeamSettings]) -> list[TeamSettings]:
        names = [team.name for team in teams]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"team names must be unique; repeated: {', '.join(repeated)}")
        return teams

    @field_validator("device_plugin_image")
    @classmethod
    def _pinned(cls, value: str) -> str:
        if not _is_pinned(value):
            raise ValueError(f"{value!r} must be pinned to a version tag (not 'latest') or a digest, e.g. "
                             f"{DEVICE_PLUGIN_IMAGE!r}")
        return value

    @model_validator(mode="after")
    def _defaults_fit(self) -> "BaselineSettings":
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
        return self


@dataclass(frozen=True)
class BaselineContext:
    """What the cluster supplies to a `KubernetesBaseline`."""

    kubernetes_version: str
    """The cluster's Kubernetes version, e.g. "1.33"; pins the Pod Security Admission policy version."""
    gpu_node_taint_key: str = GPU_RESOURCE
    """Taint key of the GPU nodes (any value and effect); the device plugin tolerates it. Default: nvidia.com/gpu."""
    gpu_node_label: tuple[str, str] = ("emlops.dev/node-pool", "gpu")
    """Label (key, value) of the GPU nodes; the device plugin runs only there. Default: emlops.dev/node-pool=gpu."""
    protect: bool = False
    """Protect and retain the namespaces (deleting one deletes every job, volume and secret in it). Default: false."""

    def check(self) -> None:
        """ValueError in one line when the context cannot work (before anything is created)."""
        error = kubernetes_version_error(self.kubernetes_version)
        if error:
            raise ValueError(error)
        if not _is_qualified_name(self.gpu_node_taint_key):
            raise ValueError(f"gpu_node_taint_key {self.gpu_node_taint_key!r} must be a Kubernetes label key, "
                             "[<DNS subdomain>/]<name of at most 63 characters>")
        if not isinstance(self.gpu_node_label, tuple) or len(self.gpu_node_label) != 2:
            raise ValueError(f"gpu_node_label {self.gpu_node_label!r} must be a (key, value) pair")
        key, value = self.gpu_node_label
        if not isinstance(key, str) or not _is_qualified_name(key):
            raise ValueError(f"gpu_node_label key {key!r} must be a Kubernetes label key, "
                             "[<DNS subdomain>/]<name of at most 63 characters>")
        if not isinstance(value, str) or len(value) > 63 or not _QUALIFIED_NAME.match(value):
            raise ValueError(f"gpu_node_label value {value!r} must be a Kubernetes label value: at most 63 letters, "
                             "digits, '-', '_' or '.', starting and ending with a letter or digit")
