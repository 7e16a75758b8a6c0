"""Prometheus, Alertmanager and redis_exporter beside the stack, with the operator's files.

The operator renders prometheus.yml, the rule file and alertmanager.yml for a spec; here they
run on Debian's `prometheus` (2.42), `prometheus-alertmanager` (0.25) and
`prometheus-redis-exporter` (1.45). Only addresses change: each DNS-discovered scrape job
becomes a static loopback target, the Alertmanager Prometheus sends to is the local one, the
rule file path is local. Everything else — relabelling (target labels), intervals, rules,
routes, receivers — is what the operator deploys; timings come from spec fields
(`STACK_MONITORING` for `make stack-up MONITORING=1`, faster ones in tests).

Not run here: Kong (no container runtime; the gateway is off in the stack spec, so its job is
not rendered) and Weaviate's metrics listener (weaviate 1.35 binds it to every interface,
`:<port>`, and nothing here may listen beyond loopback), so the `weaviate` job is left out
and listed in `NOT_RUN_HERE`.
"""

from __future__ import annotations

import base64
import json
import shutil
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from indexforge_operator.builders import build_all
from indexforge_operator.builders.alertmanager import CONFIG_FILE
from indexforge_operator.builders.prometheus import RULES_FILE
from indexforge_operator.generated import GeneratedSecrets, complete
from indexforge_operator.naming import Component, Names
from indexforge_operator.spec import IndexForgeSpec
from tests.procs import ProcessBook, free_port

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
REDIS_EXPORTER = shutil.which("prometheus-redis-exporter") or shutil.which("redis_exporter")
NAMES = Names(instance="stack", namespace="local")
# Scrape jobs of the rendered config that have no process here, and why.
NOT_RUN_HERE: dict[Component, str] = {
    "weaviate": "weaviate-server's metrics listener binds every interface (`:<port>`)",
    "redis-state": "the loopback stack runs no state Redis (the services fall back to the "
    "cache Redis); its exporter target is checked by the builder tests",
}
# `make stack-up MONITORING=1`: quick enough to watch an alert arrive within a minute or two.
STACK_MONITORING: dict[str, Any] = {
    "prometheus": {"scrapeInterval": "5s", "evaluationInterval": "5s"},
    "alerts": {"forDuration": "30s"},
    "alertmanager": {"groupWaitSeconds": 5, "groupIntervalSeconds": 10},
}


class MonitoringError(RuntimeError):
    """A monitoring binary is missing; the message says how to install it."""


def binaries() -> tuple[str, str, str]:
    """(prometheus, alertmanager, redis_exporter) or a MonitoringError naming the package."""
    found = {
        "prometheus": PROMETHEUS,
        "prometheus-alertmanager": ALERTMANAGER,
        "prometheus-redis-exporter": REDIS_EXPORTER,
    }
    missing = [package for package, path in found.items() if path is None]
    if missing:
        raise MonitoringError(f"not installed: {', '.join(missing)} (`make system-deps`)")
    assert PROMETHEUS and ALERTMANAGER and REDIS_EXPORTER
    return PROMETHEUS, ALERTMANAGER, REDIS_EXPORTER


def stack_spec(
    monitoring: dict[str, Any], *, webhook_url: str, messaging: bool = False
) -> IndexForgeSpec:
    """The stack as a spec: no gateway (Kong cannot run here), alerts to `webhook_url`,
    messaging as the stack runs it (the built-in broker: a single node here)."""
    merged = json.loads(json.dumps(monitoring))
    merged.setdefault("alertmanager", {})["webhookUrl"] = webhook_url
    raw: dict[str, Any] = {"gateway": {"enabled": False}, "monitoring": merged}
    if messaging:
        # One node; a small volume keeps the free-disk alarm (a tenth of it) under any
        # machine's free space.
        raw["messaging"] = {
            "enabled": True,
            "rabbitmq": {"replicas": 1, "persistence": {"size": "2Gi"}},
        }
    return IndexForgeSpec.model_validate(raw)


@dataclass(frozen=True)
class Rendered:
    prometheus: dict[str, Any]  # prometheus.yml
    rules: str  # the rule file, as mounted
    alertmanager: str  # alertmanager.yml


def rendered_objects(spec: IndexForgeSpec, names: Names = NAMES) -> list[dict[str, Any]]:
    """Every object the operator renders for `spec` in standalone monitoring mode."""
    secrets = complete(spec, current=GeneratedSecrets(), token=lambda: "x" * 32)
    objs: list[dict[str, Any]] = build_all(spec, names, secrets=secrets, prometheus_operator=False)
    return objs


