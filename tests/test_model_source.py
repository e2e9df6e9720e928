"""Model sources: MLflow against a real local registry, model packages against moto, the offline
resolver's explicit unknowns, the resolver context, and the cheap import."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from emlops.offline.resolver import OfflineResolver
from emlops.program.sources import (
    LiveResolver,
    ModelSource,
    ModelSourceError,
    ResolvedModel,
    current_resolver,
    use_resolver,
)
from tests.conftest import ACCOUNT, REGION, ROOT

# mlflow's own sqlalchemy models use a loader strategy sqlalchemy 2 deprecates
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning")

BUCKET = "s3://ml-artifacts-bucket/mlflow"
GROUP_REF = "model-package-group/churn (latest Approved)"
NO_RESOLVER = (
    "no model source resolver is set; run the program inside "
    "use_resolver(LiveResolver(...)) or use_resolver(OfflineResolver(...)) (emlops.offline.resolver)"
)


def error_of(resolve: Callable[[], Any], kind: type[Exception] = ModelSourceError) -> str:
    with pytest.raises(kind) as caught:
        resolve()
    message = str(caught.value)
    assert "\n" not in message
    return message


def package_arn(group: str, version: int) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{group}/{version}"


def test_source_needs_exactly_one_field() -> None:
    assert error_of(ModelSource, ValueError) == (
        "a model source needs exactly one of mlflow, model_package_group, model_package_arn, s3_uri, "
        "pending_package_group; got none"
    )
    assert error_of(lambda: ModelSource(mlflow="models:/churn@champion", s3_uri="s3://b/m.tar.gz"), ValueError) == (
        "a model source needs exactly one of mlflow, model_package_group, model_package_arn, s3_uri, "
        "pending_package_group; got mlflow and s3_uri"
    )


def test_references() -> None:
    assert ModelSource(mlflow="models:/churn@champion").reference == "models:/churn@champion"
    assert ModelSource(model_package_group="churn").reference == GROUP_REF
    assert ModelSource(model_package_arn=package_arn("churn", 3)).reference == package_arn("churn", 3)
    assert ModelSource(s3_uri="s3://models-bucket/churn/").reference == "s3://models-bucket/churn/"


def test_error_is_one_line_value_error_and_pickles() -> None:
    error = ModelSourceError("churn", "models:/churn@champion", "MLflow said\n  something\tlong")
    assert isinstance(error, ValueError)
    assert str(error) == "model 'churn': models:/churn@champion: MLflow said something long"
    assert str(pickle.loads(pickle.dumps(error))) == str(error)
    leaky = ModelSourceError("churn", "models:/churn/1", "GET https://user:s3cret@mlflow.example.com/api failed")
    assert str(leaky) == "model 'churn': models:/churn/1: GET https://mlflow.example.com/api failed"


@pytest.mark.parametrize("resolver", [OfflineResolver(), LiveResolver(REGION)], ids=["offline", "live"])
def test_s3_resolves_as_itself(resolver: Any) -> None:
    tarball, prefix = "s3://models-bucket/churn/v3/model.tar.gz", "s3://models-bucket/churn/v3/"
    assert resolver.resolve("churn", ModelSource(s3_uri=tarball)) == ResolvedModel(tarball, tarball, True)
    assert resolver.resolve("churn", ModelSource(s3_uri=prefix)) == ResolvedModel(prefix, prefix, False)
    assert error_of(lambda: resolver.resolve("churn", ModelSource(s3_uri="s3://models-bucket/churn/model"))) == (
        "model 'churn': s3://models-bucket/churn/model: must be a .tar.gz object or a prefix ending in '/'"
    )
    for bad in ("s3://Models_Bucket/model.tar.gz", "s3://models-bucket", "https://models-bucket/m.tar.gz"):
        assert error_of(lambda: resolver.resolve("churn", ModelSource(s3_uri=bad))) == (
            f"model 'churn': {bad}: not an S3 URI (s3://<bucket>/<key>)"
        )


class Registry:
    """A sqlite MLflow registry whose versions point at S3 (no artifact is uploaded)."""

    def __init__(self, root: Path, uri: str) -> None:
        from mlflow import MlflowClient

        self.uri = uri
        self.local_source = str(root / "local" / "model")
        client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        experiment = client.create_experiment("churn-training", artifact_location=BUCKET)
        client.create_registered_model("churn")
        add = lambda source, **kw: client.create_model_version("churn", source=source, run_id=None, **kw).version
        assert add(f"{BUCKET}/1/abc/artifacts/model") == 1
        assert add(f"{BUCKET}/1/def/artifacts/model/") == 2
        assert add(self.local_source) == 3
        self.run_id = client.create_run(experiment).info.run_id
        from_run = client.create_model_version("churn", source=f"runs:/{self.run_id}/model", run_id=self.run_id)
        assert from_run.version == 4
        # MLflow 3 registers logged models as `models:/m-<id>`; the SQL store looks the logged model up
        # through the *global* tracking URI (a TODO in mlflow), so point that at this registry meanwhile.
        with pytest.MonkeyPatch.context() as env:
            env.setenv("MLFLOW_TRACKING_URI", self.uri)
            logged = client.create_logged_model(experiment_id=experiment, name="model")
            assert add(f"models:/{logged.model_id}", model_id=logged.model_id) == 5
        self.logged_location = logged.artifact_location
        assert add(f"{BUCKET}/1/ghi/artifacts/model.tar.gz") == 6
        for alias, version in (("champion", 2), ("local", 3), ("from-run", 4), ("logged", 5), ("tarball", 6)):
            client.set_registered_model_alias("churn", alias, version)
        client.create_registered_model("fraud")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, new_mlflow_store) -> Registry:
    root = tmp_path_factory.mktemp("mlflow")
    return Registry(root, new_mlflow_store(root))


@pytest.fixture(params=["live", "offline"])
def mlflow_resolver(request: pytest.FixtureRequest, registry: Registry) -> Any:
    """Both resolvers, since the offline preview runs the same MLflow code path when given a registry."""
    if request.param == "live":
        return LiveResolver(REGION, mlflow_tracking_uri=registry.uri)
    return OfflineResolver(mlflow_uri=registry.uri)


def test_mlflow_by_alias_and_version(mlflow_resolver: Any) -> None:
    resolve = lambda ref: mlflow_resolver.resolve("churn", ModelSource(mlflow=ref))
    assert resolve("models:/churn@champion") == ResolvedModel(
        "models:/churn@champion", f"{BUCKET}/1/def/artifacts/model/", compressed=False
    )
    assert resolve("models:/churn/1") == ResolvedModel("models:/churn/1", f"{BUCKET}/1/abc/artifacts/model/", False)
    assert resolve("models:/churn@tarball") == ResolvedModel(
        "models:/churn@tarball", f"{BUCKET}/1/ghi/artifacts/model.tar.gz", compressed=True
    )


def test_mlflow_indirect_sources_resolve_to_their_storage(mlflow_resolver: Any, registry: Registry) -> None:
    """A version registered from runs:/ keeps that as its download URI; one from a logged model has the
    logged model's S3 location as its storage location."""
    from_run = mlflow_resolver.resolve("churn", ModelSource(mlflow="models:/churn@from-run"))
    assert from_run.artifact_uri == f"{BUCKET}/{registry.run_id}/artifacts/model/"
    logged = mlflow_resolver.resolve("churn", ModelSource(mlflow="models:/churn@logged"))
    assert registry.logged_location.startswith(f"{BUCKET}/models/m-")
    assert logged == ResolvedModel("models:/churn@logged", registry.logged_location + "/", compressed=False)


