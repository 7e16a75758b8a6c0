"""`indexforge` command line: render a CR without a cluster, print the CRD, and print the
credentials Secret the static chart reads with `credentials.existingSecret`."""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from .builders.credentials import internal_auth_data
from .crd import crd_yaml
from .generated import GeneratedSecrets, complete
from .naming import Names
from .render import RenderError, parse_spec, render_text
from .spec import IndexForgeSpec
from .yamlio import dump

# Keys of the static chart's credentials Secret beyond the internal-auth ones (the chart's
# templates/_credentials.tpl reads the same; tests/charts/test_credentials.py checks both agree).
GATEWAY_TOKEN_KEY = "gateway-token"  # the token Kong sends: the first of gateway-tokens
GRAFANA_PASSWORD_KEY = "grafana-admin-password"
CONSUMER_KEY_PREFIX = "consumer-"
# Values of the static chart that are not spec fields (hack/charts.py CHART_ONLY, + Helm's).
CHART_ONLY_VALUES = ("credentials", "global")


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
        help="render ServiceMonitors/PrometheusRule/AlertmanagerConfig instead of the "
        "standalone Prometheus and Alertmanager",
    )
    render.add_argument(
        "--rabbitmq-cluster",
        action="store_true",
        help="as if the RabbitMQ cluster operator's CRD existed: messaging.provider auto "
        "becomes a RabbitmqCluster instead of the built-in StatefulSet",
    )
    render.add_argument(
        "--keda",
        action="store_true",
        help="as if KEDA's CRDs existed: messaging.workers.scaler auto becomes a ScaledObject "
        "instead of a CPU HPA",
    )
    render.add_argument(
        "--rabbitmq-topology",
        action="store_true",
        help="as if the RabbitMQ messaging topology operator's CRDs existed: with a "
        "RabbitmqCluster, messaging.topology auto becomes Exchange/Queue/Binding objects and an "
        "application User",
    )
    render.add_argument(
        "--istio",
        action="store_true",
        help="as if Istio's CRDs existed: mesh.mode auto becomes istio (sidecar labels, "
        "PeerAuthentications, DestinationRules, AuthorizationPolicies)",
    )
    render.add_argument("-n", "--namespace", help="override metadata.namespace")
    creds = sub.add_parser(
        "credentials",
        help="print a Secret with fresh credentials for the static chart's "
        "credentials.existingSecret",
        description="Prints a Secret manifest with freshly generated credentials in the layout "
        "the static chart reads with `--set credentials.existingSecret=<name>`. Apply it once "
        "(`| kubectl apply -f -`, or seal/encrypt it for Git); every run prints new values.",
    )
    creds.add_argument("--release", required=True, help="helm release name (= instance name)")
    creds.add_argument("-n", "--namespace", required=True, help="release namespace")
    creds.add_argument(
        "-f",
        "--values",
        help="the chart values file (the spec): decides the gateway consumers and whether "
        "Grafana needs a password; default: the spec's defaults",
    )
    creds.add_argument("--name", help="Secret name (default: <release>-credentials)")
    crd = sub.add_parser("crd", help="print the IndexForge CRD")
    crd.add_argument(
        "--check",
        metavar="FILE",
        help="exit 1 if FILE differs from the generated CRD (for CI)",
    )
    return parser


def credentials_data(
    spec: IndexForgeSpec, names: Names, *, token: Callable[[], str]
) -> dict[str, str]:
    """Every key the static chart reads from credentials.existingSecret under `spec`, with
    fresh values: the operator's internal-auth layout plus the chart's own keys."""
    generated = complete(spec, current=GeneratedSecrets(), token=token)
    data = internal_auth_data(names, generated)
    data[GATEWAY_TOKEN_KEY] = generated.gateway_tokens[0]
    for username, key in generated.consumer_keys.items():
        data[f"{CONSUMER_KEY_PREFIX}{username}"] = key
    if generated.grafana_admin_password:
        data[GRAFANA_PASSWORD_KEY] = generated.grafana_admin_password
    return dict(sorted(data.items()))


def credentials_secret(
    values: Mapping[str, Any] | None,
    *,
    release: str,
    namespace: str,
    name: str | None = None,
    token: Callable[[], str],
) -> dict[str, Any]:
    """The Secret `indexforge credentials` prints (values: the chart's values, i.e. the spec)."""
    try:
        names = Names(instance=release, namespace=namespace)
    except ValueError as err:
        raise RenderError(f"--release/--namespace: {err}") from None
    raw = {k: v for k, v in (values or {}).items() if k not in CHART_ONLY_VALUES}
    spec = parse_spec(raw)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name or f"{names.instance}-credentials",
            "namespace": names.namespace,
            "labels": {
                "app.kubernetes.io/instance": names.instance,
                "app.kubernetes.io/part-of": "indexforge",
            },
        },
        "type": "Opaque",
        "stringData": credentials_data(spec, names, token=token),
    }


def _credentials(args: argparse.Namespace) -> int:
    values: Any = None
    if args.values:
        text = sys.stdin.read() if args.values == "-" else Path(args.values).read_text("utf-8")
        values = yaml.safe_load(text)
        if values is not None and not isinstance(values, dict):
            print(f"{args.values}: not a values mapping", file=sys.stderr)
            return 2
    try:
        obj = credentials_secret(
            values, release=args.release, namespace=args.namespace, name=args.name, token=_token
        )
    except RenderError as err:
        print(f"invalid values: {err}", file=sys.stderr)
        return 2
    name = obj["metadata"]["name"]
    sys.stdout.write(
        "# Generated credentials of the IndexForge static chart (every run prints new values).\n"
        "# Apply once, then: helm install/template ... "
        f"--set credentials.existingSecret={name}\n"
        f"---\n{dump(obj)}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "credentials":
        return _credentials(args)
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
            rabbitmq_cluster=args.rabbitmq_cluster,
            keda=args.keda,
            rabbitmq_topology=args.rabbitmq_topology,
            istio=args.istio,
        )
    except RenderError as err:
        print(f"invalid IndexForge: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
