"""Excel processor metrics: rows read and how fast, files by result, rejects by reason."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PARSE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ExcelMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.rows = Counter("excel_rows_total", "Data rows read from workbooks.", registry=registry)
        self.rows_per_second = Gauge(
            "excel_rows_per_second", "Read rate of the last parsed workbook.", registry=registry
        )
        self.parse_seconds = Histogram(
            "excel_parse_seconds",
            "Time to read one workbook into records.",
            buckets=PARSE_BUCKETS,
            registry=registry,
        )
        self.files = Counter(
            "excel_files_total", "Uploads by result.", ["result"], registry=registry
        )
        self.rejects = Counter(
            "excel_rejects_total", "Refused uploads by reason.", ["reason"], registry=registry
        )

    def parsed(self, rows: int, seconds: float) -> None:
        self.files.labels("parsed").inc()
        self.rows.inc(rows)
        self.parse_seconds.observe(seconds)
        if seconds > 0:
            self.rows_per_second.set(rows / seconds)

    def rejected(self, reason: str) -> None:
        self.files.labels("rejected").inc()
        self.rejects.labels(reason).inc()