@pytest.mark.parametrize("ref, problem", [
    ("models:/churn@challenger", "registered model 'churn' has no alias 'challenger'"),
    ("models:/fraud@champion", "registered model 'fraud' has no alias 'champion'"),
    ("models:/nope@champion", "no registered model named 'nope'"),
    ("models:/nope/1", "no registered model named 'nope'"),
    ("models:/churn/70", "registered model 'churn' has no version 70"),
    ("models:/churn", "an MLflow source is models:/<name>@<alias> or models:/<name>/<version>"),
    ("models:/churn/Production", "an MLflow source is models:/<name>@<alias> or models:/<name>/<version>"),
    ("runs:/abc/model", "an MLflow source is models:/<name>@<alias> or models:/<name>/<version>"),
])
def test_mlflow_errors(mlflow_resolver: Any, ref: str, problem: str) -> None:
    assert error_of(lambda: mlflow_resolver.resolve("churn", ModelSource(mlflow=ref))) == (
        f"model 'churn': {ref}: {problem}"
    )


def test_mlflow_version_outside_s3(mlflow_resolver: Any, registry: Registry) -> None:
    assert error_of(lambda: mlflow_resolver.resolve("churn", ModelSource(mlflow="models:/churn@local"))) == (
        f"model 'churn': models:/churn@local: version 3 is stored at {registry.local_source}, not in S3; "
        "SageMaker can only load models from S3"
    )


