"""The replicated state Redis (`redis.state.replication`): the objects the operator renders,
the env the API and workers get, the NetworkPolicy flows, and the init step's choice of the
primary run by `sh` against stand-in sentinels (a fake `redis-cli` on PATH).
`tests/services/test_state_redis_replication.py` runs the rendered files on real servers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from indexforge_operator.builders import ports
from indexforge_operator.builders.redis_replication import INIT_SCRIPT, sentinel_conf
from indexforge_operator.decisions import components
from indexforge_operator.naming import Names
from indexforge_operator.spec import IndexForgeSpec
from indexforge_operator.spec_redis_replication import (
    QUORUM_MESSAGE,
    SENTINELS_ODD_MESSAGE,
    RedisReplication,
)
from indexforge_operator.status import COMPONENT_CONDITIONS, WorkloadState, component_conditions

from .support import NAMES, build, env_of, find, maybe

ON = {"redis": {"state": {"replication": {"enabled": True}}}}
REDIS = NAMES.component("redis-state")
SENTINEL = NAMES.component("sentinel")


def _pod(objs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    spec: dict[str, Any] = find(objs, "StatefulSet", name)["spec"]["template"]["spec"]
    return spec


def test_off_by_default_one_pod_and_the_url() -> None:
    objs = build({})
    assert find(objs, "StatefulSet", REDIS)["spec"]["replicas"] == 1
    assert "initContainers" not in _pod(objs, REDIS)
    assert maybe(objs, "StatefulSet", SENTINEL) is None
    assert maybe(objs, "PodDisruptionBudget", REDIS) is None
    env = env_of(find(objs, "Deployment", NAMES.component("api"))["spec"]["template"]["spec"]
                 ["containers"][0])  # fmt: skip
    assert env["INDEXFORGE_STATE_REDIS_URL"].startswith(f"redis://{REDIS}.shop.svc:6379")
    assert "INDEXFORGE_STATE_REDIS_SENTINELS" not in env
    assert "sentinel" not in components(IndexForgeSpec(), prometheus_operator=False)


def test_replicas_start_in_parallel_with_an_init_step() -> None:
    objs = build(ON)
    sts = find(objs, "StatefulSet", REDIS)["spec"]
    assert sts["replicas"] == 3 and sts["podManagementPolicy"] == "Parallel"
    pod = sts["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["command"] == ["sh", "/etc/redis/init.sh", "redis"]
    env = env_of(init)
    assert env["ANNOUNCE_HOST"] == f"$(POD_NAME).{REDIS}-headless.shop.svc"
    assert env["PRIMARY"] == f"{REDIS}-0.{REDIS}-headless.shop.svc:6379"
    assert env["SENTINELS"].split(",")[0] == f"{SENTINEL}-0.{SENTINEL}-headless.shop.svc:26379"
    redis = pod["containers"][0]
    assert redis["command"] == ["redis-server", "/conf/redis.conf"]
    assert {"name": "runtime", "emptyDir": {}} in pod["volumes"]
    data = find(objs, "ConfigMap", NAMES.config("redis-state"))["data"]
    assert data["init.sh"] == INIT_SCRIPT
    assert "replicaof" not in data["redis.conf"]  # the role is the init step's, per pod
    assert find(objs, "Service", f"{REDIS}-headless")["spec"]["publishNotReadyAddresses"]
    assert find(objs, "PodDisruptionBudget", REDIS)["spec"]["maxUnavailable"] == 1


def test_sentinels_render_with_writable_config_spread_and_pdb() -> None:
    objs = build({"redis": {"state": {"replication": {"enabled": True, "sentinels": 5}}}})
    sts = find(objs, "StatefulSet", SENTINEL)["spec"]
    assert sts["replicas"] == 5 and sts["podManagementPolicy"] == "Parallel"
    pod = sts["template"]["spec"]
    assert pod["containers"][0]["command"] == [
        "redis-server", "/data/sentinel.conf", "--sentinel",
    ]  # fmt: skip
    assert {"name": "data", "emptyDir": {}} in pod["volumes"]  # Sentinel rewrites its config
    assert [c["topologyKey"] for c in pod["topologySpreadConstraints"]] == [
        "kubernetes.io/hostname", "topology.kubernetes.io/zone",
    ]  # fmt: skip
    assert "volumeClaimTemplates" not in sts
    conf = find(objs, "ConfigMap", NAMES.config("sentinel"))["data"]["sentinel.conf"]
    assert "sentinel monitor indexforge-state @PRIMARY_HOST@ @PRIMARY_PORT@ 3\n" in conf
    assert "sentinel down-after-milliseconds indexforge-state 5000\n" in conf
    assert "sentinel resolve-hostnames yes\nsentinel announce-hostnames yes\n" in conf
    assert find(objs, "PodDisruptionBudget", SENTINEL)
    assert find(objs, "Service", f"{SENTINEL}-headless")["spec"]["ports"][0]["port"] == 26379


@pytest.mark.parametrize(("sentinels", "quorum", "want"), [(3, None, 2), (5, None, 3), (5, 2, 2)])
def test_quorum_defaults_to_a_majority(sentinels: int, quorum: int | None, want: int) -> None:
    replication = RedisReplication(enabled=True, sentinels=sentinels, quorum=quorum)
    assert f"@PRIMARY_PORT@ {want}\n" in sentinel_conf(replication, instance_name="x")


def test_invalid_replication_is_rejected() -> None:
    with pytest.raises(ValidationError, match=SENTINELS_ODD_MESSAGE):
        RedisReplication(sentinels=4)
    with pytest.raises(ValidationError, match=QUORUM_MESSAGE):
        RedisReplication(quorum=4)
    with pytest.raises(ValidationError):
        RedisReplication(replicas=1)


def test_api_and_workers_ask_the_sentinels_instead_of_the_url() -> None:
    objs = build({**ON, "messaging": {"enabled": True}})
    for name in ("api", "worker"):
        env = env_of(find(objs, "Deployment", NAMES.component(name))["spec"]["template"]
                     ["spec"]["containers"][0])  # fmt: skip
        assert "INDEXFORGE_STATE_REDIS_URL" not in env
        assert env["INDEXFORGE_STATE_REDIS_SENTINELS"] == ",".join(
            f"{SENTINEL}-{i}.{SENTINEL}-headless.shop.svc:26379" for i in range(3)
        )
        assert env["INDEXFORGE_STATE_REDIS_MASTER"] == "indexforge-state"
        assert env["INDEXFORGE_STATE_REDIS_WAIT_REPLICAS"] == "1"
        assert (
            env["INDEXFORGE_STATE_REDIS_PASSWORD_FILE"] == "/var/run/indexforge/redis/redis-state"
        )


def _peers(rules: list[dict[str, Any]], key: str) -> dict[str, set[int]]:
    """component -> ports of the rules naming one of our components."""
    out: dict[str, set[int]] = {}
    for rule in rules:
        for peer in rule.get(key, []):
            labels = peer.get("podSelector", {}).get("matchLabels", {})
            if "app.kubernetes.io/component" in labels and "namespaceSelector" not in peer:
                name = labels["app.kubernetes.io/component"]
                out.setdefault(name, set()).update(p["port"] for p in rule["ports"])
    return out


def test_network_policies_carry_the_sentinel_flows() -> None:
    objs = build({**ON, "messaging": {"enabled": True}})
    sentinel = find(objs, "NetworkPolicy", SENTINEL)["spec"]
    assert _peers(sentinel["ingress"], "from") == {
        "api": {ports.SENTINEL},
        "worker": {ports.SENTINEL},
        "sentinel": {ports.SENTINEL},
        "redis-state": {ports.SENTINEL},
    }
    assert _peers(sentinel["egress"], "to") == {
        "sentinel": {ports.SENTINEL},
        "redis-state": {ports.REDIS},
    }
    redis = find(objs, "NetworkPolicy", REDIS)["spec"]
    ingress = _peers(redis["ingress"], "from")
    assert ingress["redis-state"] == {ports.REDIS} and ingress["sentinel"] == {ports.REDIS}
    assert _peers(redis["egress"], "to") == {
        "redis-state": {ports.REDIS},
        "sentinel": {ports.SENTINEL},
    }
    # Without replication nothing reaches port 26379 anywhere.
    plain = build({"messaging": {"enabled": True}})
    assert maybe(plain, "NetworkPolicy", SENTINEL) is None


def test_a_40_character_instance_keeps_every_name_valid() -> None:
    names = Names("a" * 40, "shop")
    objs = build(ON, names=names)
    for o in objs:
        if o["kind"] == "Service":
            assert len(o["metadata"]["name"]) <= 63, o["metadata"]["name"]
    assert len(f"{names.component('sentinel')}-headless") <= 63
    assert COMPONENT_CONDITIONS["sentinel"] == "RedisSentinelAvailable"
    spec = IndexForgeSpec.model_validate(ON)
    assert "sentinel" in components(spec, prometheus_operator=False)


# --- the init step, run by sh against stand-in sentinels -------------------------------

FAKE_CLI = """\
#!/bin/sh
# Answers `SENTINEL get-master-addr-by-name` from $FAKE_ANSWERS/<host>, else refuses.
while [ "$#" -gt 0 ]; do
  case "$1" in -h) host="$2"; shift 2 ;; *) shift ;; esac
