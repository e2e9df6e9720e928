"""Personas' permissions: the explicit action lists and the three inline-policy builders.

`components.personas` holds the component and the trust policy, `components.personas_args` its settings and
context; this module holds what each persona may do once it has assumed its role (`data-scientist`,
`ml-engineer`, `platform-admin`): the named action lists (no wildcards, each reviewed one by one) and the
functions that turn the settings and context into named lists of statements, so the permissions can be read
and reviewed on their own.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from emlops.components.aws_context import AwsContext
from emlops.components.iam import PENDING_APPROVAL_ONLY, Statement, kms_usage_statement, platform_role_path
from emlops.components.outputs import concat
from emlops.components.personas_args import PersonasContext, PersonasSettings


# Persona roles live under their own path: outside the platform's name prefix that admins manage,
# and easy to exclude from every persona's trust (no chaining from one persona into another).
PERSONA_PATH = "/personas/"
SAGEMAKER = "sagemaker.amazonaws.com"
# Deleting these loses data or history nothing can rebuild: no persona may, whatever else it is given.
STATEFUL_DELETIONS = ["kms:ScheduleKeyDeletion", "s3:DeleteBucket", "sagemaker:DeleteFeatureGroup",
                      "sagemaker:DeleteModelPackageGroup"]
KEEP_STATE = Statement(sid="KeepStatefulResources", effect="Deny", actions=STATEFUL_DELETIONS, resources=["*"])
ENDPOINT_CHANGES = ["sagemaker:CreateEndpoint", "sagemaker:CreateEndpointConfig", "sagemaker:DeleteEndpoint",
                    "sagemaker:UpdateEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities"]


def _named(service: str, names: str) -> list[str]:  # explicit action lists, without repeating the service
    return [f"{service}:{name}" for name in names.split()]


# What an admin may change on a resource that carries the platform's tags; stateless deletions only.
ADMIN_TAGGED_ACTIONS = [
    *_named("cloudwatch", "DisableAlarmActions EnableAlarmActions SetAlarmState"),
    *_named("events", "DisableRule EnableRule"),
    *_named("sagemaker", "DeleteEndpoint DeleteEndpointConfig DeleteModel DeleteMonitoringSchedule "
            "StartMlflowTrackingServer StartMonitoringSchedule StopMlflowTrackingServer StopMonitoringSchedule "
            "StopPipelineExecution StopProcessingJob StopTrainingJob UpdateEndpoint "
            "UpdateEndpointWeightsAndCapacities UpdateFeatureGroup UpdateMlflowTrackingServer "
            "UpdateMonitoringSchedule"),
]
# Key administration without use. PutKeyPolicy and CreateGrant stay out: either could hand decrypt
# to a principal the admin controls; the key policy changes only through deploys.
KEY_ADMIN_ACTIONS = _named("kms", "CancelKeyDeletion DescribeKey EnableKey EnableKeyRotation GetKeyPolicy "
                           "GetKeyRotationStatus ListGrants ListResourceTags RevokeGrant RotateKeyOnDemand "
                           "TagResource UntagResource UpdateKeyDescription")
# Configuration and metadata only, named one by one: no s3:Get*/sagemaker:Get* (they read data).
READ_ONLY_ACTIONS = [
    *_named("application-autoscaling", "DescribeScalableTargets DescribeScalingActivities DescribeScalingPolicies "
            "DescribeScheduledActions"),
    *_named("cloudwatch", "DescribeAlarms GetMetricData GetMetricStatistics ListMetrics"),
    *_named("ec2", "DescribeNetworkInterfaces DescribeSecurityGroups DescribeSubnets DescribeVpcEndpoints "
            "DescribeVpcs"),
    *_named("ecr", "DescribeImages DescribeRepositories GetLifecyclePolicy GetRepositoryPolicy"),
    *_named("eks", "DescribeCluster DescribeNodegroup ListClusters ListNodegroups"),
    *_named("events", "DescribeRule ListRules ListTargetsByRule"),
    *_named("glue", "GetDatabase GetTable GetTables"),
    *_named("iam", "GetPolicy GetPolicyVersion GetRole GetRolePolicy ListAttachedRolePolicies ListRolePolicies "
            "ListRoles"),
    *_named("kms", "ListAliases ListKeys"),
    *_named("logs", "DescribeLogGroups"),
    *_named("s3", "GetBucketLogging GetBucketOwnershipControls GetBucketPolicy GetBucketPublicAccessBlock "
            "GetBucketTagging GetBucketVersioning GetEncryptionConfiguration GetLifecycleConfiguration "
            "ListAllMyBuckets"),
    *_named("sagemaker", "DescribeDataQualityJobDefinition DescribeEndpoint DescribeEndpointConfig "
            "DescribeFeatureGroup DescribeMlflowTrackingServer DescribeModel DescribeModelPackage "
            "DescribeModelPackageGroup DescribeMonitoringSchedule DescribePipeline DescribePipelineExecution "
            "DescribeProcessingJob DescribeTrainingJob ListEndpointConfigs ListEndpoints ListFeatureGroups "
            "ListMlflowTrackingServers ListModelPackageGroups ListModelPackages ListModels "
            "ListMonitoringExecutions ListMonitoringSchedules ListPipelineExecutions ListPipelines "
            "ListProcessingJobs ListTags ListTrainingJobs"),
    *_named("sns", "GetTopicAttributes ListSubscriptionsByTopic ListTopics"),
    *_named("tag", "GetResources"),
]
# Log events are read only in the platform's own log groups (below), never in every group of the account:
# a job's or an application's log may print the data it works on.
LOG_READ_ACTIONS = _named("logs", "DescribeLogStreams FilterLogEvents GetLogEvents")
# IAM changes that grant permissions: only on roles that keep the permissions boundary (iam:PermissionsBoundary).
ROLE_GRANT_ACTIONS = _named("iam", "CreateRole DeleteRolePolicy PutRolePermissionsBoundary PutRolePolicy")
# IAM does not evaluate iam:PermissionsBoundary for these: they are allowed on the platform's role path only, where
# every role carries the boundary (the platform creates them with it; admins only within it).
ROLE_OTHER_ACTIONS = _named("iam", "DeleteRole TagRole UntagRole UpdateAssumeRolePolicy UpdateRole "
                            "UpdateRoleDescription")
ROLE_WRITE_ACTIONS = sorted(ROLE_GRANT_ACTIONS + ROLE_OTHER_ACTIONS + _named(
    "iam", "AttachRolePolicy DeleteRolePermissionsBoundary DetachRolePolicy"))


def _bucket(settings: PersonasSettings, context: PersonasContext, aws_facts: AwsContext,
            bucket_arn: pulumi.Input[str], prefix: str,
            write: bool) -> list[Statement]:
    """The statements of SecureBucket's grants, for a bucket known by its ARN."""
    listing = Statement(actions=["s3:ListBucket"], resources=[bucket_arn],
                        conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}} if prefix else None)
    actions = ["s3:GetObject", "s3:GetObjectVersion"] + (["s3:AbortMultipartUpload", "s3:PutObject"] if write else [])
    return [listing, Statement(actions=actions, resources=[concat(bucket_arn, "/", prefix, "*")]),
            kms_usage_statement(context.data_key_arn, encrypt=write, decrypt=True,
                                via_service=aws_facts.service_endpoint("s3"))]


