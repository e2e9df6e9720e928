"""The shared-services registry an environment uses (`registry.shared_stack`), read from its stack file.

A `shared` stack holds the model package groups (and MLflow) in its own account; staging and prod
deploy approved versions from it and prod's retraining registers new versions into it. What the
environment needs while its program runs, before anything exists, comes from the shared stack's
file: its account, region and groups (so group ARNs are known and the relation is checked here,
with one-line errors naming this stack's key). What only exists once the shared stack is deployed
(its artifacts bucket's generated name, its data key's ARN) comes from its outputs through a
`pulumi.StackReference`; `emlops preview` answers that reference by previewing the shared stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from emlops.components.images import ECR_IMAGE
from emlops.program.config import FULL_KEY, ConfigError
from emlops.program.platform import PlatformConfig, parse_platform_config
from emlops.program.project import find_project
from emlops.program.serving import SharedRegistryRef

SHARED_ENVIRONMENT = "shared"


def load_shared_registry(config: PlatformConfig, stack: str, source: str, root: Path) -> Optional[SharedRegistryRef]:
    """The shared registry `config` names, checked against this stack; None without `registry.shared_stack`."""
    name = config.registry.shared_stack
    if name is None:
        return None
    at = f"{source}: {FULL_KEY}.registry.shared_stack"
    if name == stack:
        raise ConfigError(f"{at}: names this stack itself; name the shared-services stack, e.g. 'shared'")
    project = find_project(root)
    path, shared_source = project.stack_path(name), project.display_path(name)
    if not path.exists() and not path.is_symlink():
        raise ConfigError(f"{at}: no stack file {shared_source}; stacks in this project: "
                          f"{', '.join(project.stacks()) or 'none'}")
    document = project.read_stack(name)  # a broken file is one line naming it
    shared_config = document.get("config") if isinstance(document, dict) else None
    raw = shared_config.get(FULL_KEY) if isinstance(shared_config, dict) else None
    if shared_config is not None and not isinstance(shared_config, dict):
        raise ConfigError(f"{at}: {shared_source} is not a valid stack file (preview it on its own)")
    shared = parse_platform_config(raw, shared_source)
    if shared.environment != SHARED_ENVIRONMENT:
        raise ConfigError(f"{at}: stack {name!r} is environment {shared.environment!r}; the shared registry is "
                          f"a stack of environment {SHARED_ENVIRONMENT!r}")
    if shared.registry.shared_stack is not None:
        raise ConfigError(f"{at}: stack {name!r} uses another stack's registry itself; name the stack that "
                          "holds the package groups")
    if shared.region != config.region:
        raise ConfigError(f"{at}: stack {name!r} is in region {shared.region!r} but this stack is in "
                          f"{config.region!r}; SageMaker deploys and registers model packages only in their region")
    if shared.account_id == config.account_id:
        raise ConfigError(f"{at}: stack {name!r} deploys into this stack's account {config.account_id!r}; the "
                          "shared registry lives in its own account")
    groups = tuple(shared.registry_groups())
    own = config.account_id
    consumer = own in shared.registry.consumer_account_ids
    publisher = own in shared.registry.publisher_account_ids
    if not consumer and not publisher:
        raise ConfigError(f"{at}: stack {name!r} lists {own!r} neither in its registry.consumer_account_ids nor in "
                          "its registry.publisher_account_ids")
    listed = ", ".join(groups) or "none"
    sourced = [(f"models[{i}]", model) for i, model in enumerate(config.models)]
    sourced += [(f"batch_transforms[{i}]", entry) for i, entry in enumerate(config.batch_transforms)]
    for at, entry in sourced:
        group = entry.source.model_package_group
        if group is not None:
            key = f"{source}: {FULL_KEY}.{at}.source.model_package_group"
            if group not in groups:
                raise ConfigError(f"{key}: {group!r} is not a package group of stack {name!r} (its groups: "
                                  f"{listed}); add it to its registry.package_groups")
            if not consumer:
                raise ConfigError(f"{key}: stack {name!r} does not list {own!r} in its registry.consumer_account_ids, "
                                  "so this account may not deploy its packages")
    for index, model in enumerate(config.models):
        if model.retraining.enabled:
            key = f"{source}: {FULL_KEY}.models[{index}].retraining.enabled"
            if model.name not in groups:
                raise ConfigError(f"{key}: retraining registers into package group {model.name!r}, which stack "
                                  f"{name!r} does not hold (its groups: {listed})")
            if not publisher:
                raise ConfigError(f"{key}: retraining registers into stack {name!r}, which does not list {own!r} "
                                  "in its registry.publisher_account_ids")
    repositories = tuple(shared.registry.image_repositories)
    for key, image in _images(config):
        match = ECR_IMAGE.match(image)
        if match and match["account"] == shared.account_id and match["repo"] not in repositories:
            raise ConfigError(f"{source}: {FULL_KEY}.{key}: {match['repo']!r} is not an image repository of stack "
                              f"{name!r} (its repositories: {', '.join(repositories) or 'none'}); add it to its "
                              "registry.image_repositories")
    return SharedRegistryRef(stack=name, account_id=shared.account_id, region=shared.region,
                             partition=shared.partition.name, groups=groups, repositories=repositories,
                             consumer=consumer, publisher=publisher)


def _images(config: PlatformConfig):
    """(key path, image URI) of every image a stack's models, retraining and batch transforms name."""
    for index, model in enumerate(config.models):
        if model.image is not None and model.image.uri:
            yield f"models[{index}].image.uri", model.image.uri
        if model.retraining.training_image:
            yield f"models[{index}].retraining.training_image", model.retraining.training_image
    for index, entry in enumerate(config.batch_transforms):
        if entry.image is not None and entry.image.uri:
            yield f"batch_transforms[{index}].image.uri", entry.image.uri
