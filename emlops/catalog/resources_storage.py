"""Catalogue entries of where data and keys live: S3 buckets and their settings, KMS, ECR and the Glue catalog.

pulumi-aws v7 splits a bucket into `aws:s3/bucket:Bucket` and one resource per setting, each naming
the bucket in its `bucket` input and identified by it. The `...V2` types are the deprecated
spellings of the same resources: the platform does not register them, but a team's own code may, and
the guardrails check them (no ARN format is recorded for `BucketV2`, so the offline preview refuses it).
"""

from __future__ import annotations

from emlops.catalog.resource_type import RANDOM_UUID, CreateRequest, Naming, ResourceType, digest

# -- S3 ---------------------------------------------------------------------------------------------

# S3's general purpose bucket names: 3-63 lowercase letters, digits, '.' and '-', a letter or digit at each end
_BUCKET_NAMING = Naming("bucket", auto=True, max_length=63, lowercase=True, min_length=3,
                        pattern=r"[a-z0-9][a-z0-9.-]*[a-z0-9]")
_BUCKET_OUTPUTS = {
    "bucketDomainName": "{bucket}.s3.{dns_suffix}",
    "bucketRegionalDomainName": "{bucket}.s3.{region}.{dns_suffix}",
    "region": "{region}",
}

BUCKET = ResourceType(
    "aws:s3/bucket:Bucket", label="S3 bucket", stateful=True, taggable=True, naming=_BUCKET_NAMING,
    arn="arn:{partition}:s3:::{bucket}", physical_id="{bucket}",
    replace_on_change=("bucket", "bucketPrefix", "objectLockEnabled"), outputs=_BUCKET_OUTPUTS,
    type_aliases=("aws:s3/bucketV2:BucketV2",),
)
BUCKET_V2 = ResourceType("aws:s3/bucketV2:BucketV2", stateful=True, taggable=True)


def _bucket_setting(token: str, v2_alias: bool = False) -> ResourceType:
    """A bucket's setting: identified by its bucket's name, replaced when it moves to another bucket. With
    `v2_alias`, pulumi-aws v7 aliases its `...V2` spelling (`aws:s3/bucketLoggingV2:BucketLoggingV2`)."""
    module, kind = token.split(":")[1:]
    aliases = (f"aws:{module}V2:{kind}V2",) if v2_alias else ()
    return ResourceType(token, physical_id="{bucket}", replace_on_change=("bucket", "expectedBucketOwner"),
                        type_aliases=aliases)