def _packages(group_arn: pulumi.Input[str]) -> pulumi.Input[str]:
    """The versions of a model package group: `...:model-package/<group>/*`."""
    def packages(arn: str) -> str:
        return arn.replace(":model-package-group/", ":model-package/", 1) + "/*"
    return packages(group_arn) if isinstance(group_arn, str) else pulumi.Output.from_input(group_arn).apply(packages)


def _jobs(settings: PersonasSettings, context: PersonasContext, aws_facts: AwsContext,
          roles: Sequence[pulumi.Input[str]]) -> list[Statement]:
    """Training and processing jobs: in the platform's subnets and security groups with network isolation (the
    container reaches nothing; SageMaker moves the data), volumes and outputs under the data key, one of `roles`."""
    jobs = [aws_facts.arn("sagemaker", "processing-job/*"), aws_facts.arn("sagemaker", "training-job/*")]
    key = context.data_key_arn
    guard: dict = {"Null": {"sagemaker:VpcSubnets": "false", "sagemaker:VpcSecurityGroupIds": "false"},
                   "Bool": {"sagemaker:NetworkIsolation": "true"},
                   "ArnEquals": {"sagemaker:VolumeKmsKey": key, "sagemaker:OutputKmsKey": key}}
    placement = {}
    if context.job_subnet_ids:
        placement["sagemaker:VpcSubnets"] = list(context.job_subnet_ids)
    if context.job_security_group_ids:
        placement["sagemaker:VpcSecurityGroupIds"] = list(context.job_security_group_ids)
    if placement:
        guard["ForAllValues:StringEquals"] = placement
    logs = [aws_facts.arn("logs", f"log-group:/aws/sagemaker/{kind}:*") for kind in ("ProcessingJobs", "TrainingJobs")]
    return [
        Statement(sid="StartJobsInVpcWithDataKey", actions=["sagemaker:CreateProcessingJob",
                  "sagemaker:CreateTrainingJob"], resources=jobs, conditions=guard),
        Statement(actions=["sagemaker:AddTags", "sagemaker:DescribeProcessingJob", "sagemaker:DescribeTrainingJob",
                           "sagemaker:StopProcessingJob", "sagemaker:StopTrainingJob"], resources=jobs),
        # List actions have no resource to scope to; AWS requires "*".
        Statement(actions=["sagemaker:ListProcessingJobs", "sagemaker:ListTrainingJobs"], resources=["*"]),
        Statement(actions=["logs:DescribeLogStreams", "logs:FilterLogEvents", "logs:GetLogEvents"], resources=logs),
        Statement(sid="PassJobRolesToSageMaker", actions=["iam:PassRole"], resources=list(roles),
                  conditions={"StringEquals": {"iam:PassedToService": SAGEMAKER}}),
    ]


