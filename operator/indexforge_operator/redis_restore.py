"""The steps of a Redis restore asked for by `indexforge.io/restore=redis-<app|state>/<file>`,
as one pure function: (the request's record, what was observed) -> what to do next.

A restore replaces the data of a stopped Redis, so it takes several passes; everything it
needs between them lives in the CR's `status.restoreRequest` (`step`, `startedAt`,
`jobResult`), so an operator restarted mid-restore resumes where the last one stopped:

    Stopping   the StatefulSet (with replication: and the Sentinels) is rendered with 0
               replicas; wait until it is at 0 and no pod is left (terminating ones count:
               they may still write to the volume)
    Restoring  the restore Job (builders/redis_restore.py) runs on the `-0` pod's claim;
               wait until it has finished and its pod has stopped (or is gone)
    Starting   the StatefulSet is rendered as the spec says again; wait until it is ready,
               then the request ends Succeeded, or Failed with the Job's reason (the Job
               failed before touching the data, or put the old data back)

Bounded: Stopping and Starting end after TIMEOUT_SECONDS from the start (Failed, nothing
restored / not ready); Restoring is bounded by the Job's own activeDeadlineSeconds, shorter
than that, and is never cut short here: Redis must not start while the Job writes its volume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Step = Literal["Stopping", "Restoring", "Starting"]
JobState = Literal["Running", "Succeeded", "Failed"]
TIMEOUT_SECONDS = 3600  # > the Job's activeDeadlineSeconds (builders/redis_restore.py)
STOPPED_STEPS: tuple[Step, ...] = ("Stopping", "Restoring")


@dataclass(frozen=True)
class Observed:
    """What one pass saw; only what the current step needs is read."""

    elapsed: float  # seconds since the request started
    scaled_down: bool = False  # every stopped StatefulSet has spec.replicas 0
    pods: int = 0  # pods of those StatefulSets still there (terminating ones too)
    job: tuple[JobState, str] | None = None  # the Job's result; None: no such Job
    job_pods: int = 0  # pods of the Job that may still run (not Succeeded/Failed)
    ready: bool = False  # the StatefulSets are back at their replicas, all ready


@dataclass(frozen=True)
class Next:
    """``step`` None: finished with ``result``; ``create_job``: create the Job now."""

    step: Step | None
    result: Literal["Running", "Succeeded", "Failed"] = "Running"
    message: str = ""
    create_job: bool = False
    job_result: JobState | None = None


def decide(
    step: Step,
    observed: Observed,
    *,
    job_result: JobState | None = None,
    job_message: str = "",
    timeout: float = TIMEOUT_SECONDS,
) -> Next:
    """The next step of a running restore. ``job_result``/``job_message``: what the Job
    ended with (recorded when Restoring ended), read in Starting."""
    late = observed.elapsed > timeout
    if step == "Stopping":
        if observed.job is not None:  # created by a pass whose status write was lost
            return Next("Restoring")
        if observed.scaled_down and observed.pods == 0:
            return Next("Restoring", create_job=True)
        if late:
            return Next(
                None,
                "Failed",
                f"RestoreTimeout: Redis still had {observed.pods} pod(s) after {timeout:.0f}s; "
                "nothing was restored",
            )
        return Next("Stopping")
    if step == "Restoring":
        state: JobState
        if observed.job is None:
            state, message = "Failed", "the restore Job was deleted before it finished"
        else:
            state, message = observed.job
        if state == "Running" or observed.job_pods > 0:
            return Next("Restoring")  # never start Redis while the Job may write its volume
        return Next("Starting", job_result=state, message=message)
    # Starting
    if observed.ready or late:
        if job_result != "Succeeded":
            return Next(None, "Failed", job_message or "the restore Job failed")
        if observed.ready:
            return Next(None, "Succeeded")
        return Next(
            None,
            "Failed",
            f"RestoreTimeout: the backup was restored but Redis was not ready within "
            f"{timeout:.0f}s of the request",
        )
    return Next("Starting", job_result=job_result, message=job_message)
