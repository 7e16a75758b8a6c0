"""The IndexForge spec: one pydantic model, the single source of the CRD schema.

`IndexForgeSpec.model_validate(cr["spec"])` validates a CR's spec exactly as the API server
does with the generated schema (CEL rules are mirrored by model validators); `{}` means all
defaults. Sub-models for the gateway and monitoring live in their own modules.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from .spec_backup import BackupSpec
from .spec_common import (
    Autoscaling,
    DisruptionBudget,
    DnsSubdomain,
    Image,
    LabelMap,
    Persistence,
    PullPolicy,
    Resources,
    SecretKeyRef,
    SpecModel,
    Toleration,
    TopologySpread,
    cel,
    disruption_field,
    image_field,
    persistence_field,
    pull_policy_field,
    replicas_field,
    resources_field,
    rules,
)
from .spec_gateway import GatewaySpec
from .spec_mesh import MeshSpec
from .spec_messaging import MessagingSpec
from .spec_monitoring import MonitoringSpec
from .spec_redis_replication import RedisReplication
from .spec_redis_rotation import RedisPasswordRotation
from .spec_secrets import SecretsSpec
from .spec_weaviate_rotation import WeaviateKeyRotation

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
# Extended resource name: a domain prefix is mandatory (nvidia.com/gpu, amd.com/gpu).
GPU_RESOURCE_PATTERN = (
    r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?\.[a-z]{2,}/[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$"
)
RedisPolicy = Literal[
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
]
RedisMemory = Annotated[
    str, StringConstraints(max_length=16, pattern=r"^[1-9][0-9]{0,6}(kb|mb|gb)$")
]


class ApiCache(SpecModel):
    """TTLs of what the API keeps in its Redis."""

    response_ttl_seconds: int = Field(
        default=300, ge=1, le=604800, description="Cached search responses."
    )
    session_ttl_seconds: int = Field(
        default=86400, ge=1, le=2592000, description="Sessions / job status."
    )
    rate_limit_window_seconds: int = Field(
        default=3600, ge=1, le=86400, description="Window of the per-consumer request counters."
    )


class ApiUploads(SpecModel):
    """How much the API accepts at once. Uploads are streamed to the pod's /tmp (sized from
    these two), so memory does not grow with upload size."""

    max_megabytes: int = Field(
        default=50, ge=1, le=1024, description="Largest upload (text, CSV, Excel); 413 above."
    )
    max_concurrent: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Uploads one API pod reads at once; more get 429 with Retry-After.",
    )


class ApiSpec(SpecModel):
    """The API service (documents, search, jobs)."""

    image: Image = image_field("ghcr.io/indexforge/indexforge-api:0.1.0", "the API service")
    image_pull_policy: PullPolicy = pull_policy_field()
    replicas: int = replicas_field(2, "API")
    resources: Resources = resources_field(
        cpu_request="250m",
        memory_request="256Mi",
        cpu_limit="1",
        memory_limit="512Mi",
        what="the API service",
    )
    autoscaling: Autoscaling = Field(default=Autoscaling(), description="HPA on CPU utilisation.")
    cache: ApiCache = Field(default=ApiCache(), description="Cache TTLs.")
    uploads: ApiUploads = Field(default=ApiUploads(), description="Upload size and concurrency.")
    log_level: LogLevel = Field(default="INFO", description="Log level of the service.")
    pod_disruption_budget: DisruptionBudget = disruption_field()


class GpuSpec(SpecModel):
    """GPU scheduling of the ML pods; off means inference on CPU."""

    enabled: bool = Field(default=False, description="Request GPUs; the ML service then uses CUDA.")
    count: int = Field(default=1, ge=0, le=16, description="GPUs per ML pod.")
    resource_name: Annotated[
        str, StringConstraints(max_length=253, pattern=GPU_RESOURCE_PATTERN)
    ] = Field(
        default="nvidia.com/gpu", description="Extended resource advertised by the device plugin."
    )
    node_selector: LabelMap = Field(
        default_factory=dict, max_length=16, description="Node labels GPU pods must match."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list,
        max_length=16,
        description="Extra tolerations; the taint named after resourceName is always tolerated.",
    )
    runtime_class_name: DnsSubdomain | None = Field(
        default=None,
        description="RuntimeClass of GPU pods (e.g. nvidia), when the cluster needs one.",
    )

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel("!self.enabled || self.count >= 1", "gpu.count must be at least 1 when enabled"),
            cel(
                "!self.resourceName.startsWith('kubernetes.io/')",
                "gpu.resourceName cannot be in the kubernetes.io domain",
            ),
        )
    )

    @model_validator(mode="after")
    def _count(self) -> GpuSpec:
        if self.enabled and self.count < 1:
            raise ValueError("gpu.count must be at least 1 when enabled")
        if self.resource_name.startswith("kubernetes.io/"):
            raise ValueError("gpu.resourceName cannot be in the kubernetes.io domain")
        return self


class MlSpec(SpecModel):
    """The ML inference service (also Weaviate's text2vec-transformers backend)."""

    image: Image = image_field("ghcr.io/indexforge/indexforge-ml:0.1.0", "the ML service")
    image_pull_policy: PullPolicy = pull_policy_field()
    replicas: int = replicas_field(1, "ML", maximum=20)
    model: Annotated[
        str, StringConstraints(max_length=253, pattern=r"^[A-Za-z0-9][A-Za-z0-9_./-]*$")
    ] = Field(default="sentence-transformers/all-MiniLM-L6-v2", description="Embedding model name.")
    batch_size: int = Field(
        default=32, ge=1, le=1024, description="Maximum texts per forward pass."
    )
    cache_ttl_seconds: int = Field(
        default=3600, ge=1, le=604800, description="Prediction cache TTL."
    )
    gpu: GpuSpec = Field(default=GpuSpec(), description="GPU scheduling.")
    # Torch plus the model need ~1.5 GiB resident on CPU; leave headroom for batches.
    resources: Resources = resources_field(
        cpu_request="500m",
        memory_request="2Gi",
        cpu_limit="2",
        memory_limit="3Gi",
        what="the ML service",
    )
    log_level: LogLevel = Field(default="INFO", description="Log level of the service.")
    pod_disruption_budget: DisruptionBudget = disruption_field()


class ExcelSpec(SpecModel):
    """The Excel processor (xlsx uploads to records)."""

    enabled: bool = Field(default=True, description="Deploy the Excel processor.")
    image: Image = image_field("ghcr.io/indexforge/indexforge-excel:0.1.0", "the Excel processor")
    image_pull_policy: PullPolicy = pull_policy_field()
    replicas: int = replicas_field(1, "Excel processor")
    max_upload_megabytes: int = Field(
        default=50, ge=1, le=1024, description="Largest accepted upload."
    )
    max_rows: int = Field(
        default=100_000, ge=1, le=1_048_576, description="Most rows read per file."
    )
    resources: Resources = resources_field(
        cpu_request="100m",
        memory_request="256Mi",
        cpu_limit="1",
        memory_limit="1Gi",
        what="the Excel processor",
    )
    log_level: LogLevel = Field(default="INFO", description="Log level of the service.")
    pod_disruption_budget: DisruptionBudget = disruption_field()


class RedisExporter(SpecModel):
    """redis_exporter sidecar exposing Redis metrics on :9121."""

    enabled: bool = Field(default=True, description="Run the exporter sidecar.")
    image: Image = image_field("docker.io/oliver006/redis_exporter:v1.62.0", "redis_exporter")
    resources: Resources = resources_field(
        cpu_request="10m",
        memory_request="32Mi",
        cpu_limit="100m",
        memory_limit="64Mi",
        what="redis_exporter",
    )


class RedisInstance(SpecModel):
    """One Redis server (StatefulSet, one replica)."""

    image: Image = image_field("docker.io/library/redis:7.2.5-alpine", "Redis")
    image_pull_policy: PullPolicy = pull_policy_field()
    maxmemory: RedisMemory = Field(default="512mb", description="Redis maxmemory (kb, mb or gb).")
    maxmemory_policy: RedisPolicy = Field(default="allkeys-lru", description="Eviction policy.")
    appendonly: bool = Field(default=True, description="AOF persistence (appendfsync everysec).")
    resources: Resources = resources_field(
        cpu_request="100m",
        memory_request="512Mi",
        cpu_limit="500m",
        memory_limit="768Mi",
        what="Redis",
    )
    persistence: Persistence = persistence_field("2Gi", "Redis")
    exporter: RedisExporter = Field(default=RedisExporter(), description="Metrics sidecar.")


class RedisMlInstance(RedisInstance):
    """The ML service's Redis: larger, evicts only keys with a TTL."""

    maxmemory: RedisMemory = Field(default="1gb", description="Redis maxmemory (kb, mb or gb).")
    maxmemory_policy: RedisPolicy = Field(default="volatile-lru", description="Eviction policy.")
    resources: Resources = resources_field(
        cpu_request="200m",
        memory_request="1Gi",
        cpu_limit="1",
        memory_limit="1536Mi",
        what="Redis",
    )
    persistence: Persistence = persistence_field("4Gi", "Redis")


class RedisStateInstance(RedisInstance):
    """The API's state (job records, queued uploads, cache tag sets, the write lock): a
    Redis of its own that never evicts. maxmemory-policy is per instance, so a database of
    the evicting app Redis would not protect it; a full state Redis refuses writes (the API
    answers 503 job_store_full) instead of dropping records."""

    maxmemory: RedisMemory = Field(default="256mb", description="Redis maxmemory (kb, mb or gb).")
    maxmemory_policy: Literal["noeviction"] = Field(
        default="noeviction", description="Fixed: state is refused when full, never evicted."
    )
    resources: Resources = resources_field(
        cpu_request="50m",
        memory_request="320Mi",
        cpu_limit="500m",
        memory_limit="512Mi",
        what="Redis",
    )
    persistence: Persistence = persistence_field("1Gi", "Redis")
    replication: RedisReplication = Field(
        default=RedisReplication(),
        description="Replicas + Redis Sentinel (automatic failover); the caches have none.",
    )


class RedisSpec(SpecModel):
    """One Redis per service family, so eviction in one cannot hurt the other."""

    app: RedisInstance = Field(
        default=RedisInstance(), description="Redis of the API/Excel services (a cache)."
    )
    ml: RedisMlInstance = Field(default=RedisMlInstance(), description="Redis of the ML service.")
    state: RedisStateInstance = Field(
        default=RedisStateInstance(), description="The API's state Redis (noeviction, AOF)."
    )
    password_rotation: RedisPasswordRotation = Field(
        default=RedisPasswordRotation(),
        description="Password rotation with overlap, no Redis restart (operator only).",
    )


REPLICATION_FACTOR_MESSAGE = "weaviate.replicationFactor must be at most weaviate.replicas"


class WeaviateSpec(SpecModel):
    """Weaviate vector database; vectors come from the ML service."""

    image: Image = image_field("cr.weaviate.io/semitechnologies/weaviate:1.35.2", "Weaviate")
    image_pull_policy: PullPolicy = pull_policy_field()
    replicas: int = replicas_field(1, "Weaviate", maximum=9)
    vectorizer: Literal["text2vec-transformers"] = Field(
        default="text2vec-transformers", description="Vectorizer module; served by the ML service."
    )
    query_defaults_limit: int = Field(
        default=25, ge=1, le=10000, description="Default query limit."
    )
    resources: Resources = resources_field(
        cpu_request="500m",
        memory_request="1Gi",
        cpu_limit="2",
        memory_limit="4Gi",
        what="Weaviate",
    )
    replication_factor: int | None = Field(
        default=None,
        ge=1,
        le=9,
        description="Copies of every object (replicationConfig.factor of the collections the "
        "API creates), at most replicas. Unset: min(replicas, 3). Reads and writes use QUORUM, "
        "so a factor of 3 keeps answering with one node down. Applies when a collection is "
        "created: an existing collection keeps its factor.",
    )
    persistence: Persistence = persistence_field("10Gi", "Weaviate")
    pod_disruption_budget: DisruptionBudget = disruption_field()
    key_rotation: WeaviateKeyRotation = Field(
        default=WeaviateKeyRotation(),
        description="API-key rotation with overlap by rolling restarts (operator only).",
    )

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel(
                "!has(self.replicationFactor) || self.replicationFactor <= self.replicas",
                REPLICATION_FACTOR_MESSAGE,
            )
        )
    )

    @model_validator(mode="after")
    def _factor(self) -> WeaviateSpec:
        if self.replication_factor is not None and self.replication_factor > self.replicas:
            raise ValueError(REPLICATION_FACTOR_MESSAGE)
        return self

    @property
    def effective_replication_factor(self) -> int:
        """Three copies survive one lost node under QUORUM; fewer nodes hold one each."""
        if self.replication_factor is not None:
            return self.replication_factor
        return min(self.replicas, 3)