Policies = list[tuple[str, list[Statement]]]


def data_scientist_policies(settings: PersonasSettings, context: PersonasContext, aws_facts: AwsContext) -> Policies:
    policies: Policies = []
    if context.datasets_bucket_arn is not None:  # a registry-only stack holds no datasets
        policies.append(("read-datasets", _bucket(settings, context, aws_facts, context.datasets_bucket_arn,
                                                  settings.datasets_prefix, write=False)))
    policies.append(("experiments", _bucket(settings, context, aws_facts, context.artifacts_bucket_arn,
                                            settings.experiments_prefix, write=True)))
    if context.feature_group_arns:
        policies.append(("read-features", [
            Statement(actions=["sagemaker:BatchGetRecord", "sagemaker:DescribeFeatureGroup", "sagemaker:GetRecord"],
                      resources=list(context.feature_group_arns)),
            Statement(actions=["sagemaker:ListFeatureGroups"], resources=["*"]),
            # readers of an online store need the key itself; AWS documents no kms:ViaService for it
            kms_usage_statement(context.data_key_arn, encrypt=False, decrypt=True),
        ]))
    registers = [*context.package_group_arns, *(context.shared_group_arns if context.shared_group_publisher else [])]
    if registers:
        groups, packages = list(registers), [_packages(g) for g in registers]
        policies.append(("register-models", [
            *read_groups(groups),
            # new versions wait for an ML engineer's approval; the request must say so explicitly
            Statement(sid="RegisterForApprovalOnly", actions=["sagemaker:CreateModelPackage"],
                      resources=groups + packages, conditions=PENDING_APPROVAL_ONLY),
        ]))
    if context.shared_group_arns and not context.shared_group_publisher:
        policies.append(("read-shared-models", read_groups(context.shared_group_arns)))
    if context.training_role_arn is not None:
        policies.append(("run-jobs", _jobs(settings, context, aws_facts, [context.training_role_arn])))
    policies.append(("guardrails", [
        KEEP_STATE,
        Statement(sid="NoApprovalNoEndpointChanges", effect="Deny", resources=["*"],
                  actions=ENDPOINT_CHANGES + ["sagemaker:UpdateModelPackage"]),
    ]))
    return policies


