"""Spec of alert delivery: the standalone Alertmanager and its receivers.

Receiver credentials live only in a Secret the user creates (`receiversSecretRef`); the
operator mounts it into Alertmanager, whose config names the files (`api_url_file`,
`routing_key_file`, `credentials_file`, `auth_password_file`). What is not a credential (a
Slack channel, a webhook URL, mail addresses) is spec. In prometheus-operator mode the same
routes and receivers become an AlertmanagerConfig that references the Secret by key.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from .spec_common import (
    DisruptionBudget,
    DnsSubdomain,
    Image,
    Persistence,
    PullPolicy,
    Resources,
    SpecModel,
    cel,
    disruption_field,
    image_field,
    persistence_field,
    pull_policy_field,
    replicas_field,
    resources_field,
    rules,
)

# Keys of the receivers Secret, one per credential; a receiver is configured only when its key
# is there (or listed in receiversSecretKeys).
SLACK_API_URL: Final = "slack-api-url"
PAGERDUTY_ROUTING_KEY: Final = "pagerduty-routing-key"
WEBHOOK_BEARER_TOKEN: Final = "webhook-bearer-token"
SMTP_AUTH_PASSWORD: Final = "smtp-auth-password"
ReceiverKey = Literal[
    "slack-api-url", "pagerduty-routing-key", "webhook-bearer-token", "smtp-auth-password"
]
RECEIVER_KEYS: tuple[ReceiverKey, ...] = (
    SLACK_API_URL,
    PAGERDUTY_ROUTING_KEY,
    WEBHOOK_BEARER_TOKEN,
    SMTP_AUTH_PASSWORD,
)

WebhookUrl = Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://[^\s]+$")]
EmailAddress = Annotated[
    str, StringConstraints(max_length=254, pattern=r"^[^\s@,<>]+@[^\s@,<>]+\.[^\s@,<>]+$")
]
# host:port; Alertmanager has no default SMTP port.
SmartHost = Annotated[
    str,
    StringConstraints(
        max_length=260, pattern=r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?:[0-9]{1,5}$"
    ),
]
SlackChannel = Annotated[
    str, StringConstraints(max_length=80, pattern=r"^[#@]?[a-z0-9][-_.a-z0-9]*$")
]


class SecretRef(SpecModel):
    """A Secret in the CR's namespace."""

    name: DnsSubdomain = Field(description="Name of the Secret.")


class EmailSpec(SpecModel):
    """Mail for warnings. The SMTP password is the Secret's smtp-auth-password key."""

    to: EmailAddress | None = Field(
        default=None, description="Recipient; unset means no email receiver."
    )
    from_address: EmailAddress | None = Field(
        default=None, description="Sender address (required with `to`)."
    )
    smarthost: SmartHost | None = Field(
        default=None, description="SMTP server as host:port (required with `to`)."
    )
    auth_username: Annotated[str, StringConstraints(max_length=254)] | None = Field(
        default=None, description="SMTP login; its password is the smtp-auth-password key."
    )
    require_tls: bool = Field(default=True, description="Require STARTTLS.")

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel(
                "!has(self.to) || (has(self.fromAddress) && has(self.smarthost))",
                "email.fromAddress and email.smarthost are required when email.to is set",
            )
        )
    )

    @model_validator(mode="after")
    def _complete(self) -> EmailSpec:
        if self.to is not None and (self.from_address is None or self.smarthost is None):
            raise ValueError(
                "email.fromAddress and email.smarthost are required when email.to is set"
            )
        return self


class AlertmanagerSpec(SpecModel):
    """Where alerts go: routing by severity (critical: PagerDuty, Slack, webhook; warning:
    Slack, email, webhook), grouped per alert and instance; a critical alert inhibits warnings
    of the same alert and instance."""

    enabled: bool = Field(
        default=True,
        description="Deploy Alertmanager with the standalone Prometheus; in prometheus-operator "
        "mode, create an AlertmanagerConfig for the cluster's Alertmanager instead.",
    )
    image: Image = image_field("quay.io/prometheus/alertmanager:v0.27.0", "Alertmanager")
    image_pull_policy: PullPolicy = pull_policy_field()
    replicas: int = replicas_field(1, "Alertmanager", maximum=5)
    resources: Resources = resources_field(
        cpu_request="50m",
        memory_request="64Mi",
        cpu_limit="200m",
        memory_limit="256Mi",
        what="Alertmanager",
    )
    persistence: Persistence = persistence_field("1Gi", "Alertmanager (silences, notification log)")
    pod_disruption_budget: DisruptionBudget = disruption_field()
    receivers_secret_ref: SecretRef | None = Field(
        default=None,
        description="Secret with the receivers' credentials, keys: slack-api-url, "
        "pagerduty-routing-key, webhook-bearer-token, smtp-auth-password. Mounted into "
        "Alertmanager, never copied; a receiver is configured only when its key exists.",
    )
    receivers_secret_keys: list[ReceiverKey] | None = Field(
        default=None,
        max_length=4,
        description="Keys of receiversSecretRef to use. Unset: the keys the Secret has (the "
        "operator reads the key names; the static chart looks them up at install). Set it for "
        "`helm template`/GitOps, where no lookup is possible.",
    )
    slack_channel: SlackChannel | None = Field(
        default=None, description="Slack channel; unset: the webhook's default channel."
    )
    webhook_url: WebhookUrl | None = Field(
        default=None,
        description="Generic webhook receiving both severities (Alertmanager's JSON payload); "
        "an optional bearer token is the webhook-bearer-token key.",
    )
    email: EmailSpec = Field(default=EmailSpec(), description="Email receiver for warnings.")
    group_wait_seconds: int = Field(
        default=30, ge=1, le=3600, description="Wait before the first notification of a group."
    )
    group_interval_seconds: int = Field(
        default=300,
        ge=1,
        le=86400,
        description="Wait before notifying about new alerts of a group.",
    )
    repeat_interval_minutes: int = Field(
        default=240, ge=1, le=10080, description="Resend a still-firing alert after this long."
    )

    model_config = ConfigDict(
        json_schema_extra=rules(
            cel(
                "!has(self.receiversSecretKeys) || has(self.receiversSecretRef)",
                "alertmanager.receiversSecretKeys needs receiversSecretRef",
            ),
            cel(
                "!has(self.receiversSecretKeys) || "
                "self.receiversSecretKeys.all(k, self.receiversSecretKeys.exists_one(j, j == k))",
                "alertmanager.receiversSecretKeys must not repeat a key",
            ),
        )
    )

    @model_validator(mode="after")
    def _keys(self) -> AlertmanagerSpec:
        keys = self.receivers_secret_keys
        if keys is not None and self.receivers_secret_ref is None:
            raise ValueError("alertmanager.receiversSecretKeys needs receiversSecretRef")
        if keys is not None and len(set(keys)) != len(keys):
            raise ValueError("alertmanager.receiversSecretKeys must not repeat a key")
        return self
