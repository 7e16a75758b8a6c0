"""ExternalSecret templates rendered the way External Secrets renders them: Go's text/template
with Sprig functions (here through helm's `tpl`, the same engine and function library; ESO
itself cannot run here), fed a store entry like the one users seed.

Unhappy paths first: a value a generated file cannot carry (a quote ends kong.yml's quoted
string, a space splits a Redis ACL line, a `#` starts a comment) fails the render with the
key's name and never the value, so ESO keeps the previous Secret and reports Ready=False
(the operator's ExternalSecretNotSynced). Then every allowed character reaches every file
intact: kong.yml passes Kong's schema with the stored keys, and a real redis-server started
with the rendered ACL file accepts the stored password and refuses another.

One difference with ESO: its data map holds strings, so a missing key reads as "" there; a
helm values map holds no such key (nil), so "missing" is played here as an empty value.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from indexforge_operator.builders import build_all
from indexforge_operator.builders.external_secrets import placeholders
from indexforge_operator.naming import Names
from indexforge_operator.spec import IndexForgeSpec
from tests.charts import kong_schema
from tests.charts.helmtools import helm
from tests.procs import free_port

NAMES = Names("demo", "ns1")
# Every printable ASCII character the rule allows, plus a non-ASCII one.
ALLOWED = "Az09!$%&()*+,-./:;<=>?@[]^_{|}~é"
RENDER_CHART = {
    "Chart.yaml": "apiVersion: v2\nname: render-eso-templates\nversion: 0.1.0\n",
    # b64enc: whatever the template produced arrives byte for byte.
    "templates/rendered.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rendered\ndata:\n"
        "{{- range $key, $template := .Values.templates }}\n"
        "  {{ $key | quote }}: {{ tpl $template $.Values.store | b64enc | quote }}\n"
        "{{- end }}\n"
    ),
}


def _templates() -> dict[str, dict[str, str]]:
    """ExternalSecret name -> target.template.data, as the operator builds them."""
    spec = IndexForgeSpec.model_validate({
        "secrets": {"provider": "externalSecrets", "vault": {"address": "https://v:8200"}},
        "gateway": {"keyAuth": {"enabled": True, "consumers": [{"username": "alice"}]}},
        "messaging": {"enabled": True},
    })  # fmt: skip
    objs = build_all(spec, NAMES, secrets=placeholders(spec), prometheus_operator=False,
                     external_secrets=True)  # fmt: skip
    return {
        o["metadata"]["name"]: o["spec"]["target"]["template"]["data"]
        for o in objs
        if o["kind"] == "ExternalSecret"
    }


def _store(**overrides: str) -> dict[str, str]:
    """A complete store entry, each value distinct and full of the allowed characters."""
    keys = ("consumer-alice", "grafana-admin-password", "weaviate-api-key", "redis-app-password",
            "redis-ml-password", "redis-state-password", "rabbitmq-password",
            "rabbitmq-erlang-cookie")  # fmt: skip
    store = {k: f"{ALLOWED}{i}" for i, k in enumerate(keys)}
    store["gateway-tokens"] = f"{ALLOWED}new\n{ALLOWED}old"
    return {**store, **overrides}


def _render(tmp_path: Path, templates: dict[str, str], store: dict[str, str],
            *, check: bool = True) -> tuple[dict[str, str], str]:  # fmt: skip
    chart = tmp_path / "chart"
    for name, text in RENDER_CHART.items():
        (chart / name).parent.mkdir(parents=True, exist_ok=True)
        (chart / name).write_text(text)
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"templates": templates, "store": store}))
    out = helm("template", "r", str(chart), "-f", str(values), check=check)
    docs = [d for d in yaml.safe_load_all(out) if d] if check else []
    data = docs[0]["data"] if docs else {}
    return {k: base64.b64decode(v).decode() for k, v in data.items()}, out


@pytest.mark.parametrize(
    "bad",
    ["it's", 'say "x"', "two words", "back\\slash", "hash#tag", "tick`tock", "tab\there",
     "line\nbreak", ""],
    ids=["quote", "double-quote", "space", "backslash", "hash", "backtick", "tab", "newline",
         "empty"],
)  # fmt: skip
def test_a_value_the_files_cannot_carry_fails_the_render_naming_only_the_key(
    tmp_path: Path, bad: str
) -> None:
    kong = _templates()["demo-gateway-config"]
    _, out = _render(tmp_path, kong, _store(**{"consumer-alice": bad}), check=False)
    assert "store key consumer-alice is missing or empty, or holds whitespace" in out, out
    assert "kind: ConfigMap" not in out  # nothing was produced
    if len(bad) > 4:
        assert bad not in out


def test_a_bad_line_in_the_token_list_fails_too(tmp_path: Path) -> None:
    internal = _templates()["demo-internal-auth"]
    store = _store(**{"gateway-tokens": "good-token\nbad token"})
    _, out = _render(tmp_path, {"gateway-tokens": internal["gateway-tokens"]}, store, check=False)
    assert "store key gateway-tokens is missing or empty" in out, out


def test_every_allowed_character_reaches_kong_yml_intact(tmp_path: Path) -> None:
    store = _store()
    rendered, _ = _render(tmp_path, _templates()["demo-gateway-config"], store)
    config: dict[str, Any] = yaml.safe_load(rendered["kong.yml"])
    assert kong_schema.problems(config) == []
    (alice,) = [c for c in config["consumers"] if c["username"] == "alice"]
    assert [k["key"] for k in alice["keyauth_credentials"]] == [store["consumer-alice"]]
    # Kong sends the newest gateway token, the first line of the stored list.
    first = store["gateway-tokens"].splitlines()[0]
    assert first in rendered["kong.yml"]
    assert store["gateway-tokens"].splitlines()[1] not in rendered["kong.yml"]


def test_the_rendered_credentials_files_carry_each_value_verbatim(tmp_path: Path) -> None:
    store = _store()
    rendered, _ = _render(tmp_path, _templates()["demo-internal-auth"], store)
    assert rendered["gateway-tokens"] == store["gateway-tokens"] + "\n"
    assert rendered["weaviate-api-key"] == store["weaviate-api-key"]
    assert f"default_pass = {store['rabbitmq-password']}\n" in rendered["rabbitmq-auth.conf"]
    assert rendered["redis-state-passwords"].split() == [store["redis-state-password"]]


@pytest.fixture
def redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is missing: run `make system-deps`")
    return binary


def test_redis_accepts_the_stored_password_from_the_rendered_acl_file(
    tmp_path: Path, redis_server_binary: str
) -> None:
    store = _store()
    rendered, _ = _render(tmp_path, _templates()["demo-internal-auth"], store)
    conf = tmp_path / "redis-app.conf"
    conf.write_text(rendered["redis-app.conf"])
    port = free_port()
    proc = subprocess.Popen(
        [redis_server_binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path), "--include", str(conf)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        good = redis.Redis(port=port, password=store["redis-app-password"], socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                assert good.ping()
                break
            except redis.exceptions.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not answer in 10 s"
                time.sleep(0.05)
        other = redis.Redis(port=port, password=store["redis-ml-password"], socket_timeout=1)
        with pytest.raises(redis.exceptions.AuthenticationError):
            other.ping()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
