"""The ingestion topology as messaging topology operator objects, and its application user.

The objects must say exactly what the services declare (a queue declared with other
arguments is refused by the broker), so they are compared with the services' own topology
code, not with copies of its values.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from indexforge_operator import queues
from indexforge_operator.builders import build_all
from indexforge_operator.builders.rabbitmq_topology import permission_rules
from indexforge_operator.decisions import check_integrations
from indexforge_services.api.settings import ApiSettings
from indexforge_services.messaging import topology as services_topology
from indexforge_services.messaging.consumer import RetryPolicy
from indexforge_services.messaging.topology import Names, bounded_arguments, delay_ms

from .support import NAMES, find, make_spec, secrets_for

CLUSTER = {"messaging": {"enabled": True, "provider": "rabbitmqClusterOperator"}}


def _build(raw: dict[str, Any], **crds: bool) -> list[Any]:
    spec = make_spec(raw)
    flags = {"rabbitmq_cluster": True, "keda": False, "rabbitmq_topology": True, **crds}
    return build_all(spec, NAMES, secrets=secrets_for(spec), prometheus_operator=False, **flags)


def _topology(objs: list[Any]) -> list[Any]:
    return [o for o in objs if o["kind"] in ("User", "Permission", "Exchange", "Queue", "Binding")]


def _queues(objs: list[Any]) -> dict[str, Any]:
    return {o["spec"]["name"]: o["spec"] for o in objs if o["kind"] == "Queue"}


def _amqp_env(objs: list[Any], deployment: str) -> dict[str, Any]:
    (container,) = find(objs, "Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("valueFrom", e.get("value")) for e in container["env"]}


def test_the_operators_names_and_defaults_are_the_services() -> None:
    names = Names(queues.QUEUE_PREFIX)
    services = (names.exchange, names.ingest, names.dead, names.jobs)
    assert services == (
        queues.EXCHANGE,
        queues.INGEST_QUEUE,
        queues.DEAD_LETTER_QUEUE,
        queues.JOBS_QUEUE,
    )
    assert queues.INGEST_REQUESTED == services_topology.INGEST_REQUESTED
    assert queues.JOB_OUTCOMES == services_topology.JOB_OUTCOMES
    assert queues.DELIVERY_LIMIT == services_topology.DELIVERY_LIMIT
    defaults = ApiSettings.model_fields
    assert defaults["queue_retry_base_seconds"].default == queues.RETRY_BASE_SECONDS
    assert defaults["queue_retry_max_seconds"].default == queues.RETRY_MAX_SECONDS
    assert queues.retry_queue(2000) == names.retry(2000)


def test_queues_carry_the_arguments_the_services_declare() -> None:
    found = _queues(_topology(_build(CLUSTER)))
    names = Names(queues.QUEUE_PREFIX)
    declared = bounded_arguments(names)
    for name in (names.ingest, names.jobs):
        assert {"x-queue-type": found[name]["type"], **found[name]["arguments"]} == declared
    assert found[names.dead]["type"] == "quorum" and "arguments" not in found[names.dead]
    assert all(q["durable"] and q["vhost"] == "/" for q in found.values())


def test_a_retry_queue_exists_for_every_delay_the_workers_can_use() -> None:
    for attempts in (1, 5, 12):
        raw = {"messaging": {**CLUSTER["messaging"], "workers": {"maxAttempts": attempts}}}
        found = _queues(_topology(_build(raw)))
        policy = RetryPolicy(
            max_attempts=attempts,
            base_seconds=queues.RETRY_BASE_SECONDS,
            cap_seconds=queues.RETRY_MAX_SECONDS,
        )
        delays = {
            delay_ms(policy.after("ml_unavailable", attempt).delay_seconds)
            for attempt in range(1, attempts)
        }
        names = Names(queues.QUEUE_PREFIX)
        retries = {n for n in found if ".retry." in n}
        assert retries == {names.retry(d) for d in delays}, attempts
        for delay in delays:
            arguments = found[names.retry(delay)]["arguments"]
            assert arguments["x-message-ttl"] == delay
            assert arguments["x-dead-letter-routing-key"] == names.ingest
    assert not {n for n in _queues(_topology(_build(CLUSTER))) if n.endswith("300000ms")}


def test_bindings_route_requests_and_outcomes() -> None:
    bindings = {
        (o["spec"]["destination"], o["spec"]["routingKey"])
        for o in _topology(_build(CLUSTER))
        if o["kind"] == "Binding"
    }
    assert bindings == {
        (queues.INGEST_QUEUE, queues.INGEST_REQUESTED),
        *((queues.JOBS_QUEUE, outcome) for outcome in queues.JOB_OUTCOMES),
    }


def test_services_and_keda_connect_as_the_application_user() -> None:
    spec = make_spec(CLUSTER)
    objs = build_all(
        spec, NAMES, secrets=secrets_for(spec), prometheus_operator=False,
        rabbitmq_cluster=True, keda=True, rabbitmq_topology=True,
    )  # fmt: skip
    user_secret = find(objs, "Secret", "demo-rabbitmq-app-user")
    assert base64.b64decode(user_secret["data"]["username"]) == b"indexforge-app"
    password = base64.b64decode(user_secret["data"]["password"]).decode()
    assert password == secrets_for(spec).rabbitmq_password and password
    user = find(objs, "User", "demo-rabbitmq-app-user")["spec"]
    assert user["importCredentialsSecret"] == {"name": "demo-rabbitmq-app-user"}
    permission = find(objs, "Permission", "demo-rabbitmq-app-user")["spec"]
    assert permission["userReference"] == {"name": "demo-rabbitmq-app-user"}
    for deployment in ("demo-api", "demo-worker"):
        env = _amqp_env(objs, deployment)
        assert env["AMQP_PASSWORD"]["secretKeyRef"] == {
            "name": "demo-rabbitmq-app-user", "key": "password",
        }  # fmt: skip
    auth = find(objs, "TriggerAuthentication", "demo-worker")["spec"]["secretTargetRef"]
    assert {ref["name"] for ref in auth} == {"demo-rabbitmq-app-user"}
    for obj in _topology(objs):
        assert obj["spec"]["rabbitmqClusterReference"] == {"name": "demo-rabbitmq"}


def test_the_permission_covers_our_objects_only() -> None:
    rules = {k: re.compile(v) for k, v in permission_rules().items()}
    ours = [queues.EXCHANGE, queues.INGEST_QUEUE, queues.JOBS_QUEUE, queues.retry_queue(4000)]
    for name in ours:
        assert all(rule.match(name) for rule in rules.values()), name
    assert rules["write"].match("amq.default")  # retries and dead letters
    for foreign in ("amq.default", "amq.topic", "orders", "indexforgeX.ingest", "x.indexforge.a"):
        assert not rules["configure"].match(foreign), foreign
    for foreign in ("amq.topic", "orders", "indexforgeX.ingest"):
        assert not rules["write"].match(foreign), foreign


def test_without_the_topology_operator_the_services_declare_it() -> None:
    for raw, crds in (
        (CLUSTER, {"rabbitmq_topology": False}),  # no topology CRDs
        ({"messaging": {"enabled": True}}, {"rabbitmq_cluster": False}),  # built-in broker
        ({"messaging": {**CLUSTER["messaging"], "topology": "services"}}, {}),  # opted out
    ):
        objs = _build(raw, **crds)
        assert not _topology(objs), (raw, crds)
        env = _amqp_env(objs, "demo-api")
        assert "app-user" not in env["AMQP_PASSWORD"]["secretKeyRef"]["name"]


def test_forcing_the_topology_operator_without_it_is_a_finding_and_builds_none_of_it() -> None:
    forced = {"messaging": {**CLUSTER["messaging"], "topology": "topologyOperator"}}
    spec = make_spec(forced)
    reasons = {
        f.reason
        for f in check_integrations(
            spec, rabbitmq_cluster=True, keda=False, rabbitmq_topology=False
        )
    }
    assert reasons == {"RabbitmqTopologyCRDMissing"}
    assert not _topology(_build(forced, rabbitmq_topology=False))
    builtin = make_spec({"messaging": {"enabled": True, "topology": "topologyOperator"}})
    reasons = {
        f.reason
        for f in check_integrations(
            builtin, rabbitmq_cluster=False, keda=False, rabbitmq_topology=True
        )
    }
    assert reasons == {"RabbitmqTopologyNeedsClusterOperator"}
    assert check_integrations(spec, rabbitmq_cluster=True, keda=False, rabbitmq_topology=True) == []
