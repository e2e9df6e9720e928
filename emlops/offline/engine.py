"""The offline engine: runs the real `infra/` program in-process under Pulumi's mocks.

No Pulumi CLI, credentials or network are involved. Pulumi's own `MockMonitor` stands in for the
engine; `RecordingMonitor` extends it to record every registration the way the real engine sees it
(parent, dependencies, provider, protect, retainOnDelete, URNs with the full parent-type chain) and
the stack's outputs. The result is a `Plan` (see `emlops.offline.plan`). The mocks answer in the
program's own thread (`in_place.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import logging
import runpy
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pulumi
from google.protobuf import empty_pb2, json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.config import set_all_config
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime.proto import resource_pb2, source_pb2
from pulumi.runtime.settings import configure
from pulumi.runtime.stack import run_in_stack

from emlops.catalog.resources_pulumi import STACK, STACK_REFERENCE
from emlops.offline import aliases
from emlops.offline.collector import young_collections_only
from emlops.offline.in_place import ServedInPlace, answers_in_place, now
from emlops.offline.mocks import AwsIdentity, MockGap, NameRefused, TruthfulMocks
from emlops.offline.plan import Plan, PlanResource
from emlops.offline.settle import cancel_what_is_left, forget_earlier_runs, settled

ROOT_STACK_TYPE = STACK.token
STACK_REFERENCE_TYPE = STACK_REFERENCE.token
# What `pulumi.get_organization()` answers offline; the DIY backends (S3, local) answer the same.
ORGANIZATION = "organization"
SECRET = "[secret]"


@dataclass
class _Recorded:
    resource: PlanResource
    key: tuple[str, str]


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """Pulumi's MockMonitor, recording each registration as the real engine would see it."""

    def __init__(self, mocks: TruthfulMocks):
        super().__init__(mocks)
        self.recorded: dict[str, _Recorded] = {}
        self.stack_outputs: dict[str, Any] = {}
        self.stack_urn: Optional[str] = None
        self.aliases: dict[str, list[str]] = {}  # URN -> its alias URNs, for its children to inherit
        self.sdk_type_aliases: dict[str, list[str]] = {}  # type -> the earlier tokens its SDK aliases it from
        self._lock = threading.Lock()
        self.thread_loops: list[asyncio.AbstractEventLoop] = []
        self.gap: Optional[Exception] = None  # what the offline preview could not answer truthfully
        self.on_register: Optional[Callable[[int], None]] = None  # told the count after each registration

    def make_urn(self, parent: str, type_: str, name: str, stack: str = "", project: str = "") -> str:
        # The engine prefixes a child's type with its parent's whole qualified type, except for
        # children of the root stack.
        if parent:
            parent_type = parent.split("::")[2]
            if parent_type != ROOT_STACK_TYPE:
                type_ = f"{parent_type}${type_}"
        return f"urn:pulumi:{stack or pulumi.get_stack()}::{project or pulumi.get_project()}::{type_}::{name}"

    def alias_urns(self, request: Any) -> list[str]:
        """The URNs a resource answers to besides its own (aliases.py), its parent's aliases applied to it."""
        with self._lock:
            parent_aliases = self.aliases.get(request.parent, []) if request.parent else []
        return aliases.alias_urns(request, self.make_urn, parent_aliases)

    def _recorded_aliases(self, request: Any, found: list[str]) -> list[str]:
        """FOUND without the SDK's own type renames the catalogue lists (aliases.py), which are kept aside."""
        with self._lock:
            return aliases.recorded(request.type, found, self.sdk_type_aliases)

    def thread_loop(self) -> asyncio.AbstractEventLoop:
        """The event loop of the calling thread, which Pulumi's deserializer needs: the program's own, running
        loop when the requests are served in place (in_place.py); in a thread of a pool (a caller's own
        executor), one made for that thread, closed after the run (Pulumi's mocks never close theirs).
        """
        try:
            return asyncio.get_event_loop()
        except RuntimeError:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            with self._lock:
                self.thread_loops.append(loop)
            return loop

    def Invoke(self, request):  # noqa: N802 (gRPC method name)
        self.thread_loop()
        return super().Invoke(request)

    def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
        urn = self.make_urn(request.parent, request.type, request.name)
        provider = _provider_urn(request.provider)
        entry = PlanResource(
            urn=urn,
            type=request.type,
            name=request.name,
            custom=bool(request.custom),
            parent=request.parent or None,
            dependencies=sorted(set(request.dependencies)),
            provider=provider,
            inputs=to_plain(json_format.MessageToDict(request.object)) if request.object else {},
            protect=bool(request.protect) if request.HasField("protect") else False,
            retain_on_delete=bool(request.retainOnDelete) if request.HasField("retainOnDelete") else False,
            aliases=self._recorded_aliases(request, self.alias_urns(request)),
        )
        if entry.aliases:
            with self._lock:
                self.aliases[urn] = entry.aliases
        self._record(entry)
        if request.type == ROOT_STACK_TYPE:
            self.stack_urn = urn
            return resource_pb2.RegisterResourceResponse(urn=urn)

        self.thread_loop()
        args = pulumi_mocks.MockResourceArgs(
            typ=request.type,
            name=request.name,
            inputs=rpc.deserialize_properties(request.object),
            provider=request.provider,
            resource_id=request.importId,
            custom=request.custom or False,
        )
        args.urn = urn  # lets the mocks derive deterministic names and ids from the URN
        with self._lock:
            try:
                resource_id, state = self.mocks.new_resource(args)
            except (MockGap, NameRefused) as refused:
                # Pulumi wraps the failure in every resource that waits on this one; the run ends with it alone
                self.gap = self.gap or refused
                raise
        # The provider's Check fills auto-names into the inputs; policies and the plan see them there.
        autonamed = self.mocks.autonamed_property(request.type)
        if autonamed and autonamed not in entry.inputs and autonamed in state:
            entry.inputs = dict(sorted({**entry.inputs, autonamed: state[autonamed]}.items()))
        obj = now(rpc.serialize_properties(state, {}))
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, resource_id, state)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=resource_id, object=obj)

    def _record(self, entry: PlanResource) -> None:
        with self._lock:
            if entry.urn in self.recorded:
                raise ValueError(f"two resources share the URN {entry.urn}; give them distinct names")
            self.recorded[entry.urn] = _Recorded(entry, (entry.type, entry.name))
            count = len(self.recorded)
        if self.on_register is not None:
            self.on_register(count)

    def ReadResource(self, request):  # noqa: N802 (gRPC method name)
        # Reads are what the program looks up rather than manages; emlops reads one kind, the stack
        # reference to the shared-services stack. The plan lists it like the real preview does ("read").
        urn = self.make_urn(request.parent, request.type, request.name)
        entry = PlanResource(
            urn=urn, type=request.type, name=request.name, custom=True, parent=request.parent or None,
            dependencies=sorted(set(request.dependencies)),
            provider=_provider_urn(request.provider),
            inputs={"name": request.id} if request.type == STACK_REFERENCE_TYPE else
            to_plain(json_format.MessageToDict(request.properties)) if request.properties else {},
        )
        self._record(entry)
        if request.type == STACK_REFERENCE_TYPE and request.id not in self.mocks.stack_outputs:
            # Answer with no outputs and end the run with the gap once the program has stopped (raising
            # here would fail each of the reference's outputs separately, with Pulumi's noise for each).
            self.gap = self.gap or self.mocks.stack_reference_gap(request.id)
            return resource_pb2.ReadResourceResponse(urn=urn, properties=pulumi_mocks._sync_await(
                rpc.serialize_properties({"name": request.id, "outputs": {}, "secretOutputNames": []}, {})))
        return super().ReadResource(request)

    def RegisterResourceOutputs(self, request):  # noqa: N802
        if request.urn and request.urn == self.stack_urn:
            self.stack_outputs = to_plain(json_format.MessageToDict(request.outputs)) if request.outputs else {}
        return empty_pb2.Empty()




