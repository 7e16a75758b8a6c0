"""`python -m tests.stack up|down|env`: the service stack on loopback, without containers.

`up` prints only `export` lines on stdout: `INDEXFORGE_API=<url>`, and with `--monitoring`
also `INDEXFORGE_JAEGER`, `INDEXFORGE_PROMETHEUS`, `INDEXFORGE_ALERTMANAGER` (URLs) and
`INDEXFORGE_ALERTS` (the file the webhook receiver appends notifications to); progress goes to
stderr, so `eval "$(make -s stack-up)"` works; `down` stops every process `up` started.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from tests.cluster.tools import ToolBuildError
from tests.procs import StartupError
from tests.stack import launcher
from tests.stack.jaeger import JaegerError
from tests.stack.messaging import MessagingError
from tests.stack.monitoring import MonitoringError
from tests.stack.weaviate import WeaviateError

EXPORTED = {
    "api": "INDEXFORGE_API",
    "jaeger": "INDEXFORGE_JAEGER",
    "prometheus": "INDEXFORGE_PROMETHEUS",
    "alertmanager": "INDEXFORGE_ALERTMANAGER",
    "alerts_file": "INDEXFORGE_ALERTS",
    "rabbitmq": "INDEXFORGE_AMQP_URL",
}


def export_lines(urls: dict[str, str]) -> list[str]:
    """What `eval` should set: the API, and the monitoring stack's addresses when it runs."""
    return [f"export {var}={urls[key]}" for key, var in EXPORTED.items() if key in urls]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.stack")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("INDEXFORGE_STACK_DIR", launcher.DEFAULT_STATE_DIR)),
        help="where logs, Redis/Weaviate data and PIDs live (default .stack/)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up_cmd = sub.add_parser("up", help="start the stack and wait until every service is ready")
    up_cmd.add_argument(
        "--monitoring",
        action="store_true",
        help="also start the monitoring stack (Jaeger, Prometheus, Alertmanager, redis "
        "exporters, a webhook receiver) with the operator's rendered files",
    )
    up_cmd.add_argument(
        "--messaging",
        action="store_true",
        help="also start RabbitMQ and an ingestion worker; the API runs in queue mode",
    )
    sub.add_parser("down", help="stop every process `up` started")
    sub.add_parser("env", help="print the export line of the running stack")
    args = parser.parse_args(argv)
    state: Path = args.state_dir.resolve()

    if args.command == "down":
        stopped = launcher.down(state)
        launcher.say(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        return 0
    if args.command == "env":
        record = launcher.read_state(state)
        if not launcher.running(state) or "api" not in record.get("urls", {}):
            launcher.say("no stack is running: run `make stack-up`")
            return 1
        print("\n".join(export_lines(record["urls"])))
        return 0
    started = time.monotonic()
    try:
        api = launcher.up(state, monitoring=args.monitoring, messaging=args.messaging)
    except (
        StartupError,
        WeaviateError,
        JaegerError,
        MonitoringError,
        MessagingError,
        ToolBuildError,
    ) as exc:
        launcher.say(f"stack-up failed: {exc}")
        launcher.say("stopping what was started")
        launcher.down(state)
        return 1
    launcher.say(f"# stack ready in {time.monotonic() - started:.1f}s (logs: {state / 'logs'})")
    urls = {**launcher.read_state(state).get("urls", {}), "api": api}
    print("\n".join(export_lines(urls)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