def test_live_mlflow_needs_a_tracking_uri() -> None:
    assert error_of(lambda: LiveResolver(REGION).resolve("churn", ModelSource(mlflow="models:/churn@champion"))) == (
        "model 'churn': models:/churn@champion: no MLflow tracking URI configured (registry.mlflow_tracking_uri)"
    )


def test_unreachable_mlflow_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    resolver = LiveResolver(REGION, mlflow_tracking_uri="http://127.0.0.1:1")
    message = error_of(lambda: resolver.resolve("churn", ModelSource(mlflow="models:/churn@champion")))
    assert message.startswith(
        "model 'churn': models:/churn@champion: MLflow at http://127.0.0.1:1 failed: API request to "
        "http://127.0.0.1:1/api/2.0/mlflow/registered-models/alias failed with exception"
    )
    assert message.endswith('Connection refused"))') and len(message) < 360


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_SESSION_TOKEN", "testing"), ("AWS_DEFAULT_REGION", REGION)):
        monkeypatch.setenv(name, value)
    from moto import mock_aws

    with mock_aws():
        yield


IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/churn-inference:1.4"


def container(model_data: dict[str, Any]) -> dict[str, Any]:
    image = IMAGE
    return {"Containers": [{"Image": image, **model_data}], "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"]}


class Packages:
    """Model package groups in moto, built through the same boto3 API the registry's users call."""

    def __init__(self) -> None:
        import boto3

        self.client = boto3.client("sagemaker", region_name=REGION)

    def group(self, name: str) -> None:
        self.client.create_model_package_group(ModelPackageGroupName=name)

    def add(self, group: str, status: str, model_data: dict[str, Any] | None = None) -> str:
        version = len(self.client.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]) + 1
        data = model_data or {"ModelDataUrl": f"s3://models-bucket/{group}/v{version}/model.tar.gz"}
        return self.client.create_model_package(
            ModelPackageGroupName=group, InferenceSpecification=container(data), ModelApprovalStatus=status
        )["ModelPackageArn"]

    def approve(self, arn: str) -> None:
        self.client.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")


@pytest.fixture
def packages(aws: None) -> Packages:
    """churn: v1 Approved, v2 Pending (approved after v5 exists), v3 Approved and uncompressed,
    v4 Rejected, v5 Pending; fraud: one Pending package."""
    made = Packages()
    made.group("churn")
    v3_data = {"ModelDataSource": {"S3DataSource": {
        "S3Uri": "s3://models-bucket/churn/v3/", "S3DataType": "S3Prefix", "CompressionType": "None"}}}
    for status, data in (("Approved", None), ("PendingManualApproval", None), ("Approved", v3_data),
                         ("Rejected", None), ("PendingManualApproval", None)):
        made.add("churn", status, data)
    made.approve(package_arn("churn", 2))
    made.group("fraud")
    made.add("fraud", "PendingManualApproval")
    return made


def test_group_resolves_to_latest_created_approved_package(packages: Packages) -> None:
    """v5 is newer but pending, v2 was approved last but created before v3: v3 is the one."""
    assert LiveResolver(REGION).resolve("churn", ModelSource(model_package_group="churn")) == ResolvedModel(
        GROUP_REF, "s3://models-bucket/churn/v3/", compressed=False, model_package_arn=package_arn("churn", 3),
        image_uri=IMAGE,
    )


def test_group_answer_is_stable_within_a_run(packages: Packages) -> None:
    resolver, source = LiveResolver(REGION), ModelSource(model_package_group="churn")
    assert resolver.resolve("churn", source).model_package_arn == package_arn("churn", 3)
    packages.approve(package_arn("churn", 5))
    assert resolver.resolve("churn", source).model_package_arn == package_arn("churn", 3)
    assert LiveResolver(REGION).resolve("churn", source) == ResolvedModel(
        GROUP_REF, "s3://models-bucket/churn/v5/model.tar.gz", compressed=True,
        model_package_arn=package_arn("churn", 5), image_uri=IMAGE,
    )


def test_group_errors(packages: Packages) -> None:
    resolve = lambda group: LiveResolver(REGION).resolve("churn", ModelSource(model_package_group=group))
    assert error_of(lambda: resolve("fraud")) == (
        "model 'churn': model-package-group/fraud (latest Approved): no Approved package in model package group 'fraud'"
    )
    assert error_of(lambda: resolve("nope")) == (
        "model 'churn': model-package-group/nope (latest Approved): no model package group named 'nope'"
    )


