"""Redis passwords wired for a live rotation (issue 14, item 3): every Redis pod runs the ACL
sync sidecar on a directory-mounted accepted-password list, every service reads its Redis
passwords from mounted files, and no password is a literal anywhere outside a Secret."""

from __future__ import annotations

import base64
import dataclasses
import json
from types import MappingProxyType
from typing import Any

import pytest

from indexforge_operator.builders import build_all
from indexforge_operator.builders.redis_acl import ACL_SYNC_SCRIPT
from indexforge_operator.generated import REDIS_INSTANCES

from .support import NAMES, make_spec, secrets_for

Obj = dict[str, Any]
# Replication changes the state Redis's pods (init step, runtime config); messaging adds workers.
VARIANTS = {
    "defaults": {},
    "replicated": {"redis": {"state": {"replication": {"enabled": True}}}},
    "workers": {"messaging": {"enabled": True}},
}


def _objects(raw: Obj, **accepted: tuple[str, ...]) -> tuple[list[Obj], Any]:
    spec = make_spec(raw)
    secrets = secrets_for(spec)
    if accepted:
        secrets = dataclasses.replace(secrets, redis_accepted=MappingProxyType(accepted))
    return build_all(spec, NAMES, secrets=secrets, prometheus_operator=False), secrets


def _internal(objs: list[Obj]) -> dict[str, str]:
    name = NAMES.internal_auth
    (auth,) = [o for o in objs if o["kind"] == "Secret" and o["metadata"]["name"] == name]
    return {k: base64.b64decode(v).decode() for k, v in auth["data"].items()}


def _pod(objs: list[Obj], kind: str, component: str) -> Obj:
    name = NAMES.component(component)  # type: ignore[arg-type]
    (obj,) = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    pod: Obj = obj["spec"]["template"]["spec"]
    return pod


def _containers(pod: Obj) -> dict[str, Obj]:
    return {c["name"]: c for c in [*pod.get("initContainers", []), *pod["containers"]]}


@pytest.mark.parametrize("raw", VARIANTS.values(), ids=VARIANTS.keys())
@pytest.mark.parametrize("component", REDIS_INSTANCES)
def test_every_redis_pod_runs_the_acl_sync_sidecar(raw: Obj, component: str) -> None:
    objs, _ = _objects(raw)
    pod = _pod(objs, "StatefulSet", component)
    containers = _containers(pod)
    sync, redis = containers["acl-sync"], containers["redis"]
    assert sync["image"] == redis["image"]
    assert sync["command"] == ["sh", "-c", ACL_SYNC_SCRIPT]
    assert sync["securityContext"] == redis["securityContext"]
    assert sync["resources"]["limits"]["memory"] == "32Mi"
    env = {e["name"]: e["value"] for e in sync["env"]}
    assert env["REDIS_PASSWORDS_FILE"] == "/etc/redis-auth/passwords"
    (auth,) = [v for v in pod["volumes"] if v["name"] == "auth"]
    assert auth["secret"]["secretName"] == NAMES.internal_auth
    assert {i["key"]: i["path"] for i in auth["secret"]["items"]} == {
        f"{component}.conf": "auth.conf",
        f"{component}-passwords": "passwords",
    }
    # subPath mounts are never updated by the kubelet: the list would never change in the pod.
    for container in containers.values():
        assert all("subPath" not in m for m in container.get("volumeMounts", [])), container
    assert {"name": "auth", "mountPath": "/etc/redis-auth", "readOnly": True} in sync[
        "volumeMounts"
    ]
    # Redis reads the list through its probe; a start-time env value would go stale.
    assert "env" not in redis
    assert "/etc/redis-auth/passwords" in " ".join(redis["readinessProbe"]["exec"]["command"])


def test_the_secret_lists_the_accepted_passwords_newest_first() -> None:
    objs, secrets = _objects({})
    data = _internal(objs)
    for instance in REDIS_INSTANCES:
        current = secrets.redis_password(instance)
        assert data[f"{instance}-passwords"] == f"{current}\n"
        assert data[f"{instance}.conf"] == (
            f"user default on >{current} ~* &* +@all\nmasterauth {current}\n"
        )
    objs, secrets = _objects({}, **{"redis-ml": ("new-pw", "old-pw")})
    data = _internal(objs)
    assert data["redis-ml-passwords"] == "new-pw\nold-pw\n"
    current = secrets.redis_password("redis-ml")
    assert data["redis-ml.conf"] == (
        f"user default on >new-pw >old-pw ~* &* +@all\nmasterauth {current}\n"
    )
    assert data["redis-app-passwords"] == f"{secrets.redis_password('redis-app')}\n"


SERVICES = {
    "api": ("Deployment", {"redis-app", "redis-state"}),
    "worker": ("Deployment", {"redis-app", "redis-state"}),
    "ml": ("Deployment", {"redis-ml"}),
    "excel": ("Deployment", {"redis-app"}),
}


@pytest.mark.parametrize("component", SERVICES)
def test_services_read_redis_passwords_from_mounted_files(component: str) -> None:
    kind, instances = SERVICES[component]
    objs, _ = _objects(VARIANTS["workers"])
    pod = _pod(objs, kind, component)
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    files = {
        "INDEXFORGE_REDIS_PASSWORD_FILE": next(i for i in instances if i != "redis-state"),
        "INDEXFORGE_STATE_REDIS_PASSWORD_FILE": "redis-state",
    }
    for variable, instance in files.items():
        if instance in instances:
            assert env[variable]["value"] == f"/var/run/indexforge/redis/{instance}"
        else:
            assert variable not in env
    assert not any(
        "secretKeyRef" in e.get("valueFrom", {})
        and "redis" in e["valueFrom"]["secretKeyRef"]["key"]
        for e in env.values()
    ), "a Redis password in the env is fixed for the process's life"
    (volume,) = [v for v in pod["volumes"] if v["name"] == "redis-passwords"]
    assert {i["key"]: i["path"] for i in volume["secret"]["items"]} == {
        f"{i}-password": i for i in instances
    }
    assert {
        "name": "redis-passwords",
        "mountPath": "/var/run/indexforge/redis",
        "readOnly": True,
    } in container["volumeMounts"]


@pytest.mark.parametrize("raw", VARIANTS.values(), ids=VARIANTS.keys())
def test_no_redis_password_outside_a_secret(raw: Obj) -> None:
    objs, secrets = _objects(raw, **{"redis-app": ("rotated-new-pw", "tok-old")})
    values = [*secrets.redis_passwords.values(), "rotated-new-pw"]
    for obj in objs:
        if obj["kind"] == "Secret":
            continue
        text = json.dumps(obj)
        leaked = [v for v in values if v in text]
        assert not leaked, (obj["kind"], obj["metadata"]["name"])
