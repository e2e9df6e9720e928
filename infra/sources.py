"""Where a deployed model comes from: an MLflow alias or version, a SageMaker model package, or S3.

A source is resolved when the program runs (preview or deploy), never at import, so a stack always
deploys what the registry says *now*. `pulumi up` resolves through `LiveResolver` (MLflow + boto3);
the offline preview through its own resolver (`emlops.offline.resolver`), which shows whatever needs
AWS as unknown (`known=False`) instead of inventing a value. mlflow and boto3 are imported inside the functions
that use them: importing mlflow alone costs ~2 s, and a stack that names only S3 must not pay it.
"""

from __future__ import annotations

import contextlib
import re
from contextvars import ContextVar
from dataclasses import dataclass, fields
from typing import Any, Iterator, Optional, Protocol

_S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+")
_MLFLOW_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>[0-9]+))$")
_PACKAGE_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:model-package/[^/]+/[0-9]+$")
_RUNS_URI = re.compile(r"^runs:/(?P<run_id>[^/]+)/(?P<path>.+)$")
_LOGGED_MODEL_URI = re.compile(r"^models:/(?P<model_id>m-[0-9a-f]+)/?$")
_MISSING_CODES = ("ResourceNotFound", "ResourceNotFoundException")
APPROVED, PENDING = "Approved", "PendingManualApproval"


@dataclass(frozen=True)
class ModelSource:
    """Exactly one field set (the config layer validates that; still raise ValueError here if not)."""

    mlflow: Optional[str] = None
    """`models:/<name>@<alias>` or `models:/<name>/<version>`."""
    model_package_group: Optional[str] = None
    """The latest Approved package of this SageMaker model package group."""
    model_package_arn: Optional[str] = None
    """A pinned package: `arn:<partition>:sagemaker:<region>:<acct>:model-package/<group>/<version>`."""
    s3_uri: Optional[str] = None
    """An explicit artifact: `s3://bucket/key` (a .tar.gz object, or a prefix ending in `/`)."""
    pending_package_group: Optional[str] = None
    """The newest package of this group that waits for manual approval (a shadow test's challenger)."""

    def __post_init__(self) -> None:
        given = [f.name for f in fields(self) if getattr(self, f.name) is not None]
        if len(given) != 1:
            got = " and ".join(given) if given else "none"
            raise ValueError(
                "a model source needs exactly one of mlflow, model_package_group, model_package_arn, s3_uri, "
                f"pending_package_group; got {got}"
            )

    @property
    def reference(self) -> str:
        """How errors and unknowns name this source."""
        if self.model_package_group is not None:
            if self.model_package_group.startswith("arn:"):  # a group of another account (a shared registry)
                return f"{self.model_package_group} (latest Approved)"
            return f"model-package-group/{self.model_package_group} (latest Approved)"
        if self.pending_package_group is not None:
            group = self.pending_package_group
            return f"{group if group.startswith('arn:') else 'model-package-group/' + group} (newest {PENDING})"
        return str(self.mlflow or self.model_package_arn or self.s3_uri)


@dataclass(frozen=True)
class ResolvedModel:
    """What SageMaker needs to create a Model from a source."""

    reference: str
    artifact_uri: str
    """`s3://...` when known, else what the offline preview shows in its place."""
    compressed: bool
    """True: a single .tar.gz object (ModelDataUrl). False: an S3 prefix of uncompressed files
    (ModelDataSource S3Prefix, CompressionType None), as MLflow model directories are. False when
    `known` is False: nothing is claimed about an artifact nobody looked at."""
    model_package_arn: Optional[str] = None
    """Set for package sources: the SageMaker Model then references the package. An offline group
    look-up sets it to the preview's unknown value so the plan still shows a package is used."""
    known: bool = True
    """False when the artifact could not be looked up (offline)."""
    drift_baselines: Optional[tuple[str, str]] = None
    """Package sources: the package's data-quality drift-check baselines (statistics, constraints
    `s3://` URIs), which retraining attaches when it registers a version; None when the package has
    none. Offline they are unknown (`known` is False)."""
    image_uri: Optional[str] = None
    """Package sources: the image of the package's first container, which the endpoint's role pulls.
    Offline it is unknown (`known` is False)."""


