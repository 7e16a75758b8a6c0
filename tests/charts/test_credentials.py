"""Generated credentials of the static chart (issue 10): with `credentials.existingSecret` the
chart renders no secret value, so `helm template` (GitOps renderers, no `lookup`) gives the same
bytes on every render; `indexforge credentials` prints that Secret with every key the chart
reads; Kong's config, which must embed those values, gets them through references that resolve
in the pod to the same document the chart renders with generated values. No cluster needed.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts import kong_schema
from tests.charts.helmtools import REPO, STATIC_CHART, STATIC_VARIANTS, helm_template
from tests.charts.parity import GENERATED, Obj, load_stream, normalise

RELEASE, NAMESPACE = "creds", "creds-ns"
SECRET = f"{RELEASE}-credentials"  # the CLI's default name


def _provider(values: Path) -> str:
    secrets = (yaml.safe_load(values.read_text()) or {}).get("secrets") or {}
    return str(secrets.get("provider", "kubernetes"))


# credentials.existingSecret is the kubernetes provider's alternative: a fixture naming another
# secrets.provider (external-secrets) is refused with it (tests/charts/test_secrets_provider.py).
VARIANTS = [None, *(v for v in STATIC_VARIANTS if _provider(v) == "kubernetes")]
EXISTING = [f"credentials.existingSecret={SECRET}"]


def _id(values: Path | None) -> str:
    return "defaults" if values is None else values.name.removesuffix("-values.yaml")


def _render(values: Path | None, *, existing: bool = True, extra: Path | None = None) -> str:
    files = [v for v in (values, extra) if v is not None]
    return helm_template(
        STATIC_CHART, release=RELEASE, namespace=NAMESPACE, values=files,
        set_values=EXISTING if existing else [],
    )  # fmt: skip


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "indexforge_operator.cli", "credentials", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False, cwd=REPO)


def _cli_secret(values: Path | None) -> Obj:
    args = ["--release", RELEASE, "--namespace", NAMESPACE]
    proc = _cli(*args, *(["-f", str(values)] if values else []))
    assert proc.returncode == 0, proc.stderr
    docs = load_stream(proc.stdout)
    assert len(docs) == 1 and docs[0]["kind"] == "Secret", proc.stdout
    return docs[0]


def _walk(node: Any) -> Iterator[Obj]:
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def secret_refs(objs: list[Obj]) -> set[tuple[str, str | None]]:
    """(Secret name, key) of every secretKeyRef and Secret volume item; key None for a
    volume of the whole Secret."""
    refs: set[tuple[str, str | None]] = set()
    for node in _walk(objs):
        ref = node.get("secretKeyRef")
        if isinstance(ref, dict):
            refs.add((ref["name"], ref["key"]))
        volume = node.get("secret")
        if isinstance(volume, dict) and "secretName" in volume:
            items = volume.get("items") or [{"key": None}]
            refs |= {(volume["secretName"], item["key"]) for item in items}
    return refs


# Rendered from the spec alone (alertmanager.yml names receiver *files*, never values): the
# same bytes on every render, so they stay Secrets of the chart in existingSecret mode too.
CONFIG_SECRETS = {f"{RELEASE}-alertmanager-config"}


def _spec_secrets(values: Path | None) -> set[str]:
    """Secrets the spec names itself (TLS certificate, Sentry DSN, alert receivers, backup
    bucket keys): not credentials the chart generates."""
    spec = yaml.safe_load(values.read_text()) if values else {}
    gateway_tls = ((spec or {}).get("gateway") or {}).get("tls") or {}
    sentry = ((spec or {}).get("sentry") or {}).get("dsnSecretRef") or {}
    monitoring = (spec or {}).get("monitoring") or {}
    receivers = (monitoring.get("alertmanager") or {}).get("receiversSecretRef") or {}
    s3 = (((spec or {}).get("backup") or {}).get("target") or {}).get("s3") or {}
    names = (
        gateway_tls.get("secretName"),
        sentry.get("name"),
        receivers.get("name"),
        s3.get("credentialsSecret"),
    )
    return {n for n in names if n}


# -- stable output -----------------------------------------------------------------------------


@pytest.mark.parametrize("values", VARIANTS, ids=_id)
def test_existing_secret_renders_the_same_bytes_twice(values: Path | None) -> None:
    first, second = _render(values), _render(values)
    assert first == second


def test_without_existing_secret_every_render_generates_new_values() -> None:
    """What the test above guards against (and proof that it can fail): `helm template` has no
    `lookup`, so each render generates every credential anew."""
    first, second = _render(None, existing=False), _render(None, existing=False)
    assert first != second

    def generated(stream: str) -> dict[str, str]:
        out = {}
        for obj in load_stream(stream):
            name = obj["metadata"]["name"]
            if obj["kind"] == "Secret" and name not in {
                f"{RELEASE}-gateway-config",
                *CONFIG_SECRETS,
            }:
                for k, v in obj["data"].items():
                    out[f"{obj['metadata']['name']}/{k}"] = base64.b64decode(v).decode()
        return out

    a, b = generated(first), generated(second)
    assert set(a) >= {
        f"{RELEASE}-internal-auth/gateway-tokens", f"{RELEASE}-internal-auth/weaviate-api-key",
        f"{RELEASE}-gateway-consumers/default", f"{RELEASE}-grafana-admin/admin-password",
    }  # fmt: skip
    assert a.keys() == b.keys()
    changed = {k for k in a if a[k] != b[k]}
    assert changed == set(a) - {f"{RELEASE}-grafana-admin/admin-user"}


def test_generated_values_agree_within_one_render() -> None:
    """kong.yml and the Secrets are different templates; they see the same generated values."""
    objs = {o["metadata"]["name"]: o for o in load_stream(_render(None, existing=False))}

    def data(name: str) -> dict[str, str]:
        return {k: base64.b64decode(v).decode() for k, v in objs[name]["data"].items()}

    internal, consumers = data(f"{RELEASE}-internal-auth"), data(f"{RELEASE}-gateway-consumers")
    kong = yaml.safe_load(data(f"{RELEASE}-gateway-config")["kong.yml"])
    token = internal["gateway-tokens"].splitlines()[0]
    assert f"X-IndexForge-Gateway-Token:{token}" in kong["plugins"][0]["config"]["add"]["headers"]
    limit = kong["services"][0]["plugins"][0]["config"]
    assert limit["redis"]["password"] == internal["redis-app-password"]
    assert internal["redis-app.conf"] == (
        f"user default on >{internal['redis-app-password']} ~* &* +@all\n"
        f"masterauth {internal['redis-app-password']}\n"
    )
    assert internal["redis-app-passwords"] == f"{internal['redis-app-password']}\n"
    assert {c["username"]: c["keyauth_credentials"][0]["key"] for c in kong["consumers"]} == (
        consumers
    )


@pytest.mark.parametrize("values", VARIANTS, ids=_id)
def test_existing_secret_mode_renders_no_secret_and_reads_only_that_one(
    values: Path | None,
) -> None:
    objs = load_stream(_render(values))
    rendered = {o["metadata"]["name"] for o in objs if o["kind"] == "Secret"}
    assert rendered <= CONFIG_SECRETS
    names = {name for name, _ in secret_refs(objs)} - _spec_secrets(values) - CONFIG_SECRETS
    assert names == {SECRET}


# -- the pre-install step ------------------------------------------------------------------------


@pytest.mark.parametrize("values", VARIANTS, ids=_id)
def test_cli_secret_has_every_key_the_chart_reads(values: Path | None) -> None:
    secret = _cli_secret(values)
    assert secret["metadata"]["name"] == SECRET
    assert secret["metadata"]["namespace"] == NAMESPACE
    data: dict[str, str] = secret["stringData"]
    read = {key for name, key in secret_refs(load_stream(_render(values))) if name == SECRET}
    assert None not in read, "a volume mounts the whole credentials Secret"
    assert len(read) >= 6, read
    assert read <= set(data), f"keys the chart reads but the CLI does not write: {read - set(data)}"


def test_cli_values_have_the_documented_layout() -> None:
    data = _cli_secret(STATIC_CHART / "ci" / "full-values.yaml")["stringData"]
    assert {"consumer-web", "consumer-batch", "grafana-admin-password"} <= set(data)
    assert data["gateway-tokens"].splitlines() == [data["gateway-token"]]
    for instance in ("redis-app", "redis-ml", "redis-state"):
        password = data[f"{instance}-password"]
        assert data[f"{instance}.conf"] == (
            f"user default on >{password} ~* &* +@all\nmasterauth {password}\n"
        )
        assert data[f"{instance}-passwords"] == f"{password}\n"  # the list Redis accepts
    assert data["weaviate-api-keys"] == data["weaviate-api-key"]  # the list Weaviate accepts
    lists = (
        "gateway-tokens",
        "weaviate-api-keys",
        *(f"{i}-passwords" for i in ("redis-app", "redis-ml", "redis-state")),
    )
    single = {k: v for k, v in data.items() if k not in lists and not k.endswith(".conf")}
    for key, value in single.items():
        assert re.fullmatch(r"[A-Za-z0-9_-]{32,}", value), key  # URL-safe, no newline
    assert len(set(single.values()) - {data["gateway-token"]}) == len(single) - 1, "reused value"


def test_cli_prints_new_values_every_run() -> None:
    assert _cli_secret(None)["stringData"] != _cli_secret(None)["stringData"]


def test_cli_follows_the_values(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        "gateway: {keyAuth: {consumers: [{username: app-one}]}}\nmonitoring: {enabled: false}\n"
        "credentials: {existingSecret: ignored}\n"
    )
    data = _cli_secret(values)["stringData"]
    assert "consumer-app-one" in data and "consumer-default" not in data
    assert "grafana-admin-password" not in data


def test_cli_rejects_what_the_chart_rejects(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("api: {replicaz: 2}\n")
    bad_values = _cli("--release", RELEASE, "--namespace", NAMESPACE, "-f", str(values))
    assert bad_values.returncode == 2 and "replicaz" in bad_values.stderr
    bad_release = _cli("--release", "9lives", "--namespace", NAMESPACE)
    assert bad_release.returncode == 2 and "--release" in bad_release.stderr


# -- Kong's config in existingSecret mode -----------------------------------------------------


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' expansion of an env value: $(NAME) of a variable defined earlier becomes its
    value, $$ becomes $, anything else stays (kubernetes third_party/forked/golang/expansion)."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        match = re.compile(r"\$\(([^)]*)\)").match(text, i)
        if match and match.group(1) in env:
            out.append(env[match.group(1)])
            i = match.end()
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def test_expansion_follows_kubernetes() -> None:
    env = {"A": "x"}
    assert expand("$(A)-$$(A)-$(B)-$$$(A)-$", env) == "x-$(A)-$(B)-$x-$"


def _kong_env(stream: str) -> list[Obj]:
    gateway = next(
        o for o in load_stream(stream)
        if o["kind"] == "Deployment" and o["metadata"]["name"] == f"{RELEASE}-gateway"
    )  # fmt: skip
    env: list[Obj] = gateway["spec"]["template"]["spec"]["containers"][0]["env"]
    return env


def kong_config_in_pod(stream: str, secret_data: Mapping[str, str]) -> Obj:
    """The config Kong loads: KONG_DECLARATIVE_CONFIG_STRING as Kubernetes expands it with
    the Secret's values (env vars defined before it only, as Kubernetes does)."""
    defined: dict[str, str] = {}
    for var in _kong_env(stream):
        if var["name"] == "KONG_DECLARATIVE_CONFIG_STRING":
            config: Obj = json.loads(expand(var["value"], defined))
            return config
        ref = (var.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            assert ref["name"] == SECRET
            defined[var["name"]] = secret_data[ref["key"]]
        elif "value" in var:
            defined[var["name"]] = expand(var["value"], defined)
    raise AssertionError("no KONG_DECLARATIVE_CONFIG_STRING in the gateway Deployment")


GATEWAY_VARIANTS = [
    v for v in VARIANTS
    if ((yaml.safe_load(v.read_text()) if v else {}).get("gateway") or {}).get("enabled", True)
]  # fmt: skip


@pytest.mark.parametrize("values", GATEWAY_VARIANTS, ids=_id)
def test_kong_config_resolves_to_what_the_chart_renders_with_generated_values(
    values: Path | None,
) -> None:
    data = _cli_secret(values)["stringData"]
    stream = _render(values)
    config = kong_config_in_pod(stream, data)
    assert kong_schema.problems(config) == []
    # Every value resolved: the CLI's keys and token, the Redis password from Kong's env vault.
    text = json.dumps(config)
    assert "$(" not in text and "@@" not in text
    headers = config["plugins"][0]["config"]["add"]["headers"]
    assert headers == [f"X-IndexForge-Gateway-Token:{data['gateway-token']}"]
    for consumer in config["consumers"]:
        key = data[f"consumer-{consumer['username']}"]
        assert consumer["keyauth_credentials"] == [{"key": key}]
    for service in config["services"]:
        for plugin in service["plugins"]:
            if "redis" in plugin["config"]:
                reference = plugin["config"]["redis"]["password"]
                assert reference == "{vault://env/indexforge-redis-app-password}"
                env = {v["name"]: v for v in _kong_env(stream)}
                ref = env["INDEXFORGE_REDIS_APP_PASSWORD"]["valueFrom"]["secretKeyRef"]
                assert ref == {"name": SECRET, "key": "redis-app-password"}
    # The same document as the chart's generated-values kong.yml, secret values aside.
    generated = next(
        o for o in load_stream(_render(values, existing=False))
        if o["kind"] == "Secret" and o["metadata"]["name"] == f"{RELEASE}-gateway-config"
    )  # fmt: skip
    expected = normalise(generated)["data"]["kong.yml"]
    encoded = base64.b64encode(json.dumps(config).encode()).decode()
    as_secret = {"kind": "Secret", "metadata": {"name": "x"}, "data": {"kong.yml": encoded}}
    assert normalise(as_secret)["data"]["kong.yml"] == expected
    assert GENERATED in json.dumps(expected)


def test_other_dollar_parentheses_in_the_config_stay_literal(tmp_path: Path) -> None:
    """Only the chart's references expand: a `$(` in a value (here a User-Agent regex naming one
    of the variables) reaches Kong unchanged instead of being replaced by a secret."""
    values = tmp_path / "values.yaml"
    deny = "^evil$(INDEXFORGE_GATEWAY_TOKEN)"
    values.write_text(yaml.safe_dump({"gateway": {"botDetection": {"deny": [deny]}}}))
    config = kong_config_in_pod(_render(None, extra=values), _cli_secret(None)["stringData"])
    bot = next(p for p in config["plugins"] if p["name"] == "bot-detection")
    assert bot["config"]["deny"] == [deny]
