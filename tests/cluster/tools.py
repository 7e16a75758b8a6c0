"""Pinned Go-built tools for the local control plane and the chart tests.

Each tool is built from the Go module under ``tests/cluster/tools/<module>/`` (one module per
upstream, because their ``k8s.io/*`` versions clash) and cached outside the work tree, keyed by
name, version and a hash of the module's go.mod/go.sum, so only a cold machine pays the build.
``link_all`` then points ``.tools/bin/<name>`` at the cached binaries.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULES_DIR = Path(__file__).resolve().parent / "tools"
TOOLS_BIN = REPO_ROOT / ".tools" / "bin"

KUBERNETES_VERSION = "v1.36.3"
JAEGER_VERSION = "v1.76.0"  # Go module tag of Jaeger v2.13.0 (see TOOLS)
JAEGER_RELEASE = "v2.13.0"
_JAEGER_VERSION_PKG = "github.com/jaegertracing/jaeger/internal/version"
REDIS_EXPORTER_VERSION = "v1.62.0"


def cache_root() -> Path:
    """Where built binaries live; outside the work tree so fresh clones reuse them."""
    override = os.environ.get("INDEXFORGE_TOOLS_CACHE")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "indexforge" / "tools"


def _k8s_version_ldflags(version: str) -> tuple[str, ...]:
    # Without these the servers report v0.0.0, which breaks version-gated clients (helm, kubectl).
    major, minor = version.lstrip("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    return (
        f"-X {pkg}.gitVersion={version}",
        f"-X {pkg}.gitMajor={major}",
        f"-X {pkg}.gitMinor={minor}",
        f"-X {pkg}.gitTreeState=clean",
    )


@dataclass(frozen=True)
class Tool:
    """One binary built from one package of a pinned tools module."""

    name: str
    version: str
    module: str
    package: str
    ldflags: tuple[str, ...] = field(default=())

    @property
    def module_dir(self) -> Path:
        return MODULES_DIR / self.module

    def cache_key(self) -> str:
        digest = hashlib.sha256()
        for fname in ("go.mod", "go.sum"):
            path = self.module_dir / fname
            if path.exists():
                digest.update(path.read_bytes())
        digest.update(" ".join(self.ldflags).encode())
        return f"{self.name}-{self.version}-{digest.hexdigest()[:12]}"

    def cached_path(self) -> Path:
        return cache_root() / self.cache_key() / self.name


TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool(
            "kube-apiserver",
            KUBERNETES_VERSION,
            "kubernetes",
            "k8s.io/kubernetes/cmd/kube-apiserver",
            _k8s_version_ldflags(KUBERNETES_VERSION),
        ),
        Tool(
            "kube-controller-manager",
            KUBERNETES_VERSION,
            "kubernetes",
            "k8s.io/kubernetes/cmd/kube-controller-manager",
            _k8s_version_ldflags(KUBERNETES_VERSION),
        ),
        Tool(
            "kube-scheduler",
            KUBERNETES_VERSION,
            "kubernetes",
            "k8s.io/kubernetes/cmd/kube-scheduler",
            _k8s_version_ldflags(KUBERNETES_VERSION),
        ),
        Tool("etcd", "v3.6.16", "etcd", "go.etcd.io/etcd/server/v3"),
        Tool("kwok", "v0.8.0", "kwok", "sigs.k8s.io/kwok/cmd/kwok"),
        Tool(
            "helm",
            "v3.22.0",
            "helm",
            "helm.sh/helm/v3/cmd/helm",
            (
                "-X helm.sh/helm/v3/internal/version.version=v3.22.0",
                # Helm's default capabilities follow its client-go minor (v0.37); unset, helm
                # assumes Kubernetes 1.20 and charts' kubeVersion constraints fail offline.
                "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1",
                "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37",
                "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1",
                "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37",
            ),
        ),
        Tool(
            "kubeconform", "v0.8.0", "kubeconform", "github.com/yannh/kubeconform/cmd/kubeconform"
        ),
        Tool(
            "weaviate-server",
            "v1.35.2",
            "weaviate",
            "github.com/weaviate/weaviate/cmd/weaviate-server",
        ),
        # Jaeger v2 (cmd/jaeger) is tagged v1.76.0 in Go: the v2 releases ship from the v1.x
        # module path, so this pin is Jaeger v2.13.0, the image tag the operator deploys.
        Tool(
            "jaeger",
            JAEGER_VERSION,
            "jaeger",
            "github.com/jaegertracing/jaeger/cmd/jaeger",
            # What `jaeger version` and the collector's build info report (upstream's ldflag).
            (f"-X {_JAEGER_VERSION_PKG}.latestVersion={JAEGER_RELEASE}",),
        ),
        # The image tag the operator deploys beside each Redis (spec redis exporter image).
        # Built rather than Debian's 1.45: the password-file reload (/-/reload, 1.50+) that
        # keeps it scraping across a password rotation is what the tests must exercise.
        Tool(
            "redis_exporter",
            REDIS_EXPORTER_VERSION,
            "redis-exporter",
            "github.com/oliver006/redis_exporter",
            (f"-X main.BuildVersion={REDIS_EXPORTER_VERSION}",),
        ),
    )
}

CONTROL_PLANE_TOOLS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
)

# Debian's prometheus package ships promtool; building it from Go would cost minutes for nothing.
SYSTEM_TOOLS = ("promtool",)

# Named subsets, so each entry point builds only what it runs: a cold Go build costs minutes per
# tool, and `make demo` / `make cluster-up` need the control plane alone.
GROUPS: dict[str, tuple[str, ...]] = {
    "control-plane": CONTROL_PLANE_TOOLS,
    "charts": ("helm", "kubeconform"),
    "stack": ("weaviate-server",),
    "monitoring": ("jaeger", "redis_exporter"),
    "all": (*TOOLS, *SYSTEM_TOOLS),
}


class ToolBuildError(RuntimeError):
    """A tool failed to build; the message names it and carries the compiler's last lines."""


