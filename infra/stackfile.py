"""Reading the project (`Pulumi.yaml`) and its stack files (`stacks/Pulumi.<stack>.yaml`).

The offline preview hands the stack's config to the program the way the Pulumi CLI does: each
key as a string, objects as JSON. Keys are checked here, before the program runs, so a misspelt
key fails with one line and nothing registered.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from emlops.program.config import CONFIG_NAMESPACE, FULL_KEY, MLFLOW_BACKEND_KEY, SECURE_IN_PLATFORM, ConfigError
from emlops.program.platform import PlatformConfig, parse_platform_config

from emlops.program.project import Project, find_project  # noqa: F401 (the tooling's way to the project and its stacks)
from emlops.program.shared_registry import load_shared_registry

# Stack file keys Pulumi itself writes (secrets provider and its encrypted key).
_STACK_FILE_KEYS = ("config", "secretsprovider", "encryptedkey", "encryptionsalt", "environment")
ALLOWED_CONFIG_KEYS = (FULL_KEY, f"{CONFIG_NAMESPACE}:{MLFLOW_BACKEND_KEY}")


@dataclass
class StackConfig:
    """A stack's config as the Pulumi CLI would pass it, plus the validated platform config."""

    stack: str
    source: str
    values: dict[str, str]
    secret_keys: list[str]
    platform: PlatformConfig
    warnings: list[str] = field(default_factory=list)
    """What the checks of this stack could not do (a sibling stack file that cannot be read)."""


def load_stack(project: Project, stack: str) -> StackConfig:
    """Read and validate `stacks/Pulumi.<stack>.yaml`; raise ConfigError with one line on failure."""
    path = project.stack_path(stack)
    source = project.display_path(stack)
    if not path.exists() and not path.is_symlink():
        known = ", ".join(project.stacks()) or "none"
        raise ConfigError(f"{source}: no such stack file; stacks in this project: {known}")
    document = project.read_stack(stack)
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: must be a mapping with a 'config' key")
    for key in document:
        if key not in _STACK_FILE_KEYS:
            raise ConfigError(f"{source}: {key}: unknown key; allowed keys: {', '.join(_STACK_FILE_KEYS)}")
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError(f"{source}: config: must be a mapping of settings")
    secret_refs = _secret_config_keys(config.get(FULL_KEY))
    allowed = [*ALLOWED_CONFIG_KEYS, *secret_refs]
    for key in config:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            listed = ", ".join(ALLOWED_CONFIG_KEYS) + (
                " and the keys models[].secret_environment names" if secret_refs else "")
            raise ConfigError(f"{source}: {key}: unknown key; {hint}allowed keys: {listed}")

    secret_keys: list[str] = []
    values: dict[str, str] = {}
    for key, value in config.items():
        plain, has_secret = _without_secure_values(value)
        if has_secret:
            secret_keys.append(key)
        values[key] = plain if isinstance(plain, str) else json.dumps(plain)
    secure = _first_secure_value(config.get(FULL_KEY), "")
    if secure is not None:
        raise ConfigError(f"{source}: {FULL_KEY}{secure}: {SECURE_IN_PLATFORM}")
    raw = config.get(FULL_KEY)
    platform = parse_platform_config(raw, source)
    _check_secrets(platform, config, source)
    warnings = check_account_references(project, stack, raw, source)
    load_shared_registry(platform, stack, source, project.root)  # the relation to the shared registry holds
    return StackConfig(stack=stack, source=source, values=values, secret_keys=secret_keys, platform=platform,
                       warnings=warnings)


def _secret_config_keys(raw: Any) -> list[str]:
    """`emlops:<key>` of every config key `models[].secret_environment` names (read before the settings are
    validated, so that an unknown config key is reported first)."""
    refs: list[str] = []
    models = raw.get("models") if isinstance(raw, dict) else None
    for model in models if isinstance(models, list) else []:
        environment = model.get("secret_environment") if isinstance(model, dict) else None
        for key in environment.values() if isinstance(environment, dict) else ():
            if isinstance(key, str) and f"{CONFIG_NAMESPACE}:{key}" not in refs:
                refs.append(f"{CONFIG_NAMESPACE}:{key}")
    return refs


def _first_secure_value(value: Any, path: str) -> Optional[str]:
    """The key path (`.tags.owner`) of the first encrypted (`secure:`) value under `value`, or None."""
    if _is_secure(value):
        return path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _first_secure_value(item, f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}")
        if found is not None:
            return found
    return None


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _check_secrets(platform: PlatformConfig, config: dict, source: str) -> None:
    """Config keys meant for secrets hold encrypted values (`secure:`), and every key the models name is set."""
    backend = f"{CONFIG_NAMESPACE}:{MLFLOW_BACKEND_KEY}"
    if backend in config and not _is_secure(config[backend]):
        raise ConfigError(f"{source}: {backend}: is in plaintext, and a database URI holds its password; set it "
                          f"encrypted with `pulumi config set --secret {backend} <uri>`")
    for index, model in enumerate(platform.models):
        for name, key in model.secret_environment.items():
            full = f"{CONFIG_NAMESPACE}:{key}"
            if full not in config:
                raise ConfigError(f"{source}: {FULL_KEY}.models[{index}].secret_environment.{name}: config key "
                                  f"{full!r} is not set; set it with `pulumi config set --secret {full} <value>`")
            if not _is_secure(config[full]):
                raise ConfigError(f"{source}: {full}: is in plaintext, and it holds the secret {name} of model "
                                  f"{model.name!r}; set it encrypted with `pulumi config set --secret {full} <value>`")


