"""Command line for the local control plane: ``python -m tests.cluster up|down|env|tools``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from tests.cluster import controlplane, tools
from tests.procs import ProcessBook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("INDEXFORGE_CLUSTER_DIR", controlplane.DEFAULT_STATE_DIR)),
        help="where pki, logs, etcd data, kubeconfig and PIDs live",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start the control plane and wait until nodes are Ready")
    sub.add_parser("down", help="stop every process `up` started")
    sub.add_parser("env", help="print the export line for the running cluster")
    tools_cmd = sub.add_parser("tools", help="build (or reuse) pinned tools into .tools/bin")
    tools_cmd.add_argument("names", nargs="*", help="tools to build (default: every tool)")
    tools_cmd.add_argument(
        "--only",
        action="append",
        default=[],
        choices=sorted(tools.GROUPS),
        metavar="GROUP",
        help=f"build a group of tools (repeatable): {', '.join(tools.GROUPS)}",
    )
    prov = sub.add_parser("provisioner", help=argparse.SUPPRESS)
    prov.add_argument("kubeconfig")
    prov.add_argument("volume_root")
    args = parser.parse_args(argv)

    if args.command == "tools":
        return tools.main(args.names, groups=args.only)
    if args.command == "provisioner":
        from tests.cluster import provisioner

        provisioner.run(args.kubeconfig, args.volume_root)
        return 0
    if args.command == "down":
        stopped = controlplane.down(args.state_dir)
        print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        return 0
    kubeconfig = args.state_dir / "kubeconfig"
    if args.command == "env":
        if not ProcessBook(args.state_dir).running():
            print("no local control plane is running: run `make cluster-up`", file=sys.stderr)
            return 1
        print(f"export KUBECONFIG={kubeconfig.resolve()}")
        return 0
    started = time.monotonic()
    try:
        tools.ensure_built(tools.CONTROL_PLANE_TOOLS)
        tools.link_all(tools.CONTROL_PLANE_TOOLS)
        controlplane.up(args.state_dir)
    except (controlplane.ClusterError, tools.ToolBuildError) as exc:
        print(f"cluster-up failed: {exc}", file=sys.stderr)
        return 1
    print(f"# control plane ready in {time.monotonic() - started:.1f}s", file=sys.stderr)
    print(f"export KUBECONFIG={kubeconfig.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
