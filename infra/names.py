"""The physical names the platform derives from the stack file, checked against AWS's limits at config time.

Components name their children from their own name (`<environment>-<model>`, `...-monitor`, ...), and Pulumi
adds a 7-character suffix to an auto-name; the longest of these can outgrow what AWS allows (EventBridge rule
names 64 characters, IAM roles 64, SageMaker names 63) long after the stack file was read. Each component says
which names it derives (`derived_names`, built by the same functions its constructor calls), the resource
catalogue says each type's limit, and this module reports the first name AWS would refuse at the stack-file key
whose value makes it so, with the limit and the room left for that value.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from emlops.catalog.resources import resource_type
from emlops.components import batch_transform, data_pipeline, endpoint, monitoring, registry, retraining
from emlops.components.batch_transform_args import pipeline_name as batch_pipeline_name
from emlops.components.data_pipeline_args import pipeline_name as data_pipeline_name
from emlops.components.naming import DerivedName
from emlops.components.retraining_args import pipeline_name
from emlops.components.settings import AtKey

if TYPE_CHECKING:  # the settings that hold the sections; the check runs while they validate
    from emlops.program.platform import PlatformConfig


def endpoint_component(environment: str, model: str) -> str:
    """The name of a model's ModelEndpoint (also its endpoint's name)."""
    return f"{environment}-{model}"


def monitor_component(environment: str, model: str) -> str:
    return f"{environment}-{model}-monitor"


def retraining_component(environment: str, model: str) -> str:
    return f"{environment}-{model}-retraining"


def registry_component(environment: str) -> str:
    return f"{environment}-registry"


def batch_transform_component(environment: str, name: str) -> str:
    """The name of a BatchTransform (also its pipeline's name)."""
    return batch_pipeline_name(environment, name)


def check(config: PlatformConfig) -> None:
    """AtKey for the first derived name AWS would refuse: a model's at `models[i].name`, a batch transform's at
    `batch_transforms[i].name`, a data pipeline's at `data_pipelines[i].name`, a registry group's at `registry.package_groups[i]`."""
    environment = config.environment
    announced = set(config.announced_groups())
    for index, model in enumerate(config.models):
        names = endpoint.derived_names(endpoint_component(environment, model.name), model)
        if model.monitored(environment):
            names += monitoring.derived_names(monitor_component(environment, model.name), model.monitoring)
        if model.retraining.enabled:
            names += retraining.derived_names(retraining_component(environment, model.name), model.retraining,
                                              pipeline_name(environment, model.name))
        names += registry.derived_names(registry_component(environment), model.name,
                                        announced=model.name in announced)
        _fit(f"models[{index}].name", model.name, names)
        group = model.source.model_package_group
        if group:
            _fit(f"models[{index}].source.model_package_group", group, registry.derived_names(
                registry_component(environment), group, announced=group in announced))
    for index, entry in enumerate(config.batch_transforms):
        component = batch_transform_component(environment, entry.name)
        _fit(f"batch_transforms[{index}].name", entry.name,
             batch_transform.derived_names(component, entry, batch_pipeline_name(environment, entry.name)))
    for index, entry in enumerate(config.data_pipelines):
        _fit(f"data_pipelines[{index}].name", entry.name, data_pipeline.derived_names(
            data_pipeline_name(environment, entry.name), entry, data_pipeline_name(environment, entry.name)))
    for index, group in enumerate(config.registry.package_groups):
        _fit(f"registry.package_groups[{index}]", group, registry.derived_names(
            registry_component(environment), group, announced=group in announced))


def _fit(key: str, value: str, names: Iterable[DerivedName]) -> None:
    for derived in names:
        naming = resource_type(derived.token).naming
        name = derived.longest.lower() if naming.lowercase else derived.longest
        problem = naming.problem(name)
        if problem is None:
            continue
        what = naming.what or resource_type(derived.token).label or derived.token
        suffix = " (with Pulumi's auto-name suffix)" if derived.auto else ""
        if len(name) > naming.max_length:
            room = naming.max_length - (len(name) - len(value))
            raise AtKey(key, f"{value!r} makes the {what} name {name!r} {len(name)} characters{suffix}; AWS allows "
                        f"{naming.max_length} (at most {max(room, 0)} characters here)")
        raise AtKey(key, f"{value!r} makes the {what} name {name!r}, which AWS refuses: it {problem}")
