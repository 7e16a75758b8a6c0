"""`indexforge` command line: render a CR without a cluster, print the CRD."""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from .crd import crd_yaml
from .render import RenderError, render_text


def _token() -> str:
    # The only place secret values are generated outside the reconciler.
    return secrets.token_urlsafe(32)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="indexforge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    render = sub.add_parser("render", help="print the objects an IndexForge CR produces")
    render.add_argument("-f", "--filename", required=True, help="CR file ('-' for stdin)")
    render.add_argument(
        "--prometheus-operator",
        action="store_true",
        help="render ServiceMonitors/PrometheusRule instead of the standalone Prometheus",
    )
    render.add_argument("-n", "--namespace", help="override metadata.namespace")
    crd = sub.add_parser("crd", help="print the IndexForge CRD")
    crd.add_argument(
        "--check",
        metavar="FILE",
        help="exit 1 if FILE differs from the generated CRD (for CI)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "crd":
        text = crd_yaml()
        if args.check:
            if Path(args.check).read_text(encoding="utf-8") != text:
                print(
                    f"{args.check} is stale: regenerate it with `indexforge crd`", file=sys.stderr
                )
                return 1
            return 0
        sys.stdout.write(text)
        return 0
    source = sys.stdin.read() if args.filename == "-" else Path(args.filename).read_text("utf-8")
    try:
        out = render_text(
            source,
            token=_token,
            prometheus_operator=args.prometheus_operator,
            namespace=args.namespace,
        )
    except RenderError as err:
        print(f"invalid IndexForge: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