done
if [ -f "$FAKE_ANSWERS/$host" ]; then cat "$FAKE_ANSWERS/$host"; exit 0; fi
echo "Could not connect to Redis at $host" >&2
exit 1
"""


def _run(tmp_path: Path, role: str, answers: dict[str, str], **env: str) -> tuple[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    cli = bin_dir / "redis-cli"
    cli.write_text(FAKE_CLI)
    cli.chmod(0o755)
    answer_dir = tmp_path / "answers"
    answer_dir.mkdir(exist_ok=True)
    for host, text in answers.items():
        (answer_dir / host).write_text(text)
    script = tmp_path / "init.sh"
    script.write_text(INIT_SCRIPT)
    conf_in = tmp_path / "in.conf"
    conf_in.write_text("sentinel monitor m @PRIMARY_HOST@ @PRIMARY_PORT@ 2\n")
    full = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_ANSWERS": str(answer_dir),
        "SENTINELS": "s0:26379,s1:26379,s2:26379",
        "MASTER_NAME": "m",
        "PRIMARY": "r0:6379",
        "REDIS_PORT": "6379",
        "ANNOUNCE_HOST": "r1",
        "POD_NAME": "pod-1",
        "PRIMARY_WAIT_SECONDS": "2",
        "REDISCLI_AUTH": "pw",
        "CONF_IN": str(conf_in),
        "CONF_OUT": str(tmp_path / "out.conf"),
        **env,
    }
    proc = subprocess.run(
        ["sh", str(script), role], env=full, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, (tmp_path / "out.conf").read_text()


def test_init_falls_back_to_ordinal_0_when_no_sentinel_answers(tmp_path: Path) -> None:
    out, conf = _run(tmp_path, "redis", {})
    assert "no sentinel answered" in out
    assert "replica-announce-ip r1\n" in conf and "replicaof r0 6379\n" in conf
    out, conf = _run(tmp_path, "redis", {}, ANNOUNCE_HOST="r0")
    assert "replicaof" not in conf  # ordinal 0 itself starts as the primary


def test_init_skips_sentinels_that_fail_or_do_not_know(tmp_path: Path) -> None:
    # s0 refuses (no file), s1 answers an error, s2 names r2: r2 is the primary.
    answers = {"s1": "NOAUTH Authentication required.\n", "s2": "r2\n6379\n"}
    out, conf = _run(tmp_path, "redis", answers)
    assert "sentinels name r2:6379" in out
    assert "replicaof r2 6379\n" in conf
    # An empty (nil) answer from every sentinel counts as no answer.
    out, conf = _run(tmp_path, "redis", {"s0": "\n", "s1": "\n", "s2": "\n"})
    assert "no sentinel answered" in out and "replicaof r0 6379\n" in conf


def test_init_of_the_named_primary_waits_then_starts_as_primary(tmp_path: Path) -> None:
    # The sentinels still name this pod: it waits (bounded) for another to be promoted; no
    # promotion within PRIMARY_WAIT_SECONDS -> it starts as the primary, no replicaof.
    out, conf = _run(tmp_path, "redis", {"s0": "r1\n6379\n"})
    assert "sentinels name r1:6379" in out
    assert "replicaof" not in conf


def test_init_writes_the_sentinel_config(tmp_path: Path) -> None:
    _, conf = _run(tmp_path, "sentinel", {"s1": "r2\n6379\n"}, ANNOUNCE_HOST="s0")
    lines = conf.splitlines()
    assert lines[0] == "sentinel monitor m r2 6379 2"
    assert "sentinel announce-ip s0" in lines
    assert "sentinel auth-pass m pw" in lines and "requirepass pw" in lines
    (myid,) = [x for x in lines if x.startswith("sentinel myid ")]
    assert len(myid.split()[2]) == 40  # stable per pod name: same id after a restart
    _, again = _run(tmp_path, "sentinel", {}, ANNOUNCE_HOST="s0")
    assert myid in again.splitlines()
    assert oct((tmp_path / "out.conf").stat().st_mode & 0o777) == "0o600"


def test_sentinels_get_their_own_available_condition() -> None:
    states = [
        WorkloadState("redis-state", "StatefulSet", REDIS, 3, 3, True),
        WorkloadState("sentinel", "StatefulSet", SENTINEL, 3, 1, True),
    ]
    by_type = {c.type: c for c in component_conditions(states, {})}
    assert by_type["RedisStateAvailable"].status == "True"
    sentinel = by_type["RedisSentinelAvailable"]
    assert (sentinel.status, sentinel.reason, sentinel.message) == (
        "False", "ReplicasNotReady", "1/3 ready",
    )  # fmt: skip
