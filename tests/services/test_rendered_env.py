"""Every setting the operator writes into a service's Deployment reaches the process that
uses it: the container env the builders render (values, Secret references resolved from the
rendered Secrets, Secret files materialised at their mount paths) is handed, and nothing
else, to the service's own settings class in a fresh interpreter.

This catches the bug class of issue 10: `ml.cacheTtlSeconds` was written to a variable the
ML service did not read, and the Excel limits never reached the API."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from indexforge_operator.builders import build_all
from indexforge_operator.generated import GeneratedSecrets, complete
from indexforge_operator.naming import Names
from indexforge_operator.spec import IndexForgeSpec

NAMES = Names("envcheck", "shop")
SETTINGS = {
    "api": "indexforge_services.api.settings:ApiSettings",
    "ml": "indexforge_services.ml.settings:MLSettings",
    "excel": "indexforge_services.excel.settings:ExcelSettings",
}
# Distinct, non-default values, so a default can never pass for the spec's value.
SPEC = {
    "api": {"cache": {"responseTtlSeconds": 77, "sessionTtlSeconds": 7777}},
    "ml": {"cacheTtlSeconds": 1234, "batchSize": 48},
    "excel": {"maxRows": 4321, "maxUploadMegabytes": 7},
    "gateway": {"proxyCache": {"ttlSeconds": 20}},
}
_DUMP = """
import json, sys
from importlib import import_module
from pydantic import SecretStr
module, name = sys.argv[1].split(":")
cls = getattr(import_module(module), name)
s = cls()
out = {k: (v.get_secret_value() if isinstance(v, SecretStr) else v)
       for k, v in s.model_dump().items()}
out["__fields__"] = sorted(cls.model_fields)
out["__prefix__"] = cls.model_config.get("env_prefix", "")
print(json.dumps(out, default=str))
"""


def _objects(tmp_path: Path) -> tuple[IndexForgeSpec, GeneratedSecrets, list[dict[str, Any]]]:
    spec = IndexForgeSpec.model_validate(SPEC)
    counter = iter(range(1, 1000))
    secrets = complete(spec, current=GeneratedSecrets(), token=lambda: f"tok{next(counter)}")
    return spec, secrets, build_all(spec, NAMES, secrets=secrets, prometheus_operator=False)


def _secret_data(objs: list[dict[str, Any]], name: str) -> dict[str, str]:
    (secret,) = [o for o in objs if o["kind"] == "Secret" and o["metadata"]["name"] == name]
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def _process_env(objs: list[dict[str, Any]], component: str, root: Path) -> dict[str, str]:
    """The container's env as the kubelet would give it, Secret volumes under `root`."""
    (deploy,) = [
        o
        for o in objs
        if o["kind"] == "Deployment" and o["metadata"]["name"] == NAMES.component(component)  # type: ignore[arg-type]
    ]
    pod = deploy["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    remap: dict[str, str] = {}
    for mount in container.get("volumeMounts", []):
        source = volumes[mount["name"]].get("secret")
        if source is None:
            continue
        target = root / mount["mountPath"].lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        data = _secret_data(objs, source["secretName"])
        for item in source.get("items") or [{"key": k, "path": k} for k in data]:
            (target / item["path"]).write_text(data[item["key"]])
        remap[mount["mountPath"]] = str(target)
    env: dict[str, str] = {}
    for var in container["env"]:
        if "value" in var:
            value = var["value"]
            for mount_path, local in remap.items():
                if value.startswith(mount_path + "/"):
                    value = local + value[len(mount_path) :]
            env[var["name"]] = value
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = _secret_data(objs, ref["name"])[ref["key"]]
    return env


def _settings(component: str, env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", _DUMP, SETTINGS[component]],
        env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"{component} settings rejected the rendered env:\n{proc.stderr}"
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("pods")
    spec, secrets, objs = _objects(root)
    out: dict[str, Any] = {"spec": spec, "secrets": secrets, "objs": objs}
    for component in SETTINGS:
        env = _process_env(objs, component, root / component)
        out[component] = (env, _settings(component, env))
    return out


@pytest.mark.parametrize("component", list(SETTINGS))
def test_every_variable_the_operator_writes_is_read_by_the_service(
    rendered: dict[str, Any], component: str
) -> None:
    env, settings = rendered[component]
    prefix = settings["__prefix__"]
    known = {f"{prefix}{f}".upper() for f in settings["__fields__"]}
    unread = sorted(k for k in env if k.startswith(prefix) and k not in known)
    assert unread == [], f"{component}: the service ignores {unread}"


def _file(path: str | None) -> str:
    assert path, "no password file configured"
    return Path(path).read_text().strip()


@pytest.mark.parametrize("component", list(SETTINGS))
def test_redis_passwords_reach_services_as_files_only(
    rendered: dict[str, Any], component: str
) -> None:
    """A value in the env would be the pod's start-time password for the process's life (and
    settings prefer it); the mounted file is what a rotation updates."""
    env, settings = rendered[component]
    assert settings["redis_password"] is None
    assert settings.get("state_redis_password") is None
    assert not any("PASSWORD" in k for k in env if not k.endswith("_FILE")), sorted(env)
    assert not any("API_KEY" in k for k in env if not k.endswith("_FILE")), sorted(env)


def test_api_settings_follow_the_spec(rendered: dict[str, Any]) -> None:
    spec, secrets = rendered["spec"], rendered["secrets"]
    _, api = rendered["api"]
    assert api["cache_response_ttl_seconds"] == spec.api.cache.response_ttl_seconds
    assert api["excel_max_upload_bytes"] == 7 * 1024 * 1024
    assert api["excel_max_rows"] == 4321
    assert api["gateway_cache_max_age_seconds"] == 20  # min(proxy-cache TTL, response TTL)
    # The Weaviate key too is a file (a key rotation moves it without a restart), never a value.
    assert api["weaviate_api_key"] is None
    assert _file(api["weaviate_api_key_file"]) == secrets.weaviate_api_key
    assert _file(api["redis_password_file"]) == secrets.redis_password("redis-app")
    assert _file(api["state_redis_password_file"]) == secrets.redis_password("redis-state")
    assert api["metrics_port"] == 9102


def test_ml_settings_follow_the_spec(rendered: dict[str, Any]) -> None:
    secrets = rendered["secrets"]
    _, ml = rendered["ml"]
    assert ml["embedding_cache_ttl_seconds"] == 1234
    assert ml["batch_max_size"] == 48
    assert _file(ml["redis_password_file"]) == secrets.redis_password("redis-ml")


def test_excel_settings_follow_the_spec(rendered: dict[str, Any]) -> None:
    _, excel = rendered["excel"]
    assert excel["max_rows"] == 4321 and excel["max_upload_bytes"] == 7 * 1024 * 1024


@pytest.mark.parametrize("component", list(SETTINGS))
def test_services_get_the_gateway_token_as_a_file(rendered: dict[str, Any], component: str) -> None:
    env, _ = rendered[component]
    path = Path(env["INDEXFORGE_GATEWAY_TOKENS_FILE"])
    assert path.read_text().split() == list(rendered["secrets"].gateway_tokens)
