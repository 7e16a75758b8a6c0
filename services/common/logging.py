"""JSON log lines carrying the service name, correlation id and trace ids.

One formatter on the root logger; uvicorn's own loggers propagate to it so every line of a
pod has the same shape. Access lines are written by the metrics middleware (it knows the
route template and the correlation id), so uvicorn's access log is turned off by the runner.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from .correlation import current_correlation_id

# LogRecord attributes that are not user "extra" fields.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "color_message"}  # uvicorn's ANSI copy of the message
)


def _trace_ids() -> dict[str, str]:
    """Current OpenTelemetry trace/span ids, if a recording span is active."""
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - tracing is an install-time option
        return {}
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return {}
    return {"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"}


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object; extra= fields are kept as top-level keys."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "service": self.service,
        }
        cid = current_correlation_id()
        if cid:
            line["correlation_id"] = cid
        line.update(_trace_ids())
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure_logging(*, service: str, level: str = "INFO", json_lines: bool = True) -> None:
    """Install one stderr handler on the root logger (idempotent: replaces ours)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_indexforge", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._indexforge = True  # type: ignore[attr-defined]
    if json_lines:
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request at INFO; the access lines of the callee already say it.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    # Let uvicorn's loggers flow through our handler instead of their own.
    for name in ("uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
