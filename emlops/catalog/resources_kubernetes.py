"""Catalogue entries of Kubernetes objects on the EKS training cluster (pulumi-kubernetes).

An object is named by `metadata.name` within its namespace; moving or renaming it replaces it. They
carry labels, not AWS tags, and have no ARN.
"""

from __future__ import annotations

from emlops.catalog.resource_type import KUBERNETES_REPLACES, Naming, ResourceType

_NAMING = Naming("metadata.name")


def _object(token: str, replace_on_change: tuple[str, ...] = KUBERNETES_REPLACES,
            stateful: bool = False) -> ResourceType:
    return ResourceType(token, stateful=stateful, naming=_NAMING, replace_on_change=replace_on_change)


NAMESPACE = _object("kubernetes:core/v1:Namespace", stateful=True)  # deleting it deletes everything in it
PERSISTENT_VOLUME_CLAIM = _object("kubernetes:core/v1:PersistentVolumeClaim", stateful=True)
RESOURCE_QUOTA = _object("kubernetes:core/v1:ResourceQuota")
LIMIT_RANGE = _object("kubernetes:core/v1:LimitRange")
SECRET = _object("kubernetes:core/v1:Secret")
SERVICE = _object("kubernetes:core/v1:Service")
SERVICE_ACCOUNT = _object("kubernetes:core/v1:ServiceAccount")
PRIORITY_CLASS = _object("kubernetes:scheduling.k8s.io/v1:PriorityClass", ("metadata.name", "value"))
DAEMON_SET = _object("kubernetes:apps/v1:DaemonSet", (*KUBERNETES_REPLACES, "spec.selector"))
DEPLOYMENT = _object("kubernetes:apps/v1:Deployment")