def test_pinned_package(packages: Packages) -> None:
    import boto3

    arn = package_arn("churn", 1)
    resolver = LiveResolver(REGION, boto3_session=boto3.session.Session(region_name=REGION))
    assert resolver.resolve("churn", ModelSource(model_package_arn=arn)) == ResolvedModel(
        arn, "s3://models-bucket/churn/v1/model.tar.gz", compressed=True, model_package_arn=arn, image_uri=IMAGE
    )


@pytest.mark.parametrize("version, problem", [
    (5, "package is PendingManualApproval, not Approved"),
    (4, "package is Rejected, not Approved"),
    (99, "no such model package"),
])
def test_pinned_package_errors(packages: Packages, version: int, problem: str) -> None:
    arn = package_arn("churn", version)
    assert error_of(lambda: LiveResolver(REGION).resolve("churn", ModelSource(model_package_arn=arn))) == (
        f"model 'churn': {arn}: {problem}"
    )


@pytest.mark.parametrize("resolver", [OfflineResolver(), LiveResolver(REGION)], ids=["offline", "live"])
def test_malformed_package_arn(resolver: Any) -> None:
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/churn"
    assert error_of(lambda: resolver.resolve("churn", ModelSource(model_package_arn=arn))) == (
        f"model 'churn': {arn}: not a versioned model package ARN "
        "(arn:<partition>:sagemaker:<region>:<account>:model-package/<group>/<version>)"
    )


