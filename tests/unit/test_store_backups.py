"""Weaviate and Redis backup CronJobs, and what Weaviate itself needs for backups."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from indexforge_operator.builders.backup import LABEL_SOURCE
from tests.unit.support import NAMES, build, find, make_spec

VOLUME = {"volume": {"claimName": "backups"}}
S3 = {
    **VOLUME,
    "s3": {
        "bucket": "indexforge-backups",
        "endpoint": "minio.storage:9000",
        "useSsl": False,
        "credentialsSecret": "s3-keys",
    },
}


def _backup(target: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"backup": {"enabled": True, "retention": 5, "target": target, **extra}}


def _pod(raw: dict[str, Any], source: str) -> dict[str, Any]:
    job = find(build(raw), "CronJob", NAMES.backup(source))  # type: ignore[arg-type]
    assert len(job["metadata"]["name"]) <= 52
    template = job["spec"]["jobTemplate"]["spec"]["template"]
    assert template["metadata"]["labels"][LABEL_SOURCE] == source
    return dict(template["spec"])


def _weaviate(raw: dict[str, Any]) -> dict[str, Any]:
    sts = find(build(raw), "StatefulSet", NAMES.component("weaviate"))
    return dict(sts["spec"]["template"]["spec"])


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_weaviate_filesystem_backup() -> None:
    raw = _backup(VOLUME)
    pod = _pod(raw, "weaviate")
    assert "affinity" not in pod  # over the network: no volume of Weaviate's to follow
    (container,) = pod["containers"]
    assert container["command"][3:] == [
        "weaviate", "--url", "http://demo-weaviate.shop.svc:8080", "--backend", "filesystem",
        "--keep", "5", "--backup-dir", "/backup/weaviate",
    ]  # fmt: skip
    # The key is a file the program re-reads (a rotation must not fail a long backup).
    assert _env(container)["WEAVIATE_API_KEY_FILE"] == "/var/run/indexforge/weaviate/api-key"
    assert {"name": "weaviate-api-key", "mountPath": "/var/run/indexforge/weaviate",
            "readOnly": True} in container["volumeMounts"]  # fmt: skip
    (volume,) = [v for v in pod["volumes"] if v["name"] == "weaviate-api-key"]
    assert volume["secret"]["secretName"] == NAMES.internal_auth
    assert volume["secret"]["items"] == [{"key": "weaviate-api-key", "path": "api-key"}]
    assert [
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    ] == ["backups"]
    # Weaviate writes the backup itself: the module, its path and the same claim in its pods.
    wpod = _weaviate(raw)
    env = _env(wpod["containers"][0])
    assert env["ENABLE_MODULES"] == "text2vec-transformers,backup-filesystem"
    assert env["BACKUP_FILESYSTEM_PATH"] == "/backup/weaviate"
    assert {"name": "backup", "persistentVolumeClaim": {"claimName": "backups"}} in wpod["volumes"]
    assert {"name": "backup", "mountPath": "/backup"} in wpod["containers"][0]["volumeMounts"]


def test_weaviate_s3_backup_keys_from_the_secret_only() -> None:
    raw = _backup(S3)
    pod = _pod(raw, "weaviate")
    (container,) = pod["containers"]
    assert container["command"][-4:] == ["--backend", "s3", "--keep", "5"]
    assert all("persistentVolumeClaim" not in v for v in pod["volumes"])  # no volume needed
    wpod = _weaviate(raw)
    env = _env(wpod["containers"][0])
    assert env["ENABLE_MODULES"] == "text2vec-transformers,backup-s3"
    assert (env["BACKUP_S3_BUCKET"], env["BACKUP_S3_ENDPOINT"], env["BACKUP_S3_USE_SSL"]) == (
        "indexforge-backups", "minio.storage:9000", "false",
    )  # fmt: skip
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[key] == {"secretKeyRef": {"name": "s3-keys", "key": key}}
    assert all(v["name"] != "backup" for v in wpod["volumes"])


@pytest.mark.parametrize("redis", ["redis-app", "redis-state"])
def test_redis_backup_over_the_network(redis: str) -> None:
    pod = _pod(_backup(VOLUME), redis)
    assert "affinity" not in pod
    (container,) = pod["containers"]
    assert container["command"][3:] == [
        "redis", "--host", f"demo-{redis}.shop.svc", "--port", "6379",
        "--target", f"/backup/{redis}", "--keep", "5",
    ]  # fmt: skip
    key = _env(container)["REDISCLI_AUTH"]["secretKeyRef"]
    assert key == {"name": NAMES.internal_auth, "key": f"{redis}-password"}
    assert pod["securityContext"]["runAsUser"] == 999


def test_backup_pods_reach_weaviate_and_redis() -> None:
    objs = build(_backup(VOLUME))
    for component, port in (("weaviate", 8080), ("redis-app", 6379), ("redis-state", 6379)):
        policy = find(objs, "NetworkPolicy", NAMES.component(component))
        sources = [
            (peer.get("podSelector", {}).get("matchLabels", {}), [p["port"] for p in rule["ports"]])
            for rule in policy["spec"].get("ingress", [])
            for peer in rule.get("from", [])
        ]
        assert any(
            labels.get("app.kubernetes.io/component") == "backup" and port in ports
            for labels, ports in sources
        ), sources


def test_no_backup_module_without_backups() -> None:
    env = _env(_weaviate({})["containers"][0])
    assert env["ENABLE_MODULES"] == "text2vec-transformers"
    assert not any(k.startswith("BACKUP_") for k in env)


def test_s3_needs_a_secret_reference() -> None:
    with pytest.raises(ValidationError):
        make_spec(_backup({**VOLUME, "s3": {"bucket": "b"}}))
    with pytest.raises(ValidationError):
        make_spec(
            _backup(
                {**VOLUME, "s3": {"bucket": "b", "credentialsSecret": "s", "secretAccessKey": "x"}}
            )
        )
