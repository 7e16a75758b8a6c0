"""Static checks of both charts: lint, rendering of every variant, conventions, RBAC, docs.

No cluster: `helm lint --strict` and `helm template`, then the rendered objects are judged
(Pod Security "restricted", labels and selectors, RBAC without wildcards, documented values,
generated files current).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack import charts as generator
from tests import admission_cases
from tests.charts.helmtools import (
    KEDA_API,
    KUBE_VERSION,
    OPERATOR_CHART,
    OPERATOR_VARIANTS,
    RABBITMQ_CLUSTER_API,
    STATIC_CHART,
    STATIC_VARIANTS,
    helm,
    helm_template,
)
from tests.charts.parity import load_stream

Obj = dict[str, Any]
SELECTOR_KEYS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
}
REQUIRED_LABELS = {"app.kubernetes.io/name", "app.kubernetes.io/instance",
                   "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by"}  # fmt: skip
CASES = [
    *[(STATIC_CHART, v) for v in [None, *STATIC_VARIANTS]],
    *[(OPERATOR_CHART, v) for v in [None, *OPERATOR_VARIANTS]],
]


def _id(case: tuple[Path, Path | None]) -> str:
    chart, values = case
    return f"{chart.name}:{values.name.removesuffix('-values.yaml') if values else 'defaults'}"


def _render(chart: Path, values: Path | None, **kw: Any) -> list[Obj]:
    return load_stream(helm_template(chart, values=[values] if values else [], **kw))


def pod_specs(obj: Obj) -> list[Obj]:
    if obj["kind"] == "Pod":
        return [obj["spec"]]
    if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return [obj["spec"]["template"]["spec"]]
    return []


def restricted_violations(spec: Obj) -> list[str]:
    """Pod Security "restricted" (v1.2x), the parts a manifest decides."""
    out = []
    pod_sc = spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            out.append(f"{field} set")
    for vol in spec.get("volumes") or []:
        if "hostPath" in vol:
            out.append(f"hostPath volume {vol['name']}")
    if (pod_sc.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
        out.append("pod seccompProfile is not RuntimeDefault")
    for c in [*(spec.get("initContainers") or []), *spec["containers"]]:
        sc = c.get("securityContext") or {}
        name = c["name"]
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{name}: allowPrivilegeEscalation is not false")
        if (sc.get("capabilities") or {}).get("drop") != ["ALL"]:
            out.append(f"{name}: capabilities do not drop ALL")
        if set((sc.get("capabilities") or {}).get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(f"{name}: adds capabilities")
        if sc.get("privileged"):
            out.append(f"{name}: privileged")
        if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
            out.append(f"{name}: runAsNonRoot not set")
        if 0 in (sc.get("runAsUser"), pod_sc.get("runAsUser")):
            out.append(f"{name}: runs as uid 0")
        if not c.get("resources", {}).get("limits"):
            out.append(f"{name}: no resource limits")
    return out


@pytest.mark.parametrize("chart", [STATIC_CHART, OPERATOR_CHART], ids=lambda c: c.name)
def test_lint_strict(chart: Path) -> None:
    variants = sorted((chart / "ci").glob("*-values.yaml"))
    for values in [None, *variants]:
        args = ["lint", "--strict", str(chart), "--kube-version", KUBE_VERSION]
        if values:
            args += ["-f", str(values)]
        out = helm(*args)
        assert "0 chart(s) failed" in out, out


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_every_pod_is_restricted(case: tuple[Path, Path | None]) -> None:
    objs = _render(*case)
    pods = [(o, s) for o in objs for s in pod_specs(o)]
    assert pods, "no workloads rendered"
    problems = [f"{o['kind']}/{o['metadata']['name']}: {p}" for o, s in pods
                for p in restricted_violations(s)]  # fmt: skip
    assert not problems, "\n".join(problems)


def test_restricted_check_can_fail() -> None:
    spec = {"containers": [{"name": "c", "securityContext": {"privileged": True}}]}
    problems = restricted_violations(spec)
    assert "c: privileged" in problems and "c: no resource limits" in problems


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_labels_and_selectors(case: tuple[Path, Path | None]) -> None:
    chart, _ = case
    for obj in _render(*case):
        labels = obj["metadata"].get("labels") or {}
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] not in ("CustomResourceDefinition", "IndexForge", "Pod"):
            assert set(labels) >= REQUIRED_LABELS, f"{where} lacks {REQUIRED_LABELS - set(labels)}"
        selector: Any = (obj.get("spec") or {}).get("selector")
        if obj["kind"] in ("Deployment", "StatefulSet", "PodDisruptionBudget"):
            selector = selector["matchLabels"]
        if obj["kind"] in ("Deployment", "StatefulSet", "PodDisruptionBudget", "Service"):
            assert selector, f"{where} has no selector"
            assert set(selector) <= SELECTOR_KEYS, f"{where} selects by {set(selector)}"
            if chart == STATIC_CHART:
                assert selector.get("app.kubernetes.io/instance") == "demo", where


def test_operator_rbac_clusterwide_has_no_wildcards() -> None:
    objs = _render(OPERATOR_CHART, None)
    roles = [o for o in objs if o["kind"] in ("ClusterRole", "Role")]
    # The ClusterRole, and the leader-election Role on Leases in the release namespace.
    assert [r["kind"] for r in roles] == ["ClusterRole", "Role"]
    for rule in roles[0]["rules"] + roles[1]["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
    granted = {
        (g, r) for rule in roles[0]["rules"] for g in rule["apiGroups"] for r in rule["resources"]
    }
    assert ("", "secrets") in granted and ("monitoring.coreos.com", "servicemonitors") in granted
    assert ("apiextensions.k8s.io", "customresourcedefinitions") in granted


def test_operator_rbac_namespaced_has_no_cluster_wide_secrets() -> None:
    objs = _render(OPERATOR_CHART, OPERATOR_CHART / "ci" / "namespaced-values.yaml")
    cluster = [o for o in objs if o["kind"] == "ClusterRole"]
    assert len(cluster) == 1
    assert cluster[0]["rules"] == [
        {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
         "verbs": ["get", "list", "watch"]},
        # Volume expansion reads whether a PVC's class allows growing (classes are cluster-wide).
        {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
    ]  # fmt: skip
    roles = {o["metadata"]["namespace"]: o for o in objs if o["kind"] == "Role"}
    bindings = {o["metadata"]["namespace"] for o in objs if o["kind"] == "RoleBinding"}
    release_ns = next(o for o in objs if o["kind"] == "Deployment")["metadata"]["namespace"]
    assert set(roles) == bindings == {"team-a", "team-b", release_ns}  # + leader election
    env = next(o for o in objs if o["kind"] == "Deployment")["spec"]["template"]["spec"]
    variables = {e["name"]: e.get("value") for e in env["containers"][0]["env"]}
    assert variables["INDEXFORGE_WATCH_NAMESPACES"] == "team-a,team-b"


def test_operator_deployment_shape() -> None:
    objs = _render(OPERATOR_CHART, None)
    dep = next(o for o in objs if o["kind"] == "Deployment")
    # Two replicas electing a leader; a rollout never has zero (a standby takes over).
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    assert container["resources"]["limits"] and container["resources"]["requests"]


def test_operator_chart_optional_indexforge() -> None:
    objs = _render(OPERATOR_CHART, OPERATOR_CHART / "ci" / "with-indexforge-values.yaml")
    cr = next(o for o in objs if o["kind"] == "IndexForge")
    assert cr["spec"] == {"gateway": {"enabled": False}, "monitoring": {"enabled": False}}
    assert any(o["kind"] == "ServiceMonitor" for o in objs)
    assert not any(o["kind"] == "IndexForge" for o in _render(OPERATOR_CHART, None))


def test_operator_chart_rejects_an_unwatched_cr_namespace() -> None:
    out = helm("template", "x", str(OPERATOR_CHART), "--kube-version", KUBE_VERSION,
               "--set", "watchNamespaces={a}", "--set", "indexforge.enabled=true",
               "--set", "indexforge.namespace=b", check=False)  # fmt: skip
    assert "is not in watchNamespaces" in out


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ("api: {autoscaling: {minReplicas: 5, maxReplicas: 2}}", "minReplicas must be less than"),
        ("ml: {gpu: {enabled: true, count: 0}}", "gpu.count must be at least 1"),
        ("sentry: {dsn: https://k@sentry.example/1}", "must not be set inline"),
        ("sentry: {enabled: true}", "dsnSecretRef is required"),
        ("gateway: {routes: {api: /x/, ml: /x/}}", "routes.api and routes.ml must differ"),
        ("gateway: {cors: {credentials: true}}", "cors.credentials requires explicit origins"),
        ("gateway: {keyAuth: {consumers: [{username: a}, {username: a}]}}", "must be unique"),
        ("gateway: {ipRestriction: {enabled: true}}", "ipRestriction needs at least one"),
        ("gateway: {tls: {enabled: true}}", "tls.secretName is required"),
        ("api: {replicas: 0}", "minimum"),
        ("api: {replicaz: 2}", "additional properties"),
        ("ml: {gpu: {resourceName: gpu}}", "does not match pattern"),
        ("redis: {app: {maxmemoryPolicy: lru}}", "value must be one of"),
    ],
)
def test_static_chart_rejects_what_the_crd_rejects(
    values: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(values + "\n")
    out = helm("template", "demo", str(STATIC_CHART), "--kube-version", KUBE_VERSION,
               "-f", str(path), check=False)  # fmt: skip
    assert message in out, out[-2000:]


HELM_BAD = [c for c in admission_cases.BAD if c.helm]


@pytest.mark.parametrize("case", HELM_BAD, ids=[c.id for c in HELM_BAD])
def test_static_chart_rejects_bad_syntax_like_admission(
    case: admission_cases.Case, tmp_path: Path
) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(case.spec))
    out = helm("template", "demo", str(STATIC_CHART), "--kube-version", KUBE_VERSION,
               "-f", str(path), check=False)  # fmt: skip
    assert case.message in out, out[-2000:]


@pytest.mark.parametrize("case", admission_cases.GOOD, ids=[c.id for c in admission_cases.GOOD])
def test_static_chart_accepts_what_admission_accepts(
    case: admission_cases.Case, tmp_path: Path
) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(case.spec))
    assert _render(STATIC_CHART, path)


@pytest.mark.parametrize("release", ["9lives", "x" * 41, "a.b"])
def test_static_chart_rejects_a_bad_release_name(release: str) -> None:
    """Release names helm accepts but that cannot prefix every object name (the CR's rule)."""
    out = helm("template", release, str(STATIC_CHART), "--kube-version", KUBE_VERSION, check=False)
    assert "must start with a letter" in out, out


def test_partial_object_replaces_the_default_like_a_cr(tmp_path: Path) -> None:
    """resources given without requests: no requests (as the API server would default it)."""
    path = tmp_path / "values.yaml"
    path.write_text("api: {resources: {limits: {cpu: '3'}}}\n")
    objs = load_stream(helm_template(STATIC_CHART, values=[path]))
    api = next(o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "demo-api")
    assert api["spec"]["template"]["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "3"}}


@pytest.mark.parametrize("chart", [STATIC_CHART, OPERATOR_CHART], ids=lambda c: c.name)
def test_helm_test_hooks_render(chart: Path) -> None:
    hooks = [o for o in _render(chart, None)
             if (o["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"]  # fmt: skip
    assert len(hooks) == 1 and hooks[0]["kind"] == "Pod"
    assert not restricted_violations(hooks[0]["spec"])


def test_static_helm_test_calls_the_api_through_kong() -> None:
    pod = next(o for o in _render(STATIC_CHART, None) if o["kind"] == "Pod")
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert env["URL"]["value"] == "http://demo-gateway.ns1.svc:80/api/v1/healthz"
    assert env["API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "demo-gateway-consumers",
                                                          "key": "default"}  # fmt: skip
    # Not selected by the instance's default-deny policy (it would block its egress).
    assert "app.kubernetes.io/name" not in pod["metadata"]["labels"]


def _leaf_keys_without_docs(text: str) -> list[str]:
    """Keys without a `# --` comment right above them or above one of their parents."""
    lines = text.splitlines()
    missing = []
    documented_at: list[tuple[int, bool]] = []  # (indent, documented) of the open parents
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)([A-Za-z][\w.-]*):", line)
        if not match:
            continue
        indent = len(match.group(1))
        while documented_at and documented_at[-1][0] >= indent:
            documented_at.pop()
        j, documented = i - 1, False
        while j >= 0 and lines[j].strip().startswith("#"):
            documented = documented or lines[j].strip().startswith("# --")
            j -= 1
        inherited = any(d for _, d in documented_at)
        if not (documented or inherited):
            nxt = next(
                (ln for ln in lines[i + 1 :] if ln.strip() and not ln.lstrip().startswith("#")), ""
            )
            is_parent = len(nxt) - len(nxt.lstrip()) > indent
            if not is_parent:
                missing.append(match.group(2))
        documented_at.append((indent, documented))
    return missing


@pytest.mark.parametrize("chart", [STATIC_CHART, OPERATOR_CHART], ids=lambda c: c.name)
def test_every_value_is_documented(chart: Path) -> None:
    assert _leaf_keys_without_docs((chart / "values.yaml").read_text()) == []


def test_documentation_check_can_fail() -> None:
    text = "# -- a\na: 1\nb: 2\nc:\n  # -- d\n  d: 1\n  e: 1\n# -- f\nf:\n  g: 1\n"
    assert _leaf_keys_without_docs(text) == ["b", "e"]


def test_static_values_are_the_spec_defaults() -> None:
    """values.yaml (+ the chart's defaulting) equals the spec model's defaults."""
    from indexforge_operator.spec import IndexForgeSpec

    objs = _render(STATIC_CHART, None)
    assert objs  # renders with the generated values
    defaults = IndexForgeSpec().model_dump(by_alias=True, exclude_none=True)
    values = yaml.safe_load((STATIC_CHART / "values.yaml").read_text())
    chart_only = set(generator.CHART_ONLY["properties"])
    assert not chart_only & set(defaults), "a chart-only value shadows a spec field"
    for key in set(values) - chart_only:
        assert key in defaults, f"values key {key} is not a spec field"
    assert set(defaults) == set(values) - chart_only


def test_chart_only_values_stay_out_of_the_spec() -> None:
    """The chart's spec helper drops exactly the chart-only keys (and Helm's `global`)."""
    helper = (STATIC_CHART / "templates" / "_helpers.tpl").read_text()
    omitted = re.search(r'omit \.Values ((?:"[^"]+" ?)+)', helper)
    assert omitted, "indexforge.spec no longer omits non-spec values"
    names = set(re.findall(r'"([^"]+)"', omitted.group(1)))
    assert set(generator.CHART_ONLY["properties"]) | {"global"} <= names


def test_generated_files_are_current() -> None:
    """CRD copy, values.yaml/schema/defaults and manifests/install.yaml match their sources."""
    stale = generator.stale(generator.outputs())
    stale += generator.stale([generator.Output(generator.INSTALL_YAML, generator.install_yaml())])
    assert not stale, f"stale: {stale}; run `python -m hack.charts`"


def test_staleness_check_can_fail(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("old\n")
    assert generator.stale([generator.Output(path, "new\n")]) == [str(path)]
    assert generator.stale([generator.Output(path, "old\n")]) == []
    assert generator.stale([generator.Output(tmp_path / "missing.yaml", "")]) != []


def test_install_bundle_contents() -> None:
    objs = load_stream((generator.INSTALL_YAML).read_text())
    kinds = [o["kind"] for o in objs]
    assert kinds[:2] == ["CustomResourceDefinition", "Namespace"], kinds
    assert {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment"} <= set(kinds)
    assert "Pod" not in kinds  # no helm test hooks
    crd = objs[0]
    source = yaml.safe_load((generator.CRD_SOURCE).read_text())
    assert crd == source


@pytest.mark.parametrize("chart", [STATIC_CHART, OPERATOR_CHART], ids=lambda c: c.name)
def test_helper_names_are_prefixed_with_the_chart(chart: Path) -> None:
    names = [
        m for t in (chart / "templates").rglob("*")
        if t.is_file() for m in re.findall(r'define\s+"([^"]+)"', t.read_text())
    ]  # fmt: skip
    assert names, "no helpers"
    assert [n for n in names if not n.startswith(f"{chart.name}.")] == []
    assert len(names) == len(set(names)), "a helper is defined twice"


def _messaging(tmp_path: Path, text: str, **kw: Any) -> str:
    path = tmp_path / "values.yaml"
    path.write_text(text)
    args = ["template", "demo", str(STATIC_CHART), "--kube-version", KUBE_VERSION, "-f", str(path)]
    for api, wanted in ((RABBITMQ_CLUSTER_API, kw.get("rabbitmq")), (KEDA_API, kw.get("keda"))):
        if wanted:
            args += ["--api-versions", api]
    return helm(*args, check=kw.get("check", True))


@pytest.mark.parametrize("rabbitmq", [False, True], ids=["no-rabbitmq-crd", "rabbitmq-crd"])
@pytest.mark.parametrize("keda", [False, True], ids=["no-keda-crd", "keda-crd"])
def test_static_chart_messaging_auto_follows_the_served_apis(
    tmp_path: Path, rabbitmq: bool, keda: bool
) -> None:
    """provider/scaler `auto`: the RabbitMQ cluster operator and KEDA when their APIs are
    served, else the built-in broker and a CPU HPA (the operator's resolve_integrations)."""
    objs = load_stream(
        _messaging(tmp_path, "messaging: {enabled: true}\n", rabbitmq=rabbitmq, keda=keda)
    )
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objs}
    assert (("RabbitmqCluster", "demo-rabbitmq") in kinds) is rabbitmq
    assert (("StatefulSet", "demo-rabbitmq") in kinds) is not rabbitmq
    assert (("ConfigMap", "demo-rabbitmq-config") in kinds) is not rabbitmq
    assert (("ScaledObject", "demo-worker") in kinds) is keda
    assert (("TriggerAuthentication", "demo-worker") in kinds) is keda
    assert (("HorizontalPodAutoscaler", "demo-worker") in kinds) is not keda
    assert ("Deployment", "demo-worker") in kinds
    assert ("Service", "demo-worker") not in kinds, "nobody calls a worker"
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in objs}
    secret = by_name[("Secret", "demo-internal-auth")]
    assert {"rabbitmq-username", "rabbitmq-password", "rabbitmq-auth.conf",
            "rabbitmq-erlang-cookie"} <= set(secret["data"])  # fmt: skip
    api = by_name[("Deployment", "demo-api")]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in api["env"]}
    assert env["INDEXFORGE_INGEST_MODE"]["value"] == "queue"
    user_secret = env["AMQP_USERNAME"]["valueFrom"]["secretKeyRef"]["name"]
    assert user_secret == ("demo-rabbitmq-default-user" if rabbitmq else "demo-internal-auth")


def test_static_chart_without_messaging_has_no_broker_keys_or_queue_mode(tmp_path: Path) -> None:
    objs = load_stream(_messaging(tmp_path, "{}\n", rabbitmq=True, keda=True))
    assert not {o["metadata"]["name"] for o in objs} & {"demo-rabbitmq", "demo-worker"}
    secret = next(o for o in objs if o["metadata"]["name"] == "demo-internal-auth")
    assert not [k for k in secret["data"] if k.startswith("rabbitmq")]
    api = next(o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "demo-api")
    names = {e["name"] for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "INDEXFORGE_INGEST_MODE" not in names


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ("messaging: {enabled: true, provider: rabbitmqClusterOperator}\n",
         "messaging.provider is rabbitmqClusterOperator but the rabbitmqclusters.rabbitmq.com CRD "
         "is not installed: install the RabbitMQ cluster operator or set provider auto"),
        ("messaging: {enabled: true, workers: {scaler: keda}}\n",
         "messaging.workers.scaler is keda but the scaledobjects.keda.sh CRD is not installed: "
         "install KEDA or set scaler auto"),
    ],
    ids=["rabbitmq-cluster-operator", "keda"],
)  # fmt: skip
def test_static_chart_fails_a_forced_integration_whose_crd_is_missing(
    tmp_path: Path, values: str, message: str
) -> None:
    """The operator leaves such objects out and reports Degraded (decisions.check_integrations);
    a chart has no status, so the release fails with the same message."""
    out = _messaging(tmp_path, values, check=False)
    assert message in out, out[-2000:]
    assert _messaging(tmp_path, values, rabbitmq=True, keda=True), "fine once the CRD is served"
    off = values.replace("enabled: true", "enabled: false")
    assert _messaging(tmp_path, off), "forcing an integration of disabled messaging is no error"
