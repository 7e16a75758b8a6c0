"""The built-in RabbitMQ broker builder, its credentials and its spec.

The rendered rabbitmq.conf and default-user file run on a real broker in
tests/services/test_rendered_rabbitmq.py; these pin the Kubernetes side.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pydantic import ValidationError

from indexforge_operator.builders.credentials import (
    RABBITMQ_AUTH_CONF_KEY,
    RABBITMQ_USERNAME_KEY,
    build_internal_auth,
    internal_auth_data,
)
from indexforge_operator.builders.rabbitmq import (
    CONF_KEY,
    DATA_DIR,
    build_rabbitmq,
    node_names,
    rabbitmq_conf,
)
from indexforge_operator.generated import (
    RABBITMQ_COOKIE_KEY,
    RABBITMQ_PASSWORD_KEY,
    GeneratedSecrets,
    complete,
    from_secret_data,
)

from .support import NAMES, counter_tokens, make_spec

MESSAGING = {"messaging": {"enabled": True}}


def _by_kind(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in objs}


def _conf(raw: dict[str, Any]) -> dict[str, str]:
    text = rabbitmq_conf(make_spec(raw), NAMES)
    return dict(line.split(" = ", 1) for line in text.splitlines())


def test_every_node_is_listed_by_its_stable_long_name() -> None:
    nodes = node_names(make_spec(MESSAGING), NAMES)
    domain = "demo-rabbitmq-headless.shop.svc"
    assert nodes == [f"rabbit@demo-rabbitmq-{i}.{domain}" for i in range(3)]
    conf = _conf(MESSAGING)
    assert conf["cluster_formation.peer_discovery_backend"] == "classic_config"
    listed = [v for k, v in conf.items() if k.startswith("cluster_formation.classic_config.nodes")]
    assert listed == nodes


def test_memory_and_disk_alarms_follow_the_container_and_the_volume() -> None:
    conf = _conf({"messaging": {"enabled": True, "rabbitmq": {
        "resources": {"limits": {"memory": "3Gi"}}, "persistence": {"size": "5Gi"}}}})  # fmt: skip
    assert conf["total_memory_available_override_value"] == str(3 * 1024**3)
    assert conf["disk_free_limit.absolute"] == str(5 * 1024**3 // 10)
    big = _conf({"messaging": {"enabled": True, "rabbitmq": {"persistence": {"size": "1Ti"}}}})
    assert big["disk_free_limit.absolute"] == str(2 * 1024**3)  # capped
    assert conf["cluster_partition_handling"] == "pause_minority"


def test_the_statefulset_clusters_in_parallel_and_drains_before_stopping() -> None:
    objs = _by_kind(build_rabbitmq(make_spec(MESSAGING), NAMES))
    sts = objs["StatefulSet"]["spec"]
    assert sts["replicas"] == 3 and sts["podManagementPolicy"] == "Parallel"
    assert sts["serviceName"] == "demo-rabbitmq-headless"
    assert sts["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "10Gi"
    pod = sts["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RABBITMQ_NODENAME"] == "rabbit@$(POD_NAME).demo-rabbitmq-headless.shop.svc"
    assert env["RABBITMQ_USE_LONGNAME"] == "true"
    pre_stop = " ".join(container["lifecycle"]["preStop"]["exec"]["command"])
    assert "await_online_quorum_plus_one" in pre_stop and "drain" in pre_stop
    assert pod["terminationGracePeriodSeconds"] > 600
    assert container["readinessProbe"]["exec"]["command"][-1] == "check_port_connectivity"
    # Config changes must not restart every node at once.
    assert "annotations" not in sts["template"]["metadata"]
    (init,) = pod["initContainers"]
    assert f"{DATA_DIR}/.erlang.cookie" in init["command"][-1]
    assert "chmod 0600" in init["command"][-1]
    assert objs["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1
    headless = [o for o in build_rabbitmq(make_spec(MESSAGING), NAMES)
                if o["kind"] == "Service" and o["spec"].get("clusterIP") == "None"]  # fmt: skip
    assert headless[0]["spec"]["publishNotReadyAddresses"] is True
    assert {p["name"] for p in headless[0]["spec"]["ports"]} == {"amqp", "epmd", "dist", "metrics"}


def test_a_single_node_has_no_disruption_budget() -> None:
    objs = build_rabbitmq(
        make_spec({"messaging": {"enabled": True, "rabbitmq": {"replicas": 1}}}), NAMES
    )
    assert "PodDisruptionBudget" not in {o["kind"] for o in objs}


@pytest.mark.parametrize("replicas", [2, 4, 0, 9])
def test_even_or_out_of_range_replicas_are_refused(replicas: int) -> None:
    with pytest.raises(ValidationError):
        make_spec({"messaging": {"enabled": True, "rabbitmq": {"replicas": replicas}}})


def test_workers_bounds_are_checked() -> None:
    with pytest.raises(ValidationError, match="minReplicas"):
        make_spec({"messaging": {"workers": {"minReplicas": 5, "maxReplicas": 2}}})


def test_every_secret_key_the_pods_mount_exists() -> None:
    spec = make_spec(MESSAGING)
    secrets = complete(spec, current=GeneratedSecrets(), token=counter_tokens())
    data = internal_auth_data(NAMES, secrets)
    pod = _by_kind(build_rabbitmq(spec, NAMES))["StatefulSet"]["spec"]["template"]["spec"]
    keys = []
    for volume in pod["volumes"]:
        for source in volume.get("projected", {}).get("sources", []):
            if "secret" in source:
                keys += [item["key"] for item in source["secret"]["items"]]
        if "secret" in volume:
            keys += [item["key"] for item in volume["secret"]["items"]]
    assert keys and set(keys) <= set(data)
    assert CONF_KEY in _by_kind(build_rabbitmq(spec, NAMES))["ConfigMap"]["data"]


def test_credentials_exist_only_with_messaging_and_survive_switching_it_off() -> None:
    tokens = counter_tokens()
    off = complete(make_spec(), current=GeneratedSecrets(), token=tokens)
    assert not off.rabbitmq_password and not off.erlang_cookie
    assert RABBITMQ_PASSWORD_KEY not in internal_auth_data(NAMES, off)
    on = complete(make_spec(MESSAGING), current=off, token=tokens)
    assert on.rabbitmq_password and on.erlang_cookie and on.rabbitmq_password != on.erlang_cookie
    again = complete(make_spec(), current=on, token=tokens)
    assert (again.rabbitmq_password, again.erlang_cookie) == (
        on.rabbitmq_password,
        on.erlang_cookie,
    )
    stored = {k: base64.b64encode(v.encode()).decode()
              for k, v in internal_auth_data(NAMES, on).items()}  # fmt: skip
    back = from_secret_data(consumers=None, grafana=None, internal=stored)
    assert (back.rabbitmq_password, back.erlang_cookie) == (on.rabbitmq_password, on.erlang_cookie)


def test_the_default_user_carries_the_generated_password() -> None:
    spec = make_spec(MESSAGING)
    secrets = complete(spec, current=GeneratedSecrets(), token=counter_tokens("pw"))
    data = internal_auth_data(NAMES, secrets)
    password = secrets.rabbitmq_password
    assert data[RABBITMQ_USERNAME_KEY] == "indexforge"
    assert f"default_user = indexforge\ndefault_pass = {password}\n" in data[RABBITMQ_AUTH_CONF_KEY]
    assert data[RABBITMQ_COOKIE_KEY] == secrets.erlang_cookie
    # Nothing secret in what is not a Secret.
    for obj in build_rabbitmq(spec, NAMES):
        assert password not in str(obj) and secrets.erlang_cookie not in str(obj)


def test_messaging_without_generated_credentials_is_an_error() -> None:
    secrets = complete(make_spec(), current=GeneratedSecrets(), token=counter_tokens())
    with pytest.raises(ValueError, match="RabbitMQ"):
        build_internal_auth(NAMES, secrets=secrets, messaging=True)
