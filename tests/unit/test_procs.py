"""Process bookkeeping: stop exactly what was started, never a reused PID."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.procs import ProcessBook, StartupError, pid_alive
from tests.stack import launcher


def test_stop_all_stops_recorded_processes_only(tmp_path: Path) -> None:
    book = ProcessBook(tmp_path)
    env = {"PATH": os.environ["PATH"]}
    sleeper = book.spawn("sleeper", ["sleep", "300"], env=env, marker="sleep 300")
    finished = book.spawn("finished", ["true"], env=env, marker="true")
    finished.wait(timeout=10)
    # A PID that is alive but no longer runs what we started (reused): must be left alone.
    book.record["pids"]["reused"] = os.getpid()
    book.record["markers"]["reused"] = "weaviate-server"
    book.save()

    again = ProcessBook(tmp_path)  # another process reading the same state file
    assert again.running() == {"sleeper": sleeper.pid}
    assert again.stop_all(grace_s=5) == ["sleeper"]
    sleeper.wait(timeout=10)
    assert not pid_alive(sleeper.pid)
    assert pid_alive(os.getpid())
    assert ProcessBook(tmp_path).record["pids"] == {}
    assert launcher.down(tmp_path) == []  # idempotent, through the stack's entry point


def test_wait_fails_fast_with_the_log_of_a_process_that_died(tmp_path: Path) -> None:
    book = ProcessBook(tmp_path)
    book.spawn("crasher", ["sh", "-c", "echo boom-reason; exit 3"], marker="boom")
    with pytest.raises(StartupError) as err:
        book.wait("never", lambda: False, deadline=float("inf"))
    assert "crasher exited" in str(err.value)
    assert "boom-reason" in str(err.value)