BUCKET_PUBLIC_ACCESS_BLOCK = _bucket_setting("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
# Object Lock's default retention; S3 enables the lock itself on an existing versioned bucket.
BUCKET_OBJECT_LOCK = _bucket_setting("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
                                     v2_alias=True)
BUCKET_OWNERSHIP_CONTROLS = _bucket_setting("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
BUCKET_VERSIONING = _bucket_setting("aws:s3/bucketVersioning:BucketVersioning", v2_alias=True)
BUCKET_ENCRYPTION = _bucket_setting(
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", v2_alias=True)
BUCKET_POLICY = _bucket_setting("aws:s3/bucketPolicy:BucketPolicy")
BUCKET_LIFECYCLE = _bucket_setting("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", v2_alias=True)
BUCKET_LOGGING = _bucket_setting("aws:s3/bucketLogging:BucketLogging", v2_alias=True)
# The bucket's event destinations (EventBridge, for batch transforms started by new data): one per bucket, and
# the provider has no `expectedBucketOwner` for it.
# An object the platform writes itself (a Clarify monitor's analysis configuration): S3 knows it by its key; a new
# content is a new version of the same object, another bucket or key another object.
BUCKET_OBJECT = ResourceType(
    "aws:s3/bucketObjectv2:BucketObjectv2", taggable=True, physical_id="{key}",
    arn="arn:{partition}:s3:::{bucket}/{key}", replace_on_change=("bucket", "key"),
    outputs=lambda fields: {"etag": digest(fields["bucket"] + "/" + fields["key"], 32),
                            "versionId": digest("version:" + fields["bucket"] + "/" + fields["key"], 32)},
    type_aliases=("aws:s3/BucketObject:BucketObject",),  # pulumi-aws's own alias of it
)
BUCKET_NOTIFICATION = ResourceType("aws:s3/bucketNotification:BucketNotification", physical_id="{bucket}",
                                   replace_on_change=("bucket",))
BUCKET_VERSIONING_V2 = ResourceType("aws:s3/bucketVersioningV2:BucketVersioningV2")
BUCKET_ENCRYPTION_V2 = ResourceType(
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2")
BUCKET_LOGGING_V2 = ResourceType("aws:s3/bucketLoggingV2:BucketLoggingV2")

# -- KMS --------------------------------------------------------------------------------------------

KMS_KEY = ResourceType(
    "aws:kms/key:Key", label="KMS key", stateful=True, taggable=True,
    arn="arn:{partition}:kms:{region}:{account}:key/{id}",
    physical_id=RANDOM_UUID,  # KMS key ids are random UUIDs
    replace_on_change=("customerMasterKeySpec", "keyUsage", "multiRegion", "customKeyStoreId", "xksKeyId"),
    outputs={"keyId": "{id}"},
)
KMS_ALIAS = ResourceType(
    "aws:kms/alias:Alias", naming=Naming(auto=True, max_length=256, pattern=r"alias/[a-zA-Z0-9:/_-]+"), arn="arn:{partition}:kms:{region}:{account}:{name}",
    replace_on_change=("name", "namePrefix"),
    outputs=lambda fields: {"targetKeyArn": KMS_KEY.arn.format(**{**fields, "id": fields["targetKeyId"]})},
)

# -- ECR --------------------------------------------------------------------------------------------

ECR_REPOSITORY = ResourceType(
    "aws:ecr/repository:Repository", label="ECR repository", stateful=True, taggable=True,
    naming=Naming(auto=True, lowercase=True, max_length=256, min_length=2,
                  pattern=r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*"),
    arn="arn:{partition}:ecr:{region}:{account}:repository/{name}",
    replace_on_change=("name", "encryptionConfigurations"),
    outputs={"registryId": "{account}", "repositoryUrl": "{account}.dkr.ecr.{region}.{dns_suffix}/{name}"},
    create=CreateRequest(
        "ecr", "CreateRepository", {"name": "repositoryName"},
        # forceDelete is the provider's own switch (delete the images on destroy); the API has no member
        ignore=frozenset({"forceDelete"}),
    ),
)
ECR_LIFECYCLE_POLICY = ResourceType("aws:ecr/lifecyclePolicy:LifecyclePolicy", replace_on_change=("repository",))
ECR_REPOSITORY_POLICY = ResourceType("aws:ecr/repositoryPolicy:RepositoryPolicy")

# -- Glue -------------------------------------------------------------------------------------------

# The feature store's offline-store catalog. Stateful: the offline store's data lives in its bucket, but
# the tables SageMaker defines in it (schemas, Iceberg metadata pointers) are not rebuilt by a deploy.
GLUE_CATALOG_DATABASE = ResourceType(
    "aws:glue/catalogDatabase:CatalogDatabase", taggable=True,
    naming=Naming(auto=True, lowercase=True, max_length=255), stateful=True,
    arn="arn:{partition}:glue:{region}:{account}:database/{name}",
    physical_id=lambda values: f"{values.get('catalogId') or values['account']}:{values['name']}",
    replace_on_change=("name", "catalogId"),
)

# -- Athena -----------------------------------------------------------------------------------------

# Training sets are queried from the offline store through a workgroup that enforces its own encrypted results
# location. Results are kept in S3, not in the workgroup: not stateful.
ATHENA_WORKGROUP = ResourceType(
    "aws:athena/workgroup:Workgroup", label="Athena workgroup", taggable=True,
    # CreateWorkGroup's Name: 1-128 of a-z, A-Z, 0-9, '_', '.' and '-'
    naming=Naming(auto=True, max_length=128, pattern=r"[a-zA-Z0-9._-]{1,128}"),
    arn="arn:{partition}:athena:{region}:{account}:workgroup/{name}", physical_id="{name}",
    replace_on_change=("name",),
)