def rendered(spec: IndexForgeSpec, names: Names = NAMES) -> Rendered:
    """The standalone-mode files exactly as the operator renders them for `spec`."""
    objs = rendered_objects(spec, names)
    by_key = {(o["kind"], o["metadata"]["name"]): o for o in objs}
    prom = by_key[("ConfigMap", names.config("prometheus"))]["data"]
    am = by_key[("Secret", names.config("alertmanager"))]["data"][CONFIG_FILE]
    return Rendered(
        prometheus=yaml.safe_load(prom["prometheus.yml"]),
        rules=prom[RULES_FILE],
        alertmanager=base64.b64decode(am).decode(),
    )


def loopback(
    config: dict[str, Any],
    *,
    rules: Path,
    prometheus: str,
    alertmanager: str | None,
    targets: dict[str, str],
    skipped: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Addresses only: every DNS-discovered job becomes a loopback static target.

    `targets` maps job names to host:port; a job in neither `targets` nor `skipped` is an
    error, so a scrape target added to the operator cannot silently go unchecked here."""
    out: dict[str, Any] = json.loads(json.dumps(config))
    out["rule_files"] = [str(rules)]
    jobs = []
    for job in out["scrape_configs"]:
        name = job["job_name"]
        if name == "prometheus":
            job["static_configs"] = [{"targets": [prometheus]}]
        elif name in skipped:
            continue
        elif name in targets:
            job.pop("dns_sd_configs")
            job["static_configs"] = [{"targets": [targets[name]]}]
        else:
            raise KeyError(f"scrape job {name!r} has no local target")
        jobs.append(job)
    out["scrape_configs"] = jobs
    for am in (out.get("alerting") or {}).get("alertmanagers", []):
        am.pop("dns_sd_configs")
        am["static_configs"] = [{"targets": [alertmanager]}]
    return out


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def query(prometheus_url: str, expr: str) -> list[dict[str, Any]]:
    """An instant query's result vector; raises on a query error."""
    url = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    body = get_json(url)
    if body.get("status") != "success":
        raise RuntimeError(f"query failed: {expr}: {body}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


@dataclass(frozen=True)
class Scraped:
    """A process Prometheus scrapes here: its job's component and its host:port."""

    component: Component
    address: str


def start(
    book: ProcessBook,
    workdir: Path,
    *,
    spec: IndexForgeSpec,
    scraped: list[Scraped],
    redis: dict[Component, int],
    deadline: float,
    names: Names = NAMES,
) -> dict[str, str]:
    """Start redis exporters (component -> Redis port in `redis`), Alertmanager and Prometheus
    with `spec`'s rendered files; returns their URLs once ready."""
    prometheus_bin, alertmanager_bin, exporter_bin = binaries()
    files = rendered(spec, names)
    workdir.mkdir(parents=True, exist_ok=True)
    targets = {names.component(s.component): s.address for s in scraped}
    for component, redis_port in redis.items():
        port = free_port()
        book.spawn(
            f"exporter-{component}",
            [exporter_bin, f"-redis.addr=redis://127.0.0.1:{redis_port}",
             f"-web.listen-address=127.0.0.1:{port}"],
        )  # fmt: skip
        targets[names.component(component)] = f"127.0.0.1:{port}"
    am_port, prom_port = free_port(), free_port()
    am_url, prom_url = f"http://127.0.0.1:{am_port}", f"http://127.0.0.1:{prom_port}"
    if spec.monitoring.alertmanager.enabled:
        targets[names.component("alertmanager")] = f"127.0.0.1:{am_port}"
    (workdir / CONFIG_FILE).write_text(files.alertmanager)
    (workdir / RULES_FILE).write_text(files.rules)
    config = loopback(
        files.prometheus,
        rules=workdir / RULES_FILE,
        prometheus=f"127.0.0.1:{prom_port}",
        alertmanager=f"127.0.0.1:{am_port}",
        targets=targets,
        skipped=frozenset(names.component(c) for c in NOT_RUN_HERE),
    )
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    for sub in ("alertmanager-data", "tsdb"):
        (workdir / sub).mkdir(exist_ok=True)
    book.spawn(
        "alertmanager",
        [alertmanager_bin, f"--config.file={workdir / CONFIG_FILE}",
         f"--storage.path={workdir / 'alertmanager-data'}",
         f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
    )  # fmt: skip
    book.spawn(
        "prometheus",
        [prometheus_bin, f"--config.file={workdir / 'prometheus.yml'}",
         f"--storage.tsdb.path={workdir / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}",
         "--web.enable-lifecycle"],
    )  # fmt: skip
    book.wait("alertmanager", lambda: http_ok(f"{am_url}/-/ready"), deadline=deadline,
              watch=["alertmanager"])  # fmt: skip
    book.wait("prometheus", lambda: http_ok(f"{prom_url}/-/ready"), deadline=deadline,
              watch=["prometheus"])  # fmt: skip
    return {"prometheus": prom_url, "alertmanager": am_url}


def sink_argv(port: int, out: Path) -> list[str]:
    """The stack's webhook receiver: appends each Alertmanager notification to `out`."""
    return [sys.executable, "-m", "tests.stack.alert_sink", "--port", str(port), "--out", str(out)]
