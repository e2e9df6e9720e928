"""Catalogue entries of Kubernetes objects on the EKS training cluster (pulumi-kubernetes).

An object is named by `metadata.name` within its namespace; moving or renaming it replaces it. They
carry labels, not AWS tags, and have no ARN.
"""

from __future__ import annotations

from emlops.catalog.resource_type import KUBERNETES_REPLACES, Naming, ResourceType

_NAMING = Naming("metadata.name")


def _object(token: str, replace_on_change: tuple[str, ...] = KUBERNETES_REPLACES, stateful: bool = False,
            earlier_versions: tuple[str, ...] = ()) -> ResourceType:
    """An object of `token`; `earlier_versions`: the API versions pulumi-kubernetes aliases it from."""
    group_kind = token.split(":")
    aliases = tuple(f"kubernetes:{version}:{group_kind[2]}" for version in earlier_versions)
    return ResourceType(token, stateful=stateful, naming=_NAMING, replace_on_change=replace_on_change,
                        type_aliases=aliases)


NAMESPACE = _object("kubernetes:core/v1:Namespace", stateful=True)  # deleting it deletes everything in it
PERSISTENT_VOLUME_CLAIM = _object("kubernetes:core/v1:PersistentVolumeClaim", stateful=True)
RESOURCE_QUOTA = _object("kubernetes:core/v1:ResourceQuota")
LIMIT_RANGE = _object("kubernetes:core/v1:LimitRange")
SECRET = _object("kubernetes:core/v1:Secret")
SERVICE = _object("kubernetes:core/v1:Service")
SERVICE_ACCOUNT = _object("kubernetes:core/v1:ServiceAccount")
PRIORITY_CLASS = _object("kubernetes:scheduling.k8s.io/v1:PriorityClass", ("metadata.name", "value"),
                         earlier_versions=("scheduling.k8s.io/v1alpha1", "scheduling.k8s.io/v1beta1"))
DAEMON_SET = _object("kubernetes:apps/v1:DaemonSet", (*KUBERNETES_REPLACES, "spec.selector"),
                     earlier_versions=("apps/v1beta2", "extensions/v1beta1"))
DEPLOYMENT = _object("kubernetes:apps/v1:Deployment")
