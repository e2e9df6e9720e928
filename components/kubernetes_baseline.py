"""KubernetesBaseline: tenancy and GPU plumbing of the EKS training cluster (pulumi-kubernetes).

Per team: a namespace `team-<name>` under Pod Security Admission, a ResourceQuota (CPU, memory and
GPUs) and a LimitRange whose defaults make pods that declare no resources count against the quota.
Cluster-wide: the `emlops-training` and `emlops-inference` PriorityClasses and the NVIDIA device
plugin DaemonSet, which advertises `nvidia.com/gpu` on the GPU nodes (and only there).

The caller passes the cluster's kubernetes provider in `opts` (`providers=[k8s_provider]`); every
child is parented to the component and inherits it.
"""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from emlops.components.kubernetes_args import (DEVICE_PLUGIN_NAME, DEVICE_PLUGIN_SOCKETS, GPU_RESOURCE,
                                               INFERENCE_PRIORITY, INFERENCE_PRIORITY_VALUE, LIMIT_RANGE_NAME,
                                               QUOTA_NAME, TEAM_LABEL, TRAINING_PRIORITY, TRAINING_PRIORITY_VALUE,
                                               BaselineContext, BaselineSettings, TeamSettings)
from emlops.components.options import child, type_token

__all__ = ["BaselineContext", "BaselineSettings", "KubernetesBaseline", "TeamSettings"]

class KubernetesBaseline(pulumi.ComponentResource):
    """Team namespaces with quotas and defaults, priority classes and the NVIDIA device plugin."""

    namespaces: dict[str, k8s.core.v1.Namespace]
    namespace_names: dict[str, pulumi.Output[str]]
    training_priority_class_name: pulumi.Output[str]
    inference_priority_class_name: pulumi.Output[str]
    device_plugin: Optional[k8s.apps.v1.DaemonSet]

    def __init__(self, name: str, settings: BaselineSettings, context: BaselineContext,
                 opts: Optional[pulumi.ResourceOptions] = None):
        context.check()
        super().__init__(type_token("KubernetesBaseline"), name, None, opts)
        self.namespaces = {}
        for team in settings.teams:
            self.namespaces[team.name] = _team(self, name, team, settings, context)
        self.namespace_names = {team: ns.metadata.apply(lambda m: m.name) for team, ns in self.namespaces.items()}

        training = _priority_class(self, f"{name}-training-priority", TRAINING_PRIORITY, TRAINING_PRIORITY_VALUE,
                                   "Training jobs: preempt lower-priority pods, are preempted by inference.")
        inference = _priority_class(self, f"{name}-inference-priority", INFERENCE_PRIORITY, INFERENCE_PRIORITY_VALUE,
                                    "Online inference: preempts training when the cluster is full.")
        self.training_priority_class_name = training.metadata.apply(lambda m: m.name)
        self.inference_priority_class_name = inference.metadata.apply(lambda m: m.name)

        self.device_plugin = _device_plugin(self, name, settings, context) if settings.install_device_plugin else None
        self.register_outputs({
            "namespaceNames": self.namespace_names,
            "trainingPriorityClassName": self.training_priority_class_name,
            "inferencePriorityClassName": self.inference_priority_class_name,
        })


def _team(parent: KubernetesBaseline, name: str, team: TeamSettings, settings: BaselineSettings,
          context: BaselineContext) -> k8s.core.v1.Namespace:
    # Pinning the policy version to the cluster's keeps admission stable until the cluster (and this
    # argument) is upgraded. "restricted" suits GPU training: the device plugin hands GPUs to
    # unprivileged, non-root containers; DataLoader shared memory is an emptyDir (medium: Memory).
    psa_version = f"v{context.kubernetes_version}"
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
        opts=child(parent, protect=context.protect),
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
            default_request={"cpu": settings.default_cpu_request, "memory": settings.default_memory_request},
            default={"cpu": settings.default_cpu_limit, "memory": settings.default_memory_limit},
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


def _device_plugin(parent: KubernetesBaseline, name: str, settings: BaselineSettings,
                   context: BaselineContext) -> k8s.apps.v1.DaemonSet:
    labels = {"app.kubernetes.io/name": DEVICE_PLUGIN_NAME, "app.kubernetes.io/part-of": "emlops"}
    label_key, label_value = context.gpu_node_label
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
                    tolerations=[k8s.core.v1.TolerationArgs(key=context.gpu_node_taint_key, operator="Exists")],
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
                        image=settings.device_plugin_image,
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