def read_groups(group_arns: Sequence[pulumi.Input[str]]) -> list[Statement]:
    """Describing these groups and listing and describing their versions (each action applies to its own resource
    type among the groups and their versions; one list keeps the policy small as groups are added); listing the
    groups has no resource to scope to (AWS requires "*")."""
    return [
        Statement(actions=["sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup",
                           "sagemaker:ListModelPackages"],
                  resources=[*group_arns, *[_packages(g) for g in group_arns]]),
        Statement(actions=["sagemaker:ListModelPackageGroups"], resources=["*"]),
    ]


def ml_engineer_policies(settings: PersonasSettings, context: PersonasContext, aws_facts: AwsContext) -> Policies:
    policies: Policies = [("read-artifacts", _bucket(settings, context, aws_facts, context.artifacts_bucket_arn, "", write=False))]
    if context.package_group_arns:
        policies.append(("approve-models", [
            *read_groups(context.package_group_arns),
            Statement(actions=["sagemaker:UpdateModelPackage"],
                      resources=[_packages(g) for g in context.package_group_arns]),
        ]))
    if context.shared_group_arns:
        # versions of the shared registry are approved in its own account, not from here
        policies.append(("read-shared-models", read_groups(context.shared_group_arns)))
    if context.pipeline_arns:
        policies.append(("run-pipelines", [
            Statement(actions=["sagemaker:DescribePipeline", "sagemaker:ListPipelineExecutions",
                               "sagemaker:StartPipelineExecution"], resources=list(context.pipeline_arns)),
            Statement(actions=["sagemaker:DescribePipelineExecution", "sagemaker:ListPipelineExecutionSteps",
                               "sagemaker:StopPipelineExecution"],
                      resources=[concat(p, "/execution/*") for p in context.pipeline_arns]),
            Statement(actions=["sagemaker:ListPipelines"], resources=["*"]),
        ]))
    if context.endpoint_arns or context.monitoring_schedule_arns:
        statements = []
        if context.endpoint_arns:
            statements += [
                Statement(actions=["sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint"],
                          resources=list(context.endpoint_arns)),
                Statement(actions=["sagemaker:DescribeEndpointConfig"],
                          resources=[aws_facts.arn("sagemaker", f"endpoint-config/{context.managed_prefix}*")]),
            ]
        if context.monitoring_schedule_arns:
            statements.append(Statement(
                actions=["sagemaker:DescribeMonitoringSchedule", "sagemaker:StartMonitoringSchedule",
                         "sagemaker:StopMonitoringSchedule"], resources=list(context.monitoring_schedule_arns)))
        statements.append(Statement(actions=["sagemaker:ListEndpoints", "sagemaker:ListMonitoringExecutions",
                                             "sagemaker:ListMonitoringSchedules"], resources=["*"]))
        policies.append(("operate-endpoints", statements))
    # No jobs of their own: every job role of the platform reads datasets, which ML engineers may not.
    policies.append(("guardrails", [KEEP_STATE]))
    return policies


def platform_log_groups(context: PersonasContext, aws_facts: AwsContext) -> list[pulumi.Output[str]]:
    """The platform's own log groups (and their streams): flow logs, endpoints, EKS control planes."""
    prefix = context.managed_prefix
    return [aws_facts.arn("logs", f"log-group:{group}*") for group in (
        f"/emlops/vpc-flow-logs/{prefix}", f"/aws/sagemaker/Endpoints/{prefix}", f"/aws/eks/{prefix}")]


