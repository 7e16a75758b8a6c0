"""The control-plane harness's pure parts: command lines, node shapes, PV matching."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.cluster import controlplane, objects, provisioner, tools


@pytest.fixture
def commands(tmp_path: Path) -> dict[str, list[str]]:
    ports = controlplane.Ports(2379, 2380, 6443, 10257, 10259, 10247)
    return controlplane.component_commands(tmp_path, ports)


def test_every_listener_is_on_loopback(commands: dict[str, list[str]]) -> None:
    addresses = [
        arg
        for argv in commands.values()
        for arg in argv
        if re.match(r"--(bind-address|advertise-address|listen-[a-z-]+|server-address)=", arg)
    ]
    assert addresses, "no listener flags found"
    for arg in addresses:
        assert "127.0.0.1" in arg, arg


@pytest.mark.parametrize(
    "flag",
    [
        "--authorization-mode=RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    ],
)
def test_apiserver_runs_like_a_real_cluster(commands: dict[str, list[str]], flag: str) -> None:
    assert flag in commands["kube-apiserver"]


def test_apiserver_admission_includes_pod_security_and_service_accounts(
    commands: dict[str, list[str]],
) -> None:
    plugins_flag = next(a for a in commands["kube-apiserver"] if a.startswith("--enable-admission"))
    plugins = plugins_flag.split("=", 1)[1].split(",")
    assert {"PodSecurity", "ServiceAccount", "DefaultStorageClass"} <= set(plugins)


def test_kwok_manages_exactly_the_nodes_the_harness_creates(commands: dict[str, list[str]]) -> None:
    selector = next(a for a in commands["kwok"] if "annotation-selector" in a).split("=", 1)[1]
    key, value = selector.split("=")
    for node in objects.nodes():
        assert node["metadata"]["annotations"][key] == value


def test_gpu_node_is_labelled_tainted_and_advertises_four_gpus() -> None:
    gpu = objects.node("g", gpu=True)
    cpu = objects.node("c", gpu=False)
    assert gpu["metadata"]["labels"]["nvidia.com/gpu.present"] == "true"
    assert gpu["spec"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    ]
    assert gpu["status"]["capacity"]["nvidia.com/gpu"] == "4"
    assert gpu["status"]["allocatable"]["nvidia.com/gpu"] == "4"
    assert "nvidia.com/gpu" not in cpu["status"]["capacity"]
    assert cpu["spec"]["taints"] == []


def _claim(name: str, *, phase: str = "Pending", sc: str = "standard", volume: str = "") -> dict:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}"},
        "spec": {
            "storageClassName": sc,
            "volumeName": volume,
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "3Gi"}},
        },
        "status": {"phase": phase},
    }


def test_provisioner_only_takes_pending_unbound_claims_of_its_classes() -> None:
    claims = [
        _claim("a"),
        _claim("bound", phase="Bound", volume="pv-x"),
        _claim("other-class", sc="fast"),
        _claim("has-volume", volume="pv-y"),
    ]
    picked = provisioner._claims_to_provision(claims, {"standard"})
    assert [c["metadata"]["name"] for c in picked] == ["a"]


def test_persistent_volume_is_prebound_to_the_claim_and_sized_to_it() -> None:
    pv = objects.persistent_volume_for(_claim("data"), root="/vols")
    assert pv["spec"]["claimRef"]["uid"] == "uid-data"
    assert pv["spec"]["claimRef"]["namespace"] == "ns"
    assert pv["spec"]["capacity"] == {"storage": "3Gi"}
    assert pv["spec"]["storageClassName"] == "standard"
    assert pv["spec"]["hostPath"]["path"].startswith("/vols/")


def test_tool_cache_key_names_tool_and_version_and_lives_outside_the_tree() -> None:
    tool = tools.TOOLS["kube-apiserver"]
    assert tool.cache_key().startswith(f"kube-apiserver-{tools.KUBERNETES_VERSION}-")
    assert tools.REPO_ROOT not in tool.cached_path().parents


def test_tool_cache_root_can_be_overridden(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INDEXFORGE_TOOLS_CACHE", str(tmp_path))
    assert tools.TOOLS["etcd"].cached_path().parent.parent == tmp_path


def test_kubernetes_binaries_are_version_stamped() -> None:
    flags = " ".join(tools.TOOLS["kube-apiserver"].ldflags)
    assert f"gitVersion={tools.KUBERNETES_VERSION}" in flags
    assert "gitMinor=36" in flags


# --- which tools an entry point builds ---------------------------------------------------

SLOW_NON_CLUSTER_TOOLS = {"weaviate-server", "helm", "kubeconform"}


def test_unknown_tool_or_group_is_an_error_not_an_empty_build() -> None:
    with pytest.raises(ValueError, match="helmm"):
        tools.select(["helmm"])
    with pytest.raises(ValueError, match="control-plan"):
        tools.select(groups=["control-plan"])


def test_control_plane_group_is_exactly_what_the_cluster_starts() -> None:
    chosen = tools.select(groups=["control-plane"])
    assert chosen == list(tools.CONTROL_PLANE_TOOLS)
    assert not SLOW_NON_CLUSTER_TOOLS & set(chosen)


def test_nothing_named_builds_every_tool() -> None:
    assert set(tools.select()) == {*tools.TOOLS, *tools.SYSTEM_TOOLS}


def test_names_and_groups_combine_without_repeats() -> None:
    chosen = tools.select(["kwok", "helm"], ["control-plane"])
    assert chosen[:2] == ["kwok", "helm"]
    assert sorted(chosen) == sorted({"helm", *tools.CONTROL_PLANE_TOOLS})


def test_every_group_names_known_tools() -> None:
    known = {*tools.TOOLS, *tools.SYSTEM_TOOLS}
    for group, names in tools.GROUPS.items():
        assert set(names) <= known, group
    assert set(tools.GROUPS["all"]) == known


def test_cli_passes_the_group_to_the_builder(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.cluster import __main__ as cli

    built: list[list[str]] = []
    monkeypatch.setattr(tools, "ensure_built", lambda names: built.append(list(names)) or [])
    monkeypatch.setattr(tools, "link_all", lambda names: None)
    assert cli.main(["tools", "--only", "control-plane"]) == 0
    assert built == [list(tools.CONTROL_PLANE_TOOLS)]
    with pytest.raises(SystemExit):
        cli.main(["tools", "--only", "nonsense"])


@pytest.mark.parametrize("target", ["demo", "cluster-up"])
def test_demo_and_cluster_up_build_only_the_control_plane(target: str) -> None:
    """`make -n` lists the recipe lines without running them (a cold full build is ~13 min)."""
    proc = subprocess.run(
        ["make", "-n", target], cwd=tools.REPO_ROOT, capture_output=True, text=True, check=True
    )
    builds = [ln for ln in proc.stdout.splitlines() if "tests.cluster tools" in ln]
    assert builds, proc.stdout
    assert all(ln.endswith("tools --only control-plane") for ln in builds), builds


def test_make_tools_still_builds_everything_for_the_test_suite() -> None:
    proc = subprocess.run(
        ["make", "-n", "tools"], cwd=tools.REPO_ROOT, capture_output=True, text=True, check=True
    )
    # Under a parent make (make test) the output also carries "Entering directory" lines.
    builds = [ln for ln in proc.stdout.splitlines() if "tests.cluster tools" in ln]
    assert builds and all(ln.endswith("-m tests.cluster tools") for ln in builds), proc.stdout


def test_demo_waits_while_a_new_crd_has_no_conditions() -> None:
    """A CRD right after its apply has no status; the demo must keep polling, not fail."""
    from tests.demo import _established

    assert not _established('{"status": {"conditions": null}}')
    assert not _established("{}")
    assert not _established(
        '{"status": {"conditions": [{"type": "Established", "status": "False"}]}}'
    )
    assert _established('{"status": {"conditions": [{"type": "Established", "status": "True"}]}}')
