"""The physical names a component derives from its own name, as the component itself names its children.

A component whose children's names grow with what the stack file says (an environment, a model name)
exports `derived_names(...)`: the names its constructor gives the children AWS limits most, built by the
same small functions the constructor calls. The program checks them against each type's limit in the
resource catalogue before anything is registered (`infra/names.py`), so a name AWS would refuse is reported
at the stack-file key that makes it too long, not from inside a component.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from emlops.catalog.resources import resource_type

# What Pulumi appends to an auto-name: '-' and 7 random hex characters.
AUTO_SUFFIX = "-1a2b3c4"


@dataclass(frozen=True)
class DerivedName:
    """One child's name: the physical name given, or the logical name Pulumi auto-names (`auto`)."""

    token: str
    """The child's resource type (its catalogue entry holds AWS's limits)."""
    name: str
    """The physical name, or (auto) the logical name Pulumi turns into `<name>-<7 hex>`."""
    auto: bool = True

    @property
    def longest(self) -> str:
        """The physical name at its longest: an auto-name with a stand-in for Pulumi's random suffix."""
        return f"{self.name}{AUTO_SUFFIX}" if self.auto else self.name


def auto_named(token: str, logical: str) -> DerivedName:
    return DerivedName(token, logical, auto=True)


def given(token: str, physical: str) -> DerivedName:
    return DerivedName(token, physical, auto=False)


def room(name: str, derived: Iterable[DerivedName]) -> int:
    """The longest `name` can be for every one of `derived` (names that contain it) to fit its type's limit."""
    return min((resource_type(d.token).naming.max_length - (len(d.longest) - len(name)) for d in derived),
               default=len(name))