def test_no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """botocore's own credential chain, kept off the network (no instance metadata, no config files)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    assert error_of(lambda: LiveResolver(REGION).resolve("churn", ModelSource(model_package_group="churn"))) == (
        f"model 'churn': {GROUP_REF}: cannot reach SageMaker in eu-west-1: Unable to locate credentials"
    )


def test_unreachable_sagemaker(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_ENDPOINT_URL_SAGEMAKER", "http://127.0.0.1:1"), ("AWS_MAX_ATTEMPTS", "1"),
                        ("NO_PROXY", "127.0.0.1"), ("no_proxy", "127.0.0.1")):
        monkeypatch.setenv(name, value)
    arn = package_arn("churn", 1)
    assert error_of(lambda: LiveResolver(REGION).resolve("churn", ModelSource(model_package_arn=arn))) == (
        f"model 'churn': {arn}: cannot reach SageMaker in eu-west-1: "
        'Could not connect to the endpoint URL: "http://127.0.0.1:1/"'
    )


def test_access_denied_is_one_line(aws: None) -> None:
    """moto enforces IAM after the first actions; its AccessDenied body is multi-line XML, which the
    message must flatten (real SageMaker answers AccessDeniedException in JSON)."""
    import boto3
    from moto.core import set_initial_no_auth_action_count

    @set_initial_no_auth_action_count(2)
    def denied() -> str:
        iam = boto3.client("iam", region_name=REGION)
        iam.create_user(UserName="deployer")
        key = iam.create_access_key(UserName="deployer")["AccessKey"]
        session = boto3.session.Session(aws_access_key_id=key["AccessKeyId"],
                                        aws_secret_access_key=key["SecretAccessKey"], region_name=REGION)
        source = ModelSource(model_package_arn=package_arn("churn", 1))
        return error_of(lambda: LiveResolver(REGION, boto3_session=session).resolve("churn", source))

    message = denied()
    failed = "SageMaker DescribeModelPackage in eu-west-1 failed"
    assert message.startswith(f"model 'churn': {package_arn('churn', 1)}: {failed}: ")
    assert "is not authorized to perform: sagemaker:DescribeModelPackage" in message


def test_offline_unknowns_are_explicit() -> None:
    offline = OfflineResolver()
    assert offline.resolve("churn", ModelSource(mlflow="models:/churn@champion")) == ResolvedModel(
        "models:/churn@champion", "[unknown: models:/churn@champion]", compressed=False, known=False
    )
    assert offline.resolve("churn", ModelSource(model_package_group="churn")) == ResolvedModel(
        GROUP_REF, f"[unknown: {GROUP_REF}]", compressed=False, model_package_arn=f"[unknown: {GROUP_REF}]",
        known=False, drift_baselines=(f"[unknown: {GROUP_REF} drift-check statistics]",
                                      f"[unknown: {GROUP_REF} drift-check constraints]"),
        image_uri=f"[unknown: {GROUP_REF} image]",
    )
    arn = package_arn("churn", 3)
    assert offline.resolve("churn", ModelSource(model_package_arn=arn)) == ResolvedModel(
        arn, f"[unknown: {arn}]", compressed=False, model_package_arn=arn, known=False,
        drift_baselines=(f"[unknown: {arn} drift-check statistics]", f"[unknown: {arn} drift-check constraints]"),
        image_uri=f"[unknown: {arn} image]",
    )
    assert error_of(lambda: offline.resolve("churn", ModelSource(mlflow="models:/churn"))) == (
        "model 'churn': models:/churn: an MLflow source is models:/<name>@<alias> or models:/<name>/<version>"
    )


def test_use_resolver_nests_and_restores() -> None:
    outer, inner = OfflineResolver(), LiveResolver(REGION)
    assert error_of(current_resolver, RuntimeError) == NO_RESOLVER
    with use_resolver(outer) as given:
        assert given is outer and current_resolver() is outer
        with use_resolver(inner):
            assert current_resolver() is inner
        assert current_resolver() is outer
        with pytest.raises(KeyError), use_resolver(inner):
            raise KeyError("boom")
        assert current_resolver() is outer
    assert error_of(current_resolver, RuntimeError) == NO_RESOLVER


def test_import_and_offline_resolution_stay_cheap() -> None:
    """The offline preview of a stack that names no MLflow registry must not import mlflow or boto3."""
    code = (
        "import sys\n"
        "import emlops.program.sources as m\n"
        "from emlops.offline.resolver import OfflineResolver\n"
        "loaded = [name for name in ('mlflow', 'boto3', 'botocore') if name in sys.modules]\n"
        "r = OfflineResolver()\n"
        "r.resolve('churn', m.ModelSource(model_package_group='churn'))\n"
        "r.resolve('churn', m.ModelSource(mlflow='models:/churn@champion'))\n"
        "r.resolve('churn', m.ModelSource(s3_uri='s3://models-bucket/churn/'))\n"
        "loaded += [name for name in ('mlflow', 'boto3', 'botocore') if name in sys.modules]\n"
        "print(loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout == "[]\n"


def test_a_packages_drift_check_baselines_come_with_it(aws: None) -> None:
    """Retraining registers versions with the data-quality baseline attached; serving finds it there."""
    made = Packages()
    made.group("fraud")
    stats, constraints = "s3://ml-baselines/fraud/v1/statistics.json", "s3://ml-baselines/fraud/v1/constraints.json"
    arn = made.client.create_model_package(
        ModelPackageGroupName="fraud", InferenceSpecification=container(
            {"ModelDataUrl": "s3://models-bucket/fraud/v1/model.tar.gz"}),
        ModelApprovalStatus="Approved",
        DriftCheckBaselines={"ModelDataQuality": {
            "Statistics": {"ContentType": "application/json", "S3Uri": stats},
            "Constraints": {"ContentType": "application/json", "S3Uri": constraints}}},
    )["ModelPackageArn"]
    resolved = LiveResolver(REGION).resolve("fraud", ModelSource(model_package_group="fraud"))
    assert (resolved.model_package_arn, resolved.drift_baselines) == (arn, (stats, constraints))
    other = Packages()
    other.group("churn")
    other.add("churn", "Approved")
    assert LiveResolver(REGION).resolve("churn", ModelSource(model_package_group="churn")).drift_baselines is None


def test_look_ups_run_as_the_stacks_deploy_role(packages: Packages) -> None:
    """Like the stack's provider, package look-ups assume the deploy role in the stack's account."""
    role = f"arn:aws:iam::{ACCOUNT}:role/emlops-deploy"
    resolver = LiveResolver(REGION, role_arn=role)
    assert resolver.resolve("churn", ModelSource(model_package_group="churn")).model_package_arn == (
        package_arn("churn", 3))
    credentials = resolver._sagemaker._request_signer._credentials
    assert credentials.access_key.startswith("ASIA")  # temporary credentials of the assumed role


def test_a_group_of_another_account_is_named_by_its_arn(packages: Packages) -> None:
    """A shared registry's group is looked up by its ARN (what the environments pass); moto holds it here."""
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/churn"
    source = ModelSource(model_package_group=arn)
    assert source.reference == f"{arn} (latest Approved)"
    resolved = LiveResolver(REGION).resolve("churn", source)
    assert (resolved.reference, resolved.model_package_arn, resolved.image_uri) == (
        f"{arn} (latest Approved)", package_arn("churn", 3), IMAGE)
    missing = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/nope"
    assert error_of(lambda: LiveResolver(REGION).resolve("churn", ModelSource(model_package_group=missing))) == (
        f"model 'churn': {missing} (latest Approved): no model package group named {missing!r}")
