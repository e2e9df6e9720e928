"""The IAM rules of a stack file: what the platform's roles and policies demand of the settings across sections.

- The deploy role stays outside the platform's own roles (the path `/emlops/<environment>/`, the name prefix
  `<environment>-`, the persona path), which platform admins change: an environment name that would put it
  among them is refused.
- Persona principals are in the stack's account or one of `personas.identity_account_ids`.
- IAM's size quotas hold before anything is deployed: each persona's trust policy (2,048 characters) and inline
  policies together (10,240), and the MLflow server role's inline policies, which grow with the settings (the
  principals, the models, feature groups and package groups). They are computed from the settings with the
  policy builders themselves, over ARNs of the lengths the deployed resources will have (names are known from the
  stack file; auto-named suffixes, key ids and EC2 ids have fixed lengths). The platform creates no managed
  policy, so IAM's 6,144-character managed-policy quota has nothing to apply to.

`rules.iam_fits_the_stack` runs them; each reports one key (`AtKey`) with IAM's limit in the message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emlops.components.aws_context import AwsContext
from emlops.components.batch_transform_args import pipeline_name as batch_pipeline_name
from emlops.components.data_pipeline_args import pipeline_name as data_pipeline_name
from emlops.components.iam import Statement, platform_role_path, policy_size
from emlops.components.personas import PersonasContext, policy_sizes
from emlops.components.personas_args import INLINE_POLICIES_LIMIT, PERSONAS, PRINCIPAL_ARN, TRUST_POLICY_LIMIT
from emlops.components.personas_policies import PERSONA_PATH
from emlops.components.registry import mlflow_registration_statements
from emlops.components.registry_args import ARTIFACT_PREFIX
from emlops.components.retraining_args import pipeline_name
from emlops.components.settings import AtKey, Governance

if TYPE_CHECKING:  # the settings that hold the sections; rules run while they validate
    from emlops.program.platform import PlatformConfig

# The fixed-length parts of names AWS or Pulumi choose: Pulumi's auto-name suffix, a KMS key id, an EC2 id's hex.
_SUFFIX, _KEY_ID, _EC2_HEX = "-0000000", "00000000-0000-4000-8000-000000000000", "0" * 17


def check(config: PlatformConfig) -> None:
    """Every IAM rule, in order; the first that fails raises `AtKey`."""
    deploy_role_outside_the_platform(config)
    principals_in_known_accounts(config)
    policies_within_iam_quotas(config)


def deploy_role_outside_the_platform(config: PlatformConfig) -> None:
    """The deploy role is none of the roles the platform creates and its admins change."""
    arn = config.deploy_role_arn
    if not arn:
        return
    role = arn.split(":", 5)[5].removeprefix("role/")
    environment = config.environment
    covered = [pattern for pattern, hit in (
        (f"role{platform_role_path(environment)}*", role.startswith(platform_role_path(environment)[1:])),
        (f"role/{environment}-*", role.startswith(f"{environment}-")),
        (f"role{PERSONA_PATH}*", role.startswith(PERSONA_PATH[1:]))) if hit]
    if covered:
        raise AtKey("environment", f"{environment!r} puts the deploy role {arn} among the platform's own roles "
                    f"({covered[0]}), which platform admins may change; choose an environment name (or a deploy "
                    "role) that keeps them apart")


def principals_in_known_accounts(config: PlatformConfig) -> None:
    """Persona principals are in the stack's account or an identity account it lists."""
    personas = config.personas
    if personas is None:
        return
    known = [config.account_id, *personas.identity_account_ids]
    for persona, arns in personas.trusted_principal_arns.items():
        for arn in arns:
            account = PRINCIPAL_ARN.match(arn).group(2)
            if account not in known:
                raise AtKey(f"personas.trusted_principal_arns.{persona}",
                            f"{arn!r} is in account {account}, neither this stack's ({config.account_id}) nor one "
                            "of personas.identity_account_ids; list the account people sign in through there")


def policies_within_iam_quotas(config: PlatformConfig) -> None:
    """Each persona's trust and inline policies, and the MLflow role's, fit IAM's quotas."""
    facts = AwsContext(config.account_id, config.region, config.partition.name)
    if config.personas is not None:
        sizes = policy_sizes(config.personas, estimated_personas_context(config), facts)
        for persona in PERSONAS:
            trust, inline = sizes[persona]
            if trust > TRUST_POLICY_LIMIT:
                listed = config.personas.trusted_principal_arns.get(persona, [])
                raise AtKey(f"personas.trusted_principal_arns.{persona}",
                            f"{len(listed)} principals make the {persona} trust policy {trust:,} characters; IAM "
                            f"allows {TRUST_POLICY_LIMIT:,} (a '*' in a name can stand for several principals)")
            if inline > INLINE_POLICIES_LIMIT:
                key, count = _largest_section(config)
                raise AtKey(key, f"{count} {key.split('.')[-1].replace('_', ' ')} make the {persona} role's inline "
                            f"policies {inline:,} characters; IAM allows {INLINE_POLICIES_LIMIT:,} per role")
    groups = [] if config.registry.shared_stack else config.registry_groups()
    if config.registry.mlflow.kind == "sagemaker" and groups:
        size = mlflow_policies_size(config, facts, groups)
        if size > INLINE_POLICIES_LIMIT:
            key = "models" if config.models else "registry.package_groups"
            raise AtKey(key, f"{len(groups)} package groups make the MLflow server role's inline policies "
                        f"{size:,} characters; IAM allows {INLINE_POLICIES_LIMIT:,} per role")