def _group_by_module(tools: Iterable[Tool]) -> dict[str, list[Tool]]:
    groups: dict[str, list[Tool]] = {}
    for tool in tools:
        groups.setdefault(tool.module, []).append(tool)
    return groups


def _build_one(tool: Tool) -> None:
    target = tool.cached_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    # One builder per tool across processes: a second `make tools` waits, then finds it cached.
    with open(target.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.exists():
            _go_build(tool, target)


def _go_build(tool: Tool, target: Path) -> None:
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    cmd = [
        "go", "build", "-o", str(partial),
        "-ldflags", " ".join(["-s", "-w", *tool.ldflags]), tool.package,
    ]  # fmt: skip
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod -buildvcs=false"}
    proc = subprocess.run(
        cmd, cwd=tool.module_dir, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise ToolBuildError(f"building {tool.name} {tool.version} failed:\n{tail}")
    partial.replace(target)  # atomic: a killed build never leaves a half-written cache entry


def _build_module(tools: list[Tool], log: list[str]) -> None:
    """Build a module's missing tools one after another; later ones reuse the Go build cache."""
    for tool in tools:
        if tool.cached_path().exists():
            continue
        started = time.monotonic()
        _build_one(tool)
        log.append(f"built {tool.name} {tool.version} in {time.monotonic() - started:.0f}s")


def ensure_built(names: Iterable[str], *, parallel: int = 2) -> list[str]:
    """Build whatever of ``names`` is not cached yet; returns human-readable build notes."""
    selected = [TOOLS[n] for n in names if n in TOOLS]
    log: list[str] = []
    groups = _group_by_module(selected)
    errors: list[str] = []
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        futures = [pool.submit(_build_module, ts, log) for ts in groups.values()]
        for future in futures:
            try:
                future.result()
            except ToolBuildError as exc:
                errors.append(str(exc))
    if errors:
        raise ToolBuildError("\n\n".join(errors))
    return log


def link_all(names: Iterable[str]) -> None:
    """Point ``.tools/bin/<name>`` at the cached (or system) binaries."""
    TOOLS_BIN.mkdir(parents=True, exist_ok=True)
    for name in names:
        link = TOOLS_BIN / name
        if name in TOOLS:
            source = TOOLS[name].cached_path()
        else:
            found = shutil.which(name)
            if found is None:
                continue
            source = Path(found)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(source)


def tool_path(name: str) -> Path:
    """Path of a tool: the linked copy if present, else the cache (or PATH for system tools)."""
    linked = TOOLS_BIN / name
    if linked.exists():
        return linked
    if name in TOOLS:
        return TOOLS[name].cached_path()
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found: run `make tools`")
    return Path(found)


def built_tool(name: str, error: type[Exception]) -> Path:
    """A tool's path, or `error` saying how to build it when it is not built yet."""
    path = tool_path(name)
    if not path.exists():
        raise error(
            f"{name} is not built ({path} missing): run "
            f"`.venv/bin/python -m tests.cluster tools {name}` (or `make tools`)"
        )
    return path


def select(names: Iterable[str] = (), groups: Iterable[str] = ()) -> list[str]:
    """Tool names to build: the named tools plus every tool of the named groups, in a stable
    order without repeats; nothing named means every tool. Unknown names fail loudly, because
    `ensure_built` skips what it does not know and a typo would pass as "nothing to build"."""
    names, groups = list(names), list(groups)
    unknown = [g for g in groups if g not in GROUPS]
    unknown += [n for n in names if n not in TOOLS and n not in SYSTEM_TOOLS]
    if unknown:
        known = ", ".join([*GROUPS, *TOOLS, *SYSTEM_TOOLS])
        raise ValueError(f"unknown tool or group {unknown}; known: {known}")
    if not names and not groups:
        groups = ["all"]
    wanted = [*names, *(n for g in groups for n in GROUPS[g])]
    return list(dict.fromkeys(wanted))


def main(argv: list[str], *, groups: Iterable[str] = ()) -> int:
    try:
        names = select(argv, groups)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        for line in ensure_built(names):
            print(line, file=sys.stderr, flush=True)
    except ToolBuildError as exc:
        print(exc, file=sys.stderr)
        return 1
    link_all(names)
    # stderr: `eval "$(make -s cluster-up)"` must see only the export line on stdout.
    print(f"tools ready in {TOOLS_BIN} ({time.monotonic() - started:.0f}s)", file=sys.stderr)
    return 0