class SentrySpec(SpecModel):
    """Error and performance reporting to Sentry; the DSN only ever comes from a Secret."""

    enabled: bool = Field(default=False, description="Report errors and traces to Sentry.")
    dsn_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the DSN (required when enabled)."
    )
    dsn: Annotated[str, StringConstraints(max_length=2048)] | None = Field(
        default=None, description="Never set: inline DSNs are rejected; use dsnSecretRef."
    )
    environment: Annotated[str, StringConstraints(max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")] = (
        Field(default="production", description="Sentry environment tag.")
    )
    traces_sample_rate: float = Field(
        default=0.1, ge=0, le=1, description="Share of traced requests."
    )
    profiles_sample_rate: float = Field(
        default=0.1, ge=0, le=1, description="Share of profiled traces."
    )

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel(
                "!has(self.dsn)",
                "sentry.dsn must not be set inline; put it in a Secret and set sentry.dsnSecretRef",
                reason="FieldValueForbidden",
            ),
            cel(
                "!self.enabled || has(self.dsnSecretRef)",
                "sentry.dsnSecretRef is required when sentry is enabled",
            ),
        )
    )

    @model_validator(mode="after")
    def _secret_only(self) -> SentrySpec:
        if self.dsn is not None:
            raise ValueError(
                "sentry.dsn must not be set inline; put it in a Secret and set sentry.dsnSecretRef"
            )
        if self.enabled and self.dsn_secret_ref is None:
            raise ValueError("sentry.dsnSecretRef is required when sentry is enabled")
        return self


