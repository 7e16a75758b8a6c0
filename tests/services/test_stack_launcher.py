"""`python -m tests.stack down` stops exactly what `up` recorded, and nothing else.

(The full `up` is exercised by `make stack-up`; it would load the model a second time here.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.cluster.controlplane import _pid_alive
from tests.stack import launcher


def test_down_stops_recorded_processes_only(tmp_path: Path) -> None:
    run = launcher.Launcher(tmp_path)
    env = {"PATH": os.environ["PATH"]}
    sleeper = run.spawn("sleeper", ["sleep", "300"], env=env, marker="sleep 300")
    finished = run.spawn("finished", ["true"], env=env, marker="true")
    finished.wait(timeout=10)
    # A PID that is alive but no longer runs what we started (reused): must be left alone.
    run.record["pids"]["reused"] = os.getpid()
    run.record["markers"]["reused"] = "weaviate-server"
    launcher.write_state(tmp_path, run.record)

    assert launcher.running(tmp_path) == {"sleeper": sleeper.pid}
    assert launcher.down(tmp_path, grace_s=5) == ["sleeper"]
    sleeper.wait(timeout=10)
    assert not _pid_alive(sleeper.pid)
    assert launcher.read_state(tmp_path)["pids"] == {}
    assert launcher.down(tmp_path) == []  # idempotent


def test_env_without_a_stack_fails_with_a_hint(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.stack", "--state-dir", str(tmp_path), "env"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1 and proc.stdout == ""
    assert "make stack-up" in proc.stderr
