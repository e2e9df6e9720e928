"""Catalogue entries of running the platform: CloudWatch alarms, dashboards and logs, EventBridge, SNS, endpoint
autoscaling, AWS Budgets, Lambda functions and the CloudTrail audit trail."""

from __future__ import annotations

from emlops.catalog.resource_type import CreateRequest, Naming, ResourceType

# -- CloudWatch and EventBridge ----------------------------------------------------------------------

METRIC_ALARM = ResourceType(
    "aws:cloudwatch/metricAlarm:MetricAlarm", label="alarm", taggable=True, naming=Naming(auto=True, max_length=255),
    arn="arn:{partition}:cloudwatch:{region}:{account}:alarm:{name}",
)
DASHBOARD = ResourceType(
    # pulumi-aws's Dashboard takes no tags
    "aws:cloudwatch/dashboard:Dashboard", label="dashboard",
    # PutDashboard's DashboardName: at most 255 of A-Z, a-z, 0-9, '-' and '_'. botocore's model says so only in the
    # member's documentation (the shape has no max or pattern), so request validation cannot check it: the mocks do.
    naming=Naming("dashboardName", max_length=255, pattern=r"[A-Za-z0-9_-]+"),
    # dashboards are global, not regional: no region in the ARN
    arn="arn:{partition}:cloudwatch::{account}:dashboard/{dashboardName}", arn_output="dashboardArn",
    physical_id="{dashboardName}", replace_on_change=("dashboardName",),
    create=CreateRequest("cloudwatch", "PutDashboard"),
)
LOG_GROUP = ResourceType(
    "aws:cloudwatch/logGroup:LogGroup", label="log group", stateful=True, taggable=True,
    naming=Naming(auto=True, max_length=512, pattern=r"[\.\-_/#A-Za-z0-9]+"),
    arn="arn:{partition}:logs:{region}:{account}:log-group:{name}", replace_on_change=("name", "namePrefix"),
)
EVENT_RULE = ResourceType(
    "aws:cloudwatch/eventRule:EventRule", label="EventBridge rule", taggable=True,
    naming=Naming(auto=True, max_length=64, pattern=r"[\.\-_A-Za-z0-9]+"),
    arn="arn:{partition}:events:{region}:{account}:rule/{name}",
    replace_on_change=("name", "namePrefix", "eventBusName"),
)
EVENT_TARGET = ResourceType(
    "aws:cloudwatch/eventTarget:EventTarget",
    arn="{arn}",  # the target's `arn` is the destination's ARN (an input)
    replace_on_change=("rule", "targetId", "eventBusName"),
)

# -- SNS --------------------------------------------------------------------------------------------

TOPIC = ResourceType(
    "aws:sns/topic:Topic", label="SNS topic",
    stateful=True,  # its confirmed subscriptions
    taggable=True,
    # CreateTopic: 1-256 letters, digits, '-' and '_' (a FIFO topic's name ends in `.fifo`)
    naming=Naming(auto=True, max_length=256, pattern=r"[A-Za-z0-9_-]+(\.fifo)?"),
    arn="arn:{partition}:sns:{region}:{account}:{name}",
    replace_on_change=("name", "namePrefix", "fifoTopic"),
)
TOPIC_POLICY = ResourceType(
    "aws:sns/topicPolicy:TopicPolicy",
    arn="{arn}",  # the policy's `arn` is its topic's ARN (an input)
    replace_on_change=("arn",),
)
TOPIC_SUBSCRIPTION = ResourceType(
    "aws:sns/topicSubscription:TopicSubscription",
    arn="{topic}:{uuid}",  # <topic ARN>:<subscription id>
    replace_on_change=("topic", "protocol", "endpoint"),
)

# -- Application Auto Scaling (SageMaker endpoint variants) ----------------------------------------

_SCALING_KEY = ("resourceId", "scalableDimension", "serviceNamespace")

SCALING_TARGET = ResourceType(
    "aws:appautoscaling/target:Target", taggable=True,
    arn="arn:{partition}:application-autoscaling:{region}:{account}:scalable-target/{uuid_short}",
    physical_id="{resourceId}", replace_on_change=_SCALING_KEY,
)
SCALING_POLICY = ResourceType(
    "aws:appautoscaling/policy:Policy", naming=Naming(auto=True, max_length=256, pattern=r"[\x20-\x7e]+", what="scaling policy"),
    arn="arn:{partition}:autoscaling:{region}:{account}:scalingPolicy:{uuid}:resource/{serviceNamespace}/"
        "{resourceId}:policyName/{name}",
    replace_on_change=("name", *_SCALING_KEY),
)
SCHEDULED_ACTION = ResourceType(
    "aws:appautoscaling/scheduledAction:ScheduledAction",
    # no ':', '/', '|' or control characters, no leading or trailing spaces
    naming=Naming(auto=True, max_length=256, pattern=r"(?! )[^:/|\x00-\x1f\x7f-\x9f]+(?<! )",
                  what="scheduled action"),
    arn="arn:{partition}:autoscaling:{region}:{account}:scheduledAction:{uuid}:resource/{serviceNamespace}/"
        "{resourceId}:scheduledActionName/{name}",
    replace_on_change=("name", *_SCALING_KEY),
)

# -- AWS Budgets ------------------------------------------------------------------------------------------

BUDGET = ResourceType(
    "aws:budgets/budget:Budget", taggable=True,  # not drawn by `emlops graph`: no data flows through it
    # CreateBudget's BudgetName: 1-100 characters, neither ':' nor '\'; unique in the account
    naming=Naming(auto=True, max_length=100, pattern=r"[^:\\]+", what="budget"),
    # budgets are global to the account: no region in the ARN; the provider's id is `<account>:<name>`
    arn="arn:{partition}:budgets::{account}:budget/{name}", physical_id="{account}:{name}",
    outputs={"accountId": "{account}"}, replace_on_change=("name", "namePrefix", "accountId"),
)

# -- Lambda -----------------------------------------------------------------------------------------

# A data pipeline's claim, gate and ingest steps (components/data_pipeline_steps.py).
LAMBDA_FUNCTION = ResourceType(
    "aws:lambda/function:Function", label="Lambda function", taggable=True,
    # CreateFunction's FunctionName: 1-64 of a-z, A-Z, 0-9, '-' and '_'
    naming=Naming(auto=True, max_length=64, pattern=r"[a-zA-Z0-9_-]+"),
    arn="arn:{partition}:lambda:{region}:{account}:function:{name}", physical_id="{name}",
    replace_on_change=("name",),
)

# -- audit -------------------------------------------------------------------------------------------

# An environment's own trail (components/audit.py): named by the platform, so its key and bucket policies name it
# before it exists (Pulumi auto-names a trail left unnamed).
# CreateTrail takes the trail; its event selectors and logging are set by separate calls (PutEventSelectors,
# StartLogging) the provider makes after it.
TRAIL = ResourceType(
    "aws:cloudtrail/trail:Trail", label="CloudTrail trail", stateful=True, taggable=True,
    naming=Naming("name", auto=True, max_length=128, min_length=3, pattern=r"[A-Za-z0-9][A-Za-z0-9._-]*"),
    arn="arn:{partition}:cloudtrail:{region}:{account}:trail/{name}", physical_id="{name}",
    replace_on_change=("name",), outputs={"homeRegion": "{region}"},
    create=CreateRequest("cloudtrail", "CreateTrail", {"tags": "TagsList"},
                         ignore=frozenset({"advancedEventSelectors", "enableLogging"})),
)