def platform_admin_policies(settings: PersonasSettings, context: PersonasContext, aws_facts: AwsContext) -> Policies:
    tagged = {f"aws:ResourceTag/{key}": value for key, value in context.platform_tags.items()}
    managed_roles = aws_facts.arn("iam", f"role{platform_role_path(context.environment)}*", regional=False)
    persona_roles = aws_facts.arn("iam", f"role{PERSONA_PATH}*", regional=False)
    boundary = context.permissions_boundary_arn
    policies: Policies = [
        ("administer-tagged", [
            Statement(sid="AdministerPlatformResources", actions=ADMIN_TAGGED_ACTIONS, resources=["*"],
                      conditions={"StringEquals": tagged}),
            # retagging may not move a resource into or out of the platform
            Statement(sid="TagPlatformResources", actions=["sagemaker:AddTags", "sagemaker:DeleteTags"],
                      resources=["*"], conditions={"StringEquals": tagged, "ForAllValues:StringNotEquals": {
                          "aws:TagKeys": list(context.platform_tags)}}),
        ]),
    ]
    if boundary is not None:
        # Without a boundary there is nothing to keep a role an admin writes from exceeding the admin: no IAM writes.
        bounded = {"StringEquals": {"iam:PermissionsBoundary": boundary}}
        own_policies = {"ArnLike": {"iam:PolicyARN": aws_facts.arn("iam", "policy/*", regional=False)}}
        policies.append(("administer-roles", [
            Statement(sid="GrantOnlyWithinBoundary", actions=ROLE_GRANT_ACTIONS, resources=[managed_roles],
                      conditions=bounded),
            # customer-managed policies only: never AdministratorAccess or a *FullAccess policy
            Statement(sid="AttachOwnPoliciesOnly", actions=["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
                      resources=[managed_roles], conditions={**bounded, **own_policies}),
            Statement(sid="ChangePlatformRoles", actions=ROLE_OTHER_ACTIONS, resources=[managed_roles]),
            Statement(sid="KeepBoundaries", effect="Deny", actions=["iam:DeleteRolePermissionsBoundary"],
                      resources=["*"]),
        ]))
    policies += [
        ("administer-data-key", [Statement(actions=KEY_ADMIN_ACTIONS, resources=[context.data_key_arn])]),
        ("read-only", [
            Statement(sid="ReadConfiguration", actions=READ_ONLY_ACTIONS, resources=["*"]),
            Statement(sid="ReadPlatformLogs", actions=LOG_READ_ACTIONS, resources=platform_log_groups(context, aws_facts)),
        ]),
        ("guardrails", [
            KEEP_STATE,
            # admins run the platform but do not read its data, nor let another principal read it for them
            Statement(sid="NoDataKeyUse", effect="Deny", resources=[context.data_key_arn],
                      actions=["kms:CreateGrant", "kms:Decrypt", "kms:PutKeyPolicy", "kms:ReEncryptFrom"]),
            *([Statement(sid="NoDatasetReads", effect="Deny", actions=["s3:GetObject", "s3:GetObjectVersion"],
                         resources=[concat(context.datasets_bucket_arn, "/*")])]
              if context.datasets_bucket_arn is not None else []),
            Statement(sid="NoFeatureReads", effect="Deny", actions=["sagemaker:BatchGetRecord", "sagemaker:GetRecord"],
                      resources=["*"]),
            # the roles admins manage are never theirs to use, and the persona roles never theirs to change
            Statement(sid="NoAssumingManagedRoles", effect="Deny", actions=["sts:AssumeRole"],
                      resources=[managed_roles]),
            Statement(sid="NoChangesToPersonas", effect="Deny", resources=[persona_roles], actions=ROLE_WRITE_ACTIONS),
        ]),
    ]
    return policies