class IndexForgeSpec(SpecModel):
    """Desired state of one IndexForge stack."""

    paused: bool = Field(
        default=False, description="Stop reconciling: the operator makes no writes."
    )
    deletion_policy: Literal["Retain", "Delete"] = Field(
        default="Retain", description="What happens to PVCs when the IndexForge is deleted."
    )
    topology_spread: TopologySpread = Field(
        default=TopologySpread(), description="How every component's replicas spread."
    )
    image_pull_secrets: list[DnsSubdomain] = Field(
        default_factory=list, max_length=8, description="Secrets used to pull every image."
    )
    api: ApiSpec = Field(default=ApiSpec(), description="API service.")
    ml: MlSpec = Field(default=MlSpec(), description="ML inference service.")
    excel: ExcelSpec = Field(default=ExcelSpec(), description="Excel processor.")
    redis: RedisSpec = Field(default=RedisSpec(), description="Redis servers.")
    weaviate: WeaviateSpec = Field(default=WeaviateSpec(), description="Weaviate vector database.")
    gateway: GatewaySpec = Field(default=GatewaySpec(), description="Kong gateway.")
    monitoring: MonitoringSpec = Field(default=MonitoringSpec(), description="Monitoring stack.")
    sentry: SentrySpec = Field(default=SentrySpec(), description="Sentry reporting.")
    backup: BackupSpec = Field(default=BackupSpec(), description="Scheduled backups.")
    messaging: MessagingSpec = Field(
        default=MessagingSpec(), description="Event-driven ingestion (RabbitMQ and workers)."
    )
    mesh: MeshSpec = Field(default=MeshSpec(), description="Service mesh mode (Istio).")
    secrets: SecretsSpec = Field(
        default=SecretsSpec(),
        description="Where generated credentials live: Kubernetes Secrets, Vault, External "
        "Secrets.",
    )
