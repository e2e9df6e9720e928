"""Catalogue entries of stateful types from services the platform itself does not use.

A platform team's own code may add a DynamoDB table or an RDS database beside the components; the
guardrails (production protects and retains what is stateful) and `emlops diff` (deleting one is
called out) must know they hold data. No ARN format is recorded for them yet, so the offline preview
refuses one (MockGap) until its entry is completed.
"""

from __future__ import annotations

from emlops.catalog.resource_type import Naming, ResourceType

DYNAMODB_TABLE = ResourceType("aws:dynamodb/table:Table", stateful=True, taggable=True,
                              naming=Naming(auto=True, max_length=255, min_length=3, pattern=r"[a-zA-Z0-9_.-]+"))
RDS_INSTANCE = ResourceType("aws:rds/instance:Instance", stateful=True, taggable=True)
RDS_CLUSTER = ResourceType("aws:rds/cluster:Cluster", stateful=True, taggable=True)
EFS_FILE_SYSTEM = ResourceType("aws:efs/fileSystem:FileSystem", stateful=True, taggable=True)
CODEARTIFACT_DOMAIN = ResourceType("aws:codeartifact/domain:Domain", stateful=True, taggable=True)
CODEARTIFACT_REPOSITORY = ResourceType("aws:codeartifact/repository:Repository", stateful=True, taggable=True)
SECRETS_MANAGER_SECRET = ResourceType("aws:secretsmanager/secret:Secret", stateful=True, taggable=True,
                                      naming=Naming(auto=True, max_length=512))