class ModelSourceError(ValueError):
    """One line: `model 'churn': models:/churn@champion: <what is wrong>`."""

    def __init__(self, model: str, reference: str, problem: str) -> None:
        self.model, self.reference, self.problem = model, reference, _one_line(problem)
        super().__init__(f"model {model!r}: {reference}: {self.problem}")

    def __reduce__(self) -> Any:
        return (type(self), (self.model, self.reference, self.problem))


def _one_line(text: str, limit: int = 300) -> str:
    """Collapse a service's (often multi-line) message and drop credentials embedded in URLs. A long
    message keeps its head (what failed) and its tail (why: "... Connection refused")."""
    text = re.sub(r"//[^/@\s]+@", "//", " ".join(str(text).split()))
    return text if len(text) <= limit else f"{text[: limit // 2].rstrip()} ... {text[-(limit // 2 - 5):].lstrip()}"


def resolve_s3(model: str, source: ModelSource) -> ResolvedModel:
    uri = str(source.s3_uri)
    if not _S3_URI.match(uri):
        raise ModelSourceError(model, uri, "not an S3 URI (s3://<bucket>/<key>)")
    if not uri.endswith(".tar.gz") and not uri.endswith("/"):
        raise ModelSourceError(model, uri, "must be a .tar.gz object or a prefix ending in '/'")
    return ResolvedModel(uri, uri, compressed=uri.endswith(".tar.gz"))


def parse_mlflow(model: str, ref: str) -> re.Match[str]:
    parsed = _MLFLOW_URI.match(ref)
    if parsed is None:
        raise ModelSourceError(model, ref, "an MLflow source is models:/<name>@<alias> or models:/<name>/<version>")
    return parsed


def check_package_arn(model: str, arn: str) -> None:
    if not _PACKAGE_ARN.match(arn):
        raise ModelSourceError(
            model, arn,
            "not a versioned model package ARN "
            "(arn:<partition>:sagemaker:<region>:<account>:model-package/<group>/<version>)",
        )


class MlflowRegistry:
    """The one MLflow code path both resolvers share (the offline preview may point at a local registry)."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The MLflow client of this registry, made on first use."""
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client

    def version(self, model: str, ref: str) -> Any:
        """The model version (an `mlflow.entities.model_registry.ModelVersion`) `ref` names now, by alias or number;
        ModelSourceError (one line) when the model, alias or version does not exist or MLflow fails."""
        from mlflow.exceptions import MlflowException

        parsed = parse_mlflow(model, ref)
        name, alias, version = parsed["name"], parsed["alias"], parsed["version"]
        try:
            client = self.client
            try:
                if alias:
                    return client.get_model_version_by_alias(name, alias)
                return client.get_model_version(name, version)
            except MlflowException as e:
                raise self._missing(model, ref, e, name, alias, version) from None
        except MlflowException as e:
            raise ModelSourceError(model, ref, f"MLflow at {self.tracking_uri} failed: {e}") from None

    def resolve(self, model: str, source: ModelSource) -> ResolvedModel:
        from mlflow.exceptions import MlflowException

        ref = str(source.mlflow)
        mv = self.version(model, ref)
        try:
            uri = self._underlying(self.client, self.client.get_model_version_download_uri(mv.name, mv.version))
        except MlflowException as e:
            raise ModelSourceError(model, ref, f"MLflow at {self.tracking_uri} failed: {e}") from None
        if not uri.startswith("s3://"):
            where = f"version {mv.version} is stored at {uri}, not in S3"
            raise ModelSourceError(model, ref, f"{where}; SageMaker can only load models from S3")
        if uri.endswith(".tar.gz"):
            return ResolvedModel(ref, uri, compressed=True)
        return ResolvedModel(ref, uri.rstrip("/") + "/", compressed=False)

    def _missing(self, model: str, ref: str, error: Any, name: str, alias: Optional[str], version: str) -> Exception:
        """Tell "no such model" from "no such alias/version" by asking for the model itself: MLflow's codes
        and texts differ between calls and stores (the SQL store calls a missing alias INVALID_PARAMETER_VALUE,
        and a missing model looked up by version "Model Version (name=..., version=...) not found")."""
        from mlflow.exceptions import MlflowException

        absent_codes = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE") if alias else ("RESOURCE_DOES_NOT_EXIST",)
        if error.error_code not in absent_codes:
            return error
        try:
            registered = self._client.get_registered_model(name)
        except MlflowException as e:
            if e.error_code == "RESOURCE_DOES_NOT_EXIST":
                return ModelSourceError(model, ref, f"no registered model named {name!r}")
            return e
        if alias is None:
            return ModelSourceError(model, ref, f"registered model {name!r} has no version {version}")
        if alias in (registered.aliases or {}):
            return error  # the alias exists, so MLflow complained about something else: show its words
        return ModelSourceError(model, ref, f"registered model {name!r} has no alias {alias!r}")

    @staticmethod
    def _underlying(client: Any, uri: str) -> str:
        """The storage a download URI points at. MLflow 3 returns a version's `source` verbatim when it
        has no storage location, so a version registered from `runs:/<run>/<path>` (or a bare logged
        model `models:/m-...`) comes back as that indirection, not as S3."""
        runs = _RUNS_URI.match(uri)
        if runs:
            return client.get_run(runs["run_id"]).info.artifact_uri.rstrip("/") + "/" + runs["path"]
        logged = _LOGGED_MODEL_URI.match(uri)
        if logged:
            return client.get_logged_model(logged["model_id"]).artifact_location
        return uri


