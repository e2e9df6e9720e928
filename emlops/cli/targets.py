"""What the operator commands (`emlops retrain`, `emlops approve`, `emlops promote`) act on, and how they
fail.

`resolve_target` reads the stack's validated config: the stack and model a command names, in the stack's
account and region (or the shared registry's, for an approval); `resolve_model` adds the model's settings.
AWS failures become one line for the operator (`OperationError`, with the command's exit code); credentials
for another account than the stack's are refused before anything is called. Text that comes from AWS
(descriptions, names, reasons, metrics, error messages) is printed through `clean`: no terminal escape
sequences, no line breaks.
"""

from __future__ import annotations

import difflib
import re
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from emlops.program.config_models import ModelConfig
    from emlops.program.platform import PlatformConfig

EXIT_INPUT = 2
EXIT_FAILURE = 1
EXIT_STILL_RUNNING = 3  # the command stopped following; what it started keeps running in AWS
_ACCESS_DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "ExpiredToken",
                  "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException")
# Error codes AWS answers when a caller is over its request rate (botocore retries them a few times first).
THROTTLING = ("Throttling", "ThrottlingException", "ThrottledException", "TooManyRequests",
              "TooManyRequestsException", "RequestLimitExceeded", "RequestThrottled", "RequestThrottledException",
              "SlowDown")

# ANSI/VT escape sequences: CSI (`ESC [ ... final`), OSC (`ESC ] ... BEL` or `ESC \`), and two-character ones.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")


def clean(text: Any) -> str:
    """TEXT for one line of a terminal: escape sequences dropped, line breaks and tabs as spaces, other control
    and format characters (bidirectional overrides, zero-width characters) dropped."""
    out = []
    for ch in _ESCAPES.sub("", str(text)):
        if ch in "\n\r\t\v\f":
            out.append(" ")
        elif unicodedata.category(ch) not in ("Cc", "Cf"):
            out.append(ch)
    return "".join(out)


class OperationError(Exception):
    """A one-line error for the operator (without the `emlops <command>:` prefix) and its exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE, prefixed: bool = True):
        super().__init__(message)
        self.exit_code = exit_code
        self.prefixed = prefixed  # config errors already name the stack file they come from


@dataclass
class Runtime:
    """What the commands need from the clock and the terminal; tests inject their own so they never wait."""

    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    interactive: Callable[[], bool] = field(default=lambda: sys.stdin.isatty())
    """Whether someone at a terminal can answer a question (stdin is a TTY)."""


@dataclass
class Target:
    """The stack and model an operator command acts on."""

    stack: str
    model: str
    environment: str
    account_id: str
    region: str
    partition: str

    @property
    def where(self) -> str:
        return f"{self.account_id}/{self.region}"


def resolve_target(stack: str, model: str, registry: bool = False) -> Target:
    """Read the stack's validated config and check MODEL is one of its models (exit 2 otherwise).

    With `registry`, the target is where MODEL's package group lives: the shared stack when STACK uses
    one, and a registry-only stack's groups count as its models."""
    platform = _load_platform(stack)
    if not registry:
        _check_model(stack, model, [m.name for m in platform.models])
        return _target(stack, model, platform)
    if platform.registry.shared_stack is not None:  # an environment names its own models' groups only
        _check_model(stack, model, [m.name for m in platform.models])
    return registry_target(stack, platform, model)


def resolve_model(stack: str, model: str) -> tuple[Target, "ModelConfig", "PlatformConfig"]:
    """STACK's model MODEL as `resolve_target` finds it, with its settings and the stack's (exit 2 otherwise)."""
    platform = _load_platform(stack)
    _check_model(stack, model, [m.name for m in platform.models])
    [settings] = [m for m in platform.models if m.name == model]
    return _target(stack, model, platform), settings, platform


def registry_target(stack: str, platform: "PlatformConfig", group: str) -> Target:
    """Where STACK's package group GROUP lives: the shared stack when STACK uses one (exit 2 if the group is not
    one of that registry's)."""
    if platform.registry.shared_stack is not None:
        stack = platform.registry.shared_stack
        platform = _load_platform(stack)
    _check_model(stack, group, platform.registry_groups())
    return _target(stack, group, platform)


def _load_platform(stack: str) -> "PlatformConfig":
    """STACK's validated platform config; a config error is one line naming the stack file (exit 2)."""
    from emlops.program.stackfile import find_project, load_stack
    from emlops.program.config import ConfigError

    try:
        return load_stack(find_project(), stack).platform
    except ConfigError as exc:
        raise OperationError(str(exc), EXIT_INPUT, prefixed=False) from None


def _target(stack: str, model: str, platform: "PlatformConfig") -> Target:
    return Target(stack, model, platform.environment, platform.account_id, platform.region, platform.partition.name)


def resolve_dataset(stack: str, dataset: str) -> Target:
    """STACK's data pipeline DATASET (the target's `model` is its name; exit 2 when the stack has none of that name)."""
    platform = _load_platform(stack)
    _check_model(stack, dataset, [p.name for p in platform.data_pipelines], what="data pipeline")
    return _target(stack, dataset, platform)


def _check_model(stack: str, model: str, names: list[str], what: str = "model") -> None:
    if model not in names:
        close = difflib.get_close_matches(model, names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise OperationError(f"stack {stack!r} has no {what} {model!r}; {hint}{what}s: {', '.join(names) or 'none'}",
                             EXIT_INPUT)


def _aws_error(exc: Exception) -> OperationError:
    """A short reason for a boto3/botocore failure."""
    from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return OperationError("no AWS credentials found; set AWS_PROFILE or the AWS_* credential variables")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = clean(error.get("Code", "Error")), clean(error.get("Message", ""))
        operation = getattr(exc, "operation_name", "the AWS call")
        if code in _ACCESS_DENIED:
            return OperationError(f"access denied calling {operation}: {code}: {message}")
        return OperationError(f"{operation} failed: {code}: {message}")
    return OperationError(f"{type(exc).__name__}: {clean(exc)}")


def is_throttled(exc: Exception) -> bool:
    """AWS refused the call for the caller's request rate (after botocore's own retries)."""
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "") in THROTTLING


def _not_found(exc: Exception) -> bool:
    """AWS answers ResourceNotFound; some calls (and moto) answer ValidationException '... not found'."""
    error = getattr(exc, "response", {}).get("Error", {})
    code, message = error.get("Code", ""), error.get("Message", "").lower()
    return code == "ResourceNotFound" or (code == "ValidationException" and (
        "not found" in message or "does not exist" in message or "could not find" in message))


def _caller_arn(session: Any, target: Target) -> str:
    """The caller's ARN; refuses credentials for another account than the stack's."""
    identity = session.client("sts", region_name=target.region).get_caller_identity()
    if identity["Account"] != target.account_id:
        raise OperationError(f"the AWS credentials are for account {clean(identity['Account'])} but stack "
                             f"{target.stack!r} is in {target.account_id}; use credentials for {target.account_id}")
    return clean(identity["Arn"])