def _largest_section(config: PlatformConfig) -> tuple[str, int]:
    """The list section that adds the most resources to the persona policies, and its length."""
    sections = [("models", len(config.models)), ("feature_groups", len(config.feature_groups)),
                ("registry.package_groups", len(config.registry.package_groups)),
                ("batch_transforms", len(config.batch_transforms))]
    return max(sections, key=lambda section: section[1])


def _bucket(config: PlatformConfig, purpose: str) -> str:
    return f"arn:{config.partition.name}:s3:::{config.environment}-{purpose}-bucket{_SUFFIX}"


def estimated_personas_context(config: PlatformConfig) -> PersonasContext:
    """What `MlPlatform` gives `Personas`, as plain strings of the deployed lengths (the composition root's
    `_personas` stage with names instead of the resources' outputs)."""
    env, partition = config.environment, config.partition.name
    sagemaker = f"arn:{partition}:sagemaker:{config.region}:{config.account_id}"
    holds_data = bool(config.models or config.training or config.feature_groups or config.batch_transforms)
    training = config.training is not None and config.training.kind == "sagemaker"
    shared = config.registry.shared_stack is not None
    # a shared registry's groups are ARNs of its account: another 12 digits, the same length
    groups = config.deployed_groups() if shared else config.registry_groups()
    group_arns = [f"{sagemaker}:model-package-group/{group.lower()}" for group in groups]
    monitored = [m.name for m in config.models if m.monitored(env)]
    retrained = [m.name for m in config.models if m.retraining.enabled]
    network = config.network
    subnets: list[str] = []
    if network is not None:
        subnets = ([f"subnet-{_EC2_HEX}"] * network.managed.az_count if network.is_managed
                   else list(network.private_subnet_ids))
    return PersonasContext(
        environment=env, data_key_arn=f"arn:{partition}:kms:{config.region}:{config.account_id}:key/{_KEY_ID}",
        datasets_bucket_arn=_bucket(config, "datasets") if holds_data else None,
        artifacts_bucket_arn=_bucket(config, "artifacts"),
        feature_group_arns=[f"{sagemaker}:feature-group/{env}-features-{g.name}" for g in config.feature_groups],
        package_group_arns=[] if shared else group_arns, shared_group_arns=group_arns if shared else [],
        shared_group_publisher=shared and bool(retrained),
        endpoint_arns=[f"{sagemaker}:endpoint/{env}-{m.name}" for m in config.models],
        monitoring_schedule_arns=[f"{sagemaker}:monitoring-schedule/{env}-{name}-monitor-schedule{_SUFFIX}"
                                  for name in monitored],
        pipeline_arns=[f"{sagemaker}:pipeline/{pipeline_name(env, name)}" for name in retrained]
        + [f"{sagemaker}:pipeline/{batch_pipeline_name(env, entry.name)}" for entry in config.batch_transforms]
        + [f"{sagemaker}:pipeline/{data_pipeline_name(env, entry.name)}" for entry in config.data_pipelines],
        training_role_arn=(f"arn:{partition}:iam::{config.account_id}:role/{env}-training-training-role{_SUFFIX}"
                           if training else None),
        job_subnet_ids=subnets, job_security_group_ids=[f"sg-{_EC2_HEX}"] if training else [],
        name_prefix=f"{env}-", production=config.production,
        governance=Governance(permissions_boundary_arn=config.permission_boundary_arn))


def mlflow_policies_size(config: PlatformConfig, facts: AwsContext, groups: list[str]) -> int:
    """The MLflow server role's inline policies: its artifact store under `mlflow/` and its registrations."""
    bucket, key = _bucket(config, "artifacts"), estimated_personas_context(config).data_key_arn
    store = [Statement(actions=["s3:ListBucket"], resources=[bucket],
                       conditions={"StringLike": {"s3:prefix": [f"{ARTIFACT_PREFIX}*"]}}),
             Statement(actions=["s3:GetObject", "s3:GetObjectVersion"], resources=[f"{bucket}/{ARTIFACT_PREFIX}*"]),
             Statement(actions=["s3:AbortMultipartUpload", "s3:PutObject"], resources=[f"{bucket}/{ARTIFACT_PREFIX}*"]),
             Statement(actions=["kms:DescribeKey", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey",
                                "kms:ReEncryptFrom", "kms:ReEncryptTo"], resources=[key],
                       conditions={"StringEquals": {"kms:ViaService": facts.service_endpoint("s3")}})]
    return policy_size(store) + policy_size(mlflow_registration_statements(facts, groups))
