"""Check a plan's Kubernetes objects against the API schema of the cluster's Kubernetes version.

pulumi-kubernetes registers each object with its wire-form fields as inputs (`apiVersion`, `kind`,
`metadata`, `spec`, ...), so the plan already holds the manifest the provider would send. Each is
checked with `kubernetes_validate` in strict mode (unknown fields are errors, as they are for a
server-side apply with field validation), against the schemas of the version the cluster runs: an
API that version no longer serves (e.g. `policy/v1beta1`) is a problem, not a skipped object.

This module is cheap to import: `kubernetes_validate` (jsonschema) is imported only when a plan is checked.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path
from typing import Any, Optional

_SCHEMA_DIR = re.compile(r"^v(\d+)\.(\d+)\.\d+-local$")
# API groups Kubernetes itself serves; other groups are custom resources, which have no schema here.
_BUILT_IN_GROUPS = {"core", "apps", "batch", "autoscaling", "policy", "extensions"}
_PLACEHOLDERS = {"integer": 0, "number": 0, "boolean": False, "object": {}, "array": [], "string": ""}
_MAX_RETRIES = 100


@functools.lru_cache(maxsize=1)
def supported_kubernetes_versions() -> tuple[str, ...]:
    """The `<major>.<minor>` versions kubernetes_validate ships schemas for, oldest first."""
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        return ()
    schemas = Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"
    found = {(int(m[1]), int(m[2])) for m in map(_SCHEMA_DIR.match, (p.name for p in schemas.iterdir())) if m}
    return tuple(f"{major}.{minor}" for major, minor in sorted(found))


def kubernetes_version_error(version: str) -> Optional[str]:
    """The one-line error for a Kubernetes version with no shipped schema, or None."""
    supported = supported_kubernetes_versions()
    if version in supported:
        return None
    return f"kubernetes_version {version!r} is not supported; supported: {', '.join(supported)}"


def validate_plan_objects(plan: Any, kubernetes_version: str) -> list[str]:
    """Problems of the plan's Kubernetes objects, one line each: `<urn>: <kind>/<name>: <message>`.

    [] when every object is valid. The first problem of each object is reported (fix it and run
    again). Values the offline preview could not know ("[unknown...]", "[secret]") are not problems.
    Objects of custom resource groups and `*Patch` types (partial objects) are not checked.
    """
    error = kubernetes_version_error(kubernetes_version)
    if error:
        raise ValueError(error)
    problems = []
    for resource in plan.resources:
        manifest = _manifest(resource)
        if manifest is None:
            continue
        message = _first_problem(manifest, kubernetes_version)
        if message:
            name = (manifest.get("metadata") or {}).get("name") or resource.name
            problems.append(f"{resource.urn}: {manifest['kind']}/{name}: {message}")
    return problems


def _manifest(resource: Any) -> Optional[dict[str, Any]]:
    """The object a `kubernetes:<group>/<version>:<Kind>` resource sends, or None if it is not one."""
    package, _, rest = resource.type.partition(":")
    if package != "kubernetes" or not resource.custom:
        return None
    group_version, _, kind = rest.rpartition(":")
    group, _, version = group_version.partition("/")
    if not version or kind.endswith("Patch") or not (group in _BUILT_IN_GROUPS or group.endswith(".k8s.io")):
        return None  # Helm releases, YAML/kustomize components, patches, custom resources
    manifest = dict(resource.inputs)
    manifest.setdefault("apiVersion", version if group == "core" else f"{group}/{version}")
    manifest.setdefault("kind", kind)
    return manifest


def _first_problem(manifest: dict[str, Any], kubernetes_version: str) -> Optional[str]:
    import kubernetes_validate

    for _ in range(_MAX_RETRIES):
        try:
            kubernetes_validate.validate(manifest, kubernetes_version, strict=True)
            return None
        except kubernetes_validate.SchemaNotFoundError:
            return f"Kubernetes {kubernetes_version} does not serve {manifest['kind']} in {manifest['apiVersion']}"
        except kubernetes_validate.ValidationError as caught:
            path = list(caught.path)
            if not (_is_marker(caught.instance) and path and _replace(manifest, path, caught.schema)):
                where = ".".join(str(step) for step in path)
                return f"{where}: {caught.message}" if where else caught.message
    return f"more than {_MAX_RETRIES} values unknown offline; not checked"


def _is_marker(value: Any) -> bool:
    return isinstance(value, str) and (value.startswith("[unknown") or value == "[secret]")


def _replace(manifest: dict[str, Any], path: list, schema: dict[str, Any]) -> bool:
    """Put a value of the schema's type where an unknown marker failed; False if there is no such type."""
    types = schema.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    placeholders = [_PLACEHOLDERS[t] for t in types if t in _PLACEHOLDERS and t != "string"]
    if not placeholders:
        return False
    # copy along the path so the plan's own inputs are never changed
    node = manifest
    for step in path[:-1]:
        node[step] = node = dict(node[step]) if isinstance(node[step], dict) else list(node[step])
    node[path[-1]] = placeholders[0]
    return True
