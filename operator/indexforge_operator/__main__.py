"""Run the operator: ``python -m indexforge_operator`` (console script ``indexforge-operator``).

Watches every namespace, or only those in ``INDEXFORGE_WATCH_NAMESPACES`` (comma-separated),
against the current KUBECONFIG or the in-cluster service account. With a leader-election
namespace, replicas share a Lease and only its holder writes.
"""

from __future__ import annotations

import argparse
import logging
import os

import kopf
import prometheus_client

from indexforge_operator import handlers


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="indexforge-operator")
    parser.add_argument(
        "--namespace",
        action="append",
        default=[n for n in os.environ.get("INDEXFORGE_WATCH_NAMESPACES", "").split(",") if n],
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    parser.add_argument(
        "--liveness",
        default=os.environ.get("INDEXFORGE_LIVENESS", "http://0.0.0.0:8080/healthz"),
        help="kopf liveness endpoint URL",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("INDEXFORGE_METRICS_PORT", "8081")),
        help="serve Prometheus metrics on this port (0 disables)",
    )
    parser.add_argument(
        "--metrics-address",
        default=os.environ.get("INDEXFORGE_METRICS_ADDRESS", "0.0.0.0"),
        help="address the metrics server binds",
    )
    parser.add_argument(
        "--leader-election-namespace",
        default=os.environ.get("INDEXFORGE_LEADER_ELECTION_NAMESPACE", ""),
        help="hold a Lease in this namespace; only its holder writes (empty: no election)",
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    os.environ["INDEXFORGE_LEADER_ELECTION_NAMESPACE"] = args.leader_election_namespace
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.JSON)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    # kopf logs every handler call on every watch event at INFO: thousands of lines per minute
    # with many CRs. Our own log lines say what a pass did; kopf's warnings still come through.
    if not args.verbose:
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    assert handlers.GROUP  # the import registers the handlers
    if args.metrics_port:
        prometheus_client.start_http_server(args.metrics_port, addr=args.metrics_address)
    kopf.run(
        standalone=True,  # leadership is our own Lease (handlers.py), not kopf's peering
        clusterwide=not args.namespace,
        namespaces=list(args.namespace),
        liveness_endpoint=args.liveness,
    )


if __name__ == "__main__":
    main()
