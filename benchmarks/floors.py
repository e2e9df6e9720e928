"""The two floors the benchmark (preview.py) compares a preview with, as Pulumi programs: a flat program of plain
roles, and the replay of a plan (its resources registered directly, without any component code)."""

from __future__ import annotations


def flat_program(count: int):
    """`count` registrations in total (the root stack included), all plain IAM roles."""
    import pulumi_aws as aws

    def program() -> None:
        for i in range(count - 1):
            aws.iam.Role(f"role-{i}", assume_role_policy='{"Version": "2012-10-17", "Statement": []}')

    return program


def properties(token: str) -> list[str]:
    """The wire names of every property (inputs and outputs) of a type's SDK class: the Outputs its resources
    have (none for a type without one)."""
    from emlops.catalog.sdk import sdk_class

    cls = sdk_class(token)
    if cls is None:
        return []
    return [prop.fget._pulumi_name for prop in vars(cls).values()
            if isinstance(prop, property) and hasattr(prop.fget, "_pulumi_name")]


def replay_program(plan: dict):
    """Pulumi's floor for a plan: its resources (types, names, parents, providers, protection, inputs as the
    plan recorded them, and every property of their SDK class) registered directly, in the plan's order, with
    no component code, no Output between two resources and no apply."""
    import pulumi

    def program() -> None:
        made: dict[str, pulumi.Resource] = {}
        for item in plan["resources"]:
            kind, name, inputs = item["type"], item["name"], item["inputs"]
            if kind == "pulumi:pulumi:Stack":
                continue
            opts = pulumi.ResourceOptions(parent=made.get(item["parent"]), provider=made.get(item["provider"]),
                                          protect=item["protect"], retain_on_delete=item["retainOnDelete"])
            if kind == "pulumi:pulumi:StackReference":
                made[item["urn"]] = pulumi.StackReference(name, stack_name=inputs["name"], opts=opts)
            elif kind.startswith("pulumi:providers:"):
                made[item["urn"]] = pulumi.ProviderResource(kind.split(":")[2], name, dict(inputs), opts)
            elif not item["custom"]:
                made[item["urn"]] = pulumi.ComponentResource(kind, name, None, opts)
            else:
                props = {**dict.fromkeys(properties(kind)), **inputs}
                made[item["urn"]] = pulumi.CustomResource(kind, name, props, opts)

    return program
