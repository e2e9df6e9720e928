"""Which model package groups a stack's models and registry name: its own registry's, those its approvals announce,
and those it deploys from or registers into (`PlatformConfig` has them as methods)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emlops.program.config_models import BatchTransformConfig, ModelConfig, RegistryConfig


class RegistryGroups:
    """The package-group questions of a stack's settings (mixed into `PlatformConfig`)."""

    if TYPE_CHECKING:  # PlatformConfig's fields (annotated here, pydantic would take them for fields of its own)
        models: list[ModelConfig]
        batch_transforms: list[BatchTransformConfig]
        registry: RegistryConfig

    def registry_groups(self) -> list[str]:
        """The package groups a stack's own registry holds: one per served model, the groups its models and batch
        transforms are sourced from, and `registry.package_groups`."""
        groups = [model.name for model in self.models]
        groups += [m.source.model_package_group for m in [*self.models, *self.batch_transforms]
                   if m.source.model_package_group]
        return list(dict.fromkeys(groups + list(self.registry.package_groups)))

    def announced_groups(self) -> list[str]:
        """The groups whose approvals this stack's own registry announces: those a deploy picks versions from
        (sourced, retrained) and those it holds for others; none when a shared registry holds the groups."""
        if self.registry.shared_stack:
            return []
        deployed = self.deployed_groups()
        return [g for g in self.registry_groups() if g in deployed or g in self.registry.package_groups]

    def deployed_groups(self) -> list[str]:
        """The groups this environment deploys from or registers into (the shared registry's, when it uses one)."""
        groups = [m.source.model_package_group for m in [*self.models, *self.batch_transforms]
                  if m.source.model_package_group]
        groups += [m.name for m in self.models if m.retraining.enabled]
        return list(dict.fromkeys(groups))
