"""`python -m tests.stack.alert_sink --port P --out FILE`: the stack's webhook receiver.

Alertmanager's webhook receiver (`monitoring.alertmanager.webhookUrl`) posts each
notification here; every one is appended to FILE as one JSON line, so
`tail -f .stack/alerts.jsonl` shows alerts as they arrive. GET answers 200 (readiness).
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MAX_BODY = 1 << 20  # a notification of a few hundred alerts; larger is refused


def handler(out: Path) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Sink(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                self.send_response(413 if length else 400)
                self.end_headers()
                return
            try:
                notification = json.loads(self.rfile.read(length))
            except ValueError:
                self.send_response(400)
                self.end_headers()
                return
            with lock, out.open("a") as sink:
                sink.write(json.dumps(notification, sort_keys=True) + "\n")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    return Sink


def read(out: Path) -> list[dict[str, Any]]:
    """Every notification received so far (oldest first)."""
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def firing(out: Path) -> dict[str, dict[str, Any]]:
    """alertname -> its latest firing alert, with the receiver that got it."""
    found: dict[str, dict[str, Any]] = {}
    for notification in read(out):
        for alert in notification.get("alerts", []):
            if alert.get("status") == "firing":
                name = alert["labels"]["alertname"]
                found[name] = {**alert, "receiver": notification.get("receiver")}
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.stack.alert_sink")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(args.out))
    server.serve_forever()


if __name__ == "__main__":
    main()
