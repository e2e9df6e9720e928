"""The platform's governance stage: a model card per served model that declares one (`models[].model_card`), linked to
the package group its versions are approved in (the shared registry's, when the stack deploys from one)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import pulumi

from emlops.components.model_card import ModelCard, ModelCardContext
from emlops.components.options import child
from emlops.components.settings import Governance
from emlops.program.config import StackConfig
from emlops.program.names import endpoint_component
from emlops.program.serving import ServedModel, SharedRegistry


def package_group(model: ServedModel, shared: Optional[SharedRegistry]) -> str:
    """The group a model's versions are approved in: its source's group, else its own (named after it); the shared
    registry's group ARN when a shared registry holds the groups."""
    group = model.settings.source.model_package_group or model.name
    return shared.ref.group_arn(group) if shared is not None else group


def model_cards(parent: pulumi.Resource, stack: StackConfig, models: Sequence[ServedModel],
                shared: Optional[SharedRegistry], governance: Governance) -> dict[str, ModelCard]:
    """A ModelCard per served model with a `model_card` section. Its content is encrypted by SageMaker's own key, not
    the data key: the business viewers who read cards may not use the data key (a card describes the model, it holds
    none of the data)."""
    environment, production = stack.environment, stack.production
    cards = {}
    for model in [m for m in models if m.settings.model_card is not None]:
        name = endpoint_component(environment, model.name)
        cards[model.name] = ModelCard(f"{name}-model-card", model.settings.model_card, ModelCardContext(
            card_name=name, model_name=model.name, endpoint_name=name, package_group=package_group(model, shared),
            production=production, governance=governance), opts=child(parent))
    return cards
