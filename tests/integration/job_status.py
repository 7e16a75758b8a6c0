"""Play a Job's failure through its status subresource (kwok runs no container to fail)."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

_STAMP = "%Y-%m-%dT%H:%M:%SZ"


def fail_job(api_client: Any, namespace: str, name: str, *, reason: str, message: str,
             failed: int) -> None:  # fmt: skip
    """Mark the Job Failed the way the Job controller does.

    status.startTime is immutable once the Job controller has set it (a second or so after
    creation), so the live value is reused; when the controller sets it between our read and
    our patch the API server answers 422 and we read again (bounded).
    """
    batch = client.BatchV1Api(api_client)
    for attempt in range(3):
        job = batch.read_namespaced_job(name, namespace)
        started = job.status.start_time or job.metadata.creation_timestamp
        now = started.strftime(_STAMP)
        conditions = [
            {"type": t, "status": "True", "reason": reason, "message": message,
             "lastProbeTime": now, "lastTransitionTime": now}
            for t in ("FailureTarget", "Failed")
        ]  # fmt: skip
        status = {"startTime": now, "conditions": conditions, "failed": failed, "active": None}
        try:
            batch.patch_namespaced_job_status(name, namespace, {"status": status})
            return
        except ApiException as exc:
            if exc.status != 422 or attempt == 2:
                raise
