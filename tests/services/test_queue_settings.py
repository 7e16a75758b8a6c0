"""Queue-mode settings refuse what cannot work, before anything starts; `--worker` means
queue mode with a consumer; the broker's password is a secret the Sentry hook blanks."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from indexforge_services.api.main import WorkerSettings
from indexforge_services.api.settings import ApiSettings

URL = "amqp://indexforge:s3cret-pw@rabbitmq:5672/"
REDIS = "redis://127.0.0.1:6379/0"


def settings(cls: type[ApiSettings] = ApiSettings, **values: Any) -> ApiSettings:
    return cls(_env_file=None, **values)  # type: ignore[call-arg]


def test_inline_is_the_default_and_needs_no_broker() -> None:
    s = settings()
    assert (s.ingest_mode, s.ingest_worker, s.resolved_amqp_url()) == ("inline", False, None)


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"ingest_mode": "queue", "redis_url": REDIS}, "amqp_url"),
        ({"ingest_mode": "queue", "amqp_url": URL}, "redis_url"),
        ({"ingest_worker": True}, "ingest_mode=queue"),
        ({"ingest_mode": "kafka"}, "ingest_mode"),
    ],
)
def test_queue_mode_refuses_a_setup_that_cannot_work(values: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        settings(**values)


def test_worker_flag_means_queue_mode_with_a_consumer(tmp_path: Any) -> None:
    secret = tmp_path / "amqp-url"
    secret.write_text(URL + "\n")
    s = settings(WorkerSettings, amqp_url_file=secret, redis_url=REDIS)
    assert (s.ingest_mode, s.ingest_worker, s.service_name) == ("queue", True, "indexforge-worker")
    assert s.resolved_amqp_url() == URL
    assert {URL, "s3cret-pw"} <= set(s.secret_values())
    with pytest.raises(ValidationError):
        settings(WorkerSettings, redis_url=REDIS)  # a worker without a broker