# Environments whose account every stack may reference (shared services: a central registry, images, ...).
SHARED_ENVIRONMENT = "shared"
_ACCOUNT_ID = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")
_PACKAGE_ARN_KEY = re.compile(r"^models\[[0-9]+\]\.source\.model_package_arn$")


def check_account_references(project: Project, stack: str, raw: Any, source: str) -> list[str]:
    """A stack deploys into an account of its own, with a deploy role of its own, and may not point into an
    account another shipped stack owns, unless that stack is `shared`. Returns a warning for each sibling stack
    file it could not read: that file fails its own preview, and this stack is still compared with every other.

    Each environment's data, images and roles stay in its own account: a dev stack that pulls prod's image
    or reads prod's bucket crosses the boundary the accounts exist for, and a dev stack that names prod's
    account and deploy role would deploy dev's code into prod. Three references are the promotion path and
    allowed: `registry.consumer_account_ids` and `registry.publisher_account_ids` (the accounts that may read
    this stack's registry, and register into it) and a model package (`models[i].source.model_package_arn`) in
    an account whose stack lists this stack's account among its registry's consumers.
    """
    if not isinstance(raw, dict):
        return []
    own = str(raw.get("account_id", ""))
    own_role = raw.get("deploy_role_arn")
    owners: dict[str, tuple[str, dict]] = {}
    siblings, warnings = _sibling_settings(project, stack, source)
    for other, settings in siblings:
        account = str(settings.get("account_id", ""))
        other_source = project.display_path(other)
        environment = settings.get("environment")
        if own and account == own:
            raise ConfigError(f"{source}: {FULL_KEY}.account_id: {own!r} is the account of {other_source} "
                              f"(environment {environment!r}); each stack deploys into an account of its own")
        if own_role and settings.get("deploy_role_arn") == own_role:
            raise ConfigError(f"{source}: {FULL_KEY}.deploy_role_arn: {own_role!r} is the deploy role of "
                              f"{other_source} (environment {environment!r}); each stack deploys with a role of "
                              "its own account")
        if account and environment != SHARED_ENVIRONMENT:
            owners.setdefault(account, (other, settings))
    if not owners:
        return warnings
    for path, value in _leaves(raw, ""):
        if path == "account_id" or path.startswith(("registry.consumer_account_ids[",
                                                   "registry.publisher_account_ids[")):
            continue
        for account in _ACCOUNT_ID.findall(value):
            if account not in owners:
                continue
            other, settings = owners[account]
            consumers = (settings.get("registry") or {}).get("consumer_account_ids") or []
            if _PACKAGE_ARN_KEY.match(path) and own in [str(c) for c in consumers]:
                continue  # promotion: the other stack's registry lets this account read its packages
            reason = (f"stack {other!r} does not list {own!r} in its registry.consumer_account_ids"
                      if _PACKAGE_ARN_KEY.match(path) else
                      f"a stack references only its own account and shared-services accounts (environment "
                      f"{SHARED_ENVIRONMENT!r})")
            raise ConfigError(f"{source}: {FULL_KEY}.{path}: {account!r} is the account of stack {other!r} "
                              f"(environment {settings.get('environment')!r}); {reason}")
    return warnings


def _sibling_settings(project: Project, stack: str, source: str) -> tuple[list[tuple[str, dict]], list[str]]:
    """The raw `emlops:platform` settings of every other stack file, and a warning for each that cannot be read."""
    siblings: list[tuple[str, dict]] = []
    warnings: list[str] = []
    for other in project.stacks():
        if other == stack:
            continue
        try:
            document = project.read_stack(other)
        except ConfigError as exc:
            warnings.append(f"warning: {exc} (so the account rule could not compare {source} with it)")
            continue
        config = document.get("config") if isinstance(document, dict) else None
        settings = config.get(FULL_KEY) if isinstance(config, dict) else None
        siblings.append((other, settings if isinstance(settings, dict) else {}))
    return siblings, warnings


def _leaves(value: Any, path: str):
    """(key path, text) of every scalar under `value`, paths as the config errors write them."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    elif value is not None and not isinstance(value, bool):
        yield path, str(value)


def _without_secure_values(value: Any) -> tuple[Any, bool]:
    """Replace `{secure: ...}` leaves (encrypted with the stack's secrets provider, which the
    offline preview cannot open) by the mask the plan uses for secrets."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return "[secret]", True
        found = False
        out = {}
        for key, item in value.items():
            out[key], secret = _without_secure_values(item)
            found = found or secret
        return out, found
    if isinstance(value, list):
        items = [_without_secure_values(item) for item in value]
        return [i for i, _ in items], any(s for _, s in items)
    return value, False