def _provider_urn(reference: str) -> Optional[str]:
    """A provider reference is `<urn>::<id>`; the plan names the provider by its URN."""
    return reference.rsplit("::", 1)[0] if reference else None


def _digest(member: Any) -> Any:
    """An archive member in a plan: `sha256:<hex>` of a text asset's content (as Pulumi hashes assets to see a
    change), else its plain form (a file's path, a nested archive)."""
    if isinstance(member, dict) and member.get(rpc._special_sig_key) == rpc._special_asset_sig \
            and isinstance(member.get("text"), str):
        return "sha256:" + hashlib.sha256(member["text"].encode("utf-8")).hexdigest()
    return to_plain(member)


def to_plain(value: Any) -> Any:
    """Decode Pulumi's wire format into plan values: secrets masked, whole numbers as integers."""
    if isinstance(value, dict):
        sig = value.get(rpc._special_sig_key)
        if sig == rpc._special_secret_sig:
            return SECRET
        if sig == rpc._special_resource_sig:
            return value.get("urn")
        if sig == rpc._special_asset_sig:
            return {"asset": value.get("path") or value.get("uri") or value.get("text")}
        if sig == rpc._special_archive_sig:
            assets = value.get("assets")
            if assets:  # each member by its content's digest, so a changed function's code shows in a diff
                return {"archive": {name: _digest(assets[name]) for name in sorted(assets)}}
            return {"archive": value.get("path") or value.get("uri") or []}
        if sig == rpc._special_output_value_sig:
            return SECRET if value.get("secret") else to_plain(value.get("value"))
        return {key: to_plain(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [to_plain(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value == rpc.UNKNOWN:
        return "[unknown]"
    return value


@contextlib.contextmanager
def _construction_order() -> Iterator[dict[tuple[str, str], int]]:
    """Number resources in the order the program constructs them.

    RegisterResource calls arrive as Pulumi's runtime resolves each resource's inputs, an order that
    follows its task scheduling; the order in which constructors run does not. The plan lists resources
    in that order.
    """
    order: dict[tuple[str, str], int] = {}
    original = pulumi.Resource.__init__

    def numbered_init(self, t, name, *args, **kwargs):
        order.setdefault((t, name), len(order))
        return original(self, t, name, *args, **kwargs)

    pulumi.Resource.__init__ = numbered_init
    try:
        yield order
    finally:
        pulumi.Resource.__init__ = original


@contextlib.contextmanager
def _no_source_positions() -> Iterator[None]:
    """Skip the call-stack capture Pulumi attaches to every registration.

    The real engine stores it as each resource's source position; the plan does not carry it, and
    under mocks it only costs time and memory: a walk of the Python stack (reading source lines)
    and a protobuf stack trace per resource, held until the registration is served (~6 KB a
    resource, 20 MB for a 100-model production stack).
    """
    original = pulumi_resource._get_stack_trace
    pulumi_resource._get_stack_trace = source_pb2.StackTrace
    try:
        yield
    finally:
        pulumi_resource._get_stack_trace = original


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.levelname.lower()}: {record.getMessage()}")


@dataclass
class RunResult:
    plan: Plan
    diagnostics: list[str] = field(default_factory=list)
    sdk_type_aliases: dict[str, list[str]] = field(default_factory=dict)
    """Type -> the other tokens its resources were aliased from (the SDKs' own type renames, and any a program
    declared); the plan leaves out those the catalogue lists."""


def run_program(
    project_dir: Path,
    project: str,
    stack: str,
    config: dict[str, str],
    secret_keys: list[str],
    identity: AwsIdentity,
    context: Optional[Callable[[], contextlib.AbstractContextManager]] = None,
    stack_outputs: Optional[dict[str, dict[str, Any]]] = None,
    on_register: Optional[Callable[[int], None]] = None,
) -> RunResult:
    """Run `<project_dir>/infra` under truthful mocks and return what it would create.

    `context`, if given, is entered around the program (e.g. to choose how model sources resolve).
    `stack_outputs` answers the program's stack references: fully qualified stack name
    (`organization/emlops/shared`) to that stack's outputs (e.g. from previewing it).
    `on_register` is told how many resources are registered after each registration (progress).
    """
    program = str(project_dir / "infra")
    return run_function(
        lambda: runpy.run_path(program, run_name="__main__"),
        project=project, stack=stack, config=config, secret_keys=secret_keys, identity=identity,
        root_directory=project_dir, context=context, stack_outputs=stack_outputs, on_register=on_register,
    )


def run_function(
    program: Callable[[], Any],
    *,
    identity: AwsIdentity,
    project: str = "emlops",
    stack: str = "test",
    config: Optional[dict[str, str]] = None,
    secret_keys: Optional[list[str]] = None,
    root_directory: Optional[Path] = None,
    context: Optional[Callable[[], contextlib.AbstractContextManager]] = None,
    stack_outputs: Optional[dict[str, dict[str, Any]]] = None,
    on_register: Optional[Callable[[int], None]] = None,
) -> RunResult:
    """Run `program` as a Pulumi program under truthful mocks (component tests use this directly).

    Each run gets a fresh context, so several runs can share one process. While it runs, the garbage
    collector makes young collections only (`collector.py`).
    """
    with young_collections_only():
        return contextvars.Context().run(
            _run_isolated, program, project, stack, config or {}, secret_keys or [], identity, root_directory,
            context or contextlib.nullcontext, stack_outputs or {}, on_register,
        )


def _run_isolated(program, project, stack, config, secret_keys, identity, root_directory, context,
                  stack_outputs, on_register) -> RunResult:
    mocks = TruthfulMocks(identity, stack_outputs)
    monitor = RecordingMonitor(mocks)
    monitor.on_register = on_register
    collector = _Collector()
    logger = logging.getLogger(f"emlops.offline.preview.{stack}")
    logger.propagate = False
    logger.handlers = [collector]
    settings = pulumi_mocks.MockSettings(
        monitor=monitor,
        monitor_features=set(monitor.GetDeploymentInfo(empty_pb2.Empty()).supportedFeatures),
        engine=pulumi_mocks.MockEngine(logger),
        project=project,
        stack=stack,
        dry_run=False,  # outputs resolve to the mocks' values, as after `pulumi up`
        organization=ORGANIZATION,
        callbacks=None,
        root_directory=str(root_directory or Path.cwd()),
    )
    configure(settings)
    set_all_config(config, secret_keys)
    forget_earlier_runs()

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.set_default_executor(ServedInPlace())  # the mocks answer in the program's thread (in_place.py)
    try:
        with _construction_order() as order, _no_source_positions(), answers_in_place(), context():
            try:
                loop.run_until_complete(run_in_stack(settled(program)))
            except Exception:
                if monitor.gap is not None:  # what the program failed on is the gap, not its own doing
                    raise monitor.gap from None
                raise
            if monitor.gap is not None:
                raise monitor.gap
    finally:
        cancel_what_is_left(loop)
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
        asyncio.set_event_loop(None)
        for thread_loop in monitor.thread_loops:
            thread_loop.close()

    def position(item: _Recorded) -> tuple[int, str]:
        return (order.get(item.key, len(order)), item.resource.urn)

    resources = [item.resource for item in sorted(monitor.recorded.values(), key=position)]
    plan = Plan(project=project, stack=stack, resources=resources, outputs=monitor.stack_outputs)
    return RunResult(plan=plan, diagnostics=collector.messages, sdk_type_aliases=monitor.sdk_type_aliases)