class LiveResolver:
    """What `pulumi up` / `pulumi preview` use: MLflow at `mlflow_tracking_uri`, SageMaker through boto3.

    Answers are cached per source so that two resources naming the same source in one run deploy the
    same artifact even if a new package is approved while the program runs.
    """

    def __init__(self, region: str, mlflow_tracking_uri: Optional[str] = None, boto3_session: Any = None,
                 role_arn: Optional[str] = None) -> None:
        self.region = region
        self.role_arn = role_arn  # the stack's deploy role: look-ups read the stack's account, as the provider does
        self._mlflow = MlflowRegistry(mlflow_tracking_uri) if mlflow_tracking_uri else None
        self._session = boto3_session
        self._sagemaker: Any = None
        self._cache: dict[ModelSource, ResolvedModel] = {}

    def resolve(self, model: str, source: ModelSource) -> ResolvedModel:
        if source not in self._cache:
            self._cache[source] = self._resolve(model, source)
        return self._cache[source]

    def _resolve(self, model: str, source: ModelSource) -> ResolvedModel:
        if source.s3_uri is not None:
            return resolve_s3(model, source)
        if source.mlflow is not None:
            if self._mlflow is None:
                raise ModelSourceError(
                    model, source.reference, "no MLflow tracking URI configured (registry.mlflow_tracking_uri)"
                )
            return self._mlflow.resolve(model, source)
        if source.model_package_arn is not None:
            check_package_arn(model, source.model_package_arn)
            return self._package(model, source.reference, source.model_package_arn)
        if source.pending_package_group is not None:
            return self._newest(model, source.reference, source.pending_package_group, PENDING)
        return self._newest(model, source.reference, str(source.model_package_group), APPROVED)

    def _call(self, model: str, ref: str, operation: str, missing: str, **kwargs: Any) -> dict[str, Any]:
        """One SageMaker call, with every botocore failure turned into a one-line ModelSourceError."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if self._sagemaker is None:
                import boto3

                session = self._session or boto3.session.Session()
                if self.role_arn:
                    credentials = session.client("sts", region_name=self.region).assume_role(
                        RoleArn=self.role_arn, RoleSessionName="emlops-model-lookup")["Credentials"]
                    session = boto3.session.Session(
                        aws_access_key_id=credentials["AccessKeyId"],
                        aws_secret_access_key=credentials["SecretAccessKey"],
                        aws_session_token=credentials["SessionToken"])
                self._sagemaker = session.client("sagemaker", region_name=self.region)
            return getattr(self._sagemaker, operation)(**kwargs)
        except ClientError as e:
            error = e.response.get("Error", {})
            code, message = error.get("Code", "Unknown"), error.get("Message", "")
            # SageMaker reports missing packages and groups as ValidationException ("... does not exist").
            said_missing = code == "ValidationException" and re.search("does not exist|not found", message)
            if code in _MISSING_CODES or said_missing:
                raise ModelSourceError(model, ref, missing) from None
            failed = f"SageMaker {e.operation_name} in {self.region} failed"
            raise ModelSourceError(model, ref, f"{failed}: {code}: {message}") from None
        except BotoCoreError as e:
            raise ModelSourceError(model, ref, f"cannot reach SageMaker in {self.region}: {e}") from None

    def _newest(self, model: str, ref: str, group: str, status: str) -> ResolvedModel:
        """The newest package of `group` in `status` (Approved: what a deploy serves; pending: a challenger)."""
        missing = f"no model package group named {group!r}"
        page = self._call(
            model, ref, "list_model_packages", missing, ModelPackageGroupName=group,
            ModelApprovalStatus=status, SortBy="CreationTime", SortOrder="Descending", MaxResults=1,
        )
        summaries = page.get("ModelPackageSummaryList", [])
        if not summaries:
            # ListModelPackages answers an empty list for a group that does not exist: ask for the group.
            self._call(model, ref, "describe_model_package_group", missing, ModelPackageGroupName=group)
            raise ModelSourceError(model, ref, f"no {status} package in model package group {group!r}")
        return self._package(model, ref, summaries[0]["ModelPackageArn"], status)

    def _package(self, model: str, ref: str, arn: str, expected: str = APPROVED) -> ResolvedModel:
        package = self._call(model, ref, "describe_model_package", "no such model package", ModelPackageName=arn)
        status = package.get("ModelApprovalStatus")
        if status != expected:  # unversioned (marketplace-style) packages have no status at all
            raise ModelSourceError(model, ref, f"package is {status or 'without an approval status'}, not {expected}")
        containers = package.get("InferenceSpecification", {}).get("Containers") or [{}]
        container = containers[0]
        s3 = container.get("ModelDataSource", {}).get("S3DataSource", {})
        if "ModelDataUrl" in container:
            uri, compressed = container["ModelDataUrl"], True
        elif "S3Uri" in s3:
            uri, compressed = s3["S3Uri"], s3.get("CompressionType") == "Gzip"
        else:
            problem = "package has no model artifact (ModelDataUrl or ModelDataSource) in its first container"
            raise ModelSourceError(model, ref, problem)
        quality = package.get("DriftCheckBaselines", {}).get("ModelDataQuality", {})
        statistics = quality.get("Statistics", {}).get("S3Uri")
        constraints = quality.get("Constraints", {}).get("S3Uri")
        baselines = (statistics, constraints) if statistics and constraints else None
        return ResolvedModel(ref, uri, compressed, model_package_arn=package["ModelPackageArn"],
                             drift_baselines=baselines, image_uri=container.get("Image"))


class Resolver(Protocol):
    """Resolves a model's source: `LiveResolver` for `pulumi up`, the offline engine's for `emlops preview`."""

    def resolve(self, model: str, source: ModelSource) -> ResolvedModel: ...

_RESOLVER: ContextVar[Optional[Resolver]] = ContextVar("emlops_model_source_resolver", default=None)


def current_resolver() -> Resolver:
    """The resolver the running program was given; components ask for it instead of taking one as an
    argument, so the same program serves `pulumi up` and the offline preview."""
    resolver = _RESOLVER.get()
    if resolver is None:
        raise RuntimeError(
            "no model source resolver is set; run the program inside "
            "use_resolver(LiveResolver(...)) or use_resolver(OfflineResolver(...)) (emlops.offline.resolver)"
        )
    return resolver


@contextlib.contextmanager
def use_resolver(resolver: Resolver) -> Iterator[Resolver]:
    """Make `resolver` the current one for the block; the previous one is back afterwards."""
    token = _RESOLVER.set(resolver)
    try:
        yield resolver
    finally:
        _RESOLVER.reset(token)
