"""Container ports of every component (NetworkPolicies refer to these, not Service ports)."""

from __future__ import annotations

from typing import Final

API: Final = 8000
ML: Final = 8080  # Weaviate's text2vec-transformers module expects an HTTP service
EXCEL: Final = 8000
# Metrics of the Python services listen apart from the serving port, so a scrape rule in a
# NetworkPolicy never opens the API itself to whoever may scrape.
SERVICE_METRICS: Final = 9102
REDIS: Final = 6379
REDIS_EXPORTER: Final = 9121
SENTINEL: Final = 26379  # Redis Sentinel (the replicated state Redis)
WEAVIATE_HTTP: Final = 8080
WEAVIATE_GRPC: Final = 50051
WEAVIATE_METRICS: Final = 2112
WEAVIATE_GOSSIP: Final = 7000
WEAVIATE_DATA: Final = 7001
WEAVIATE_RAFT: Final = 8300
WEAVIATE_RAFT_RPC: Final = 8301
KONG_PROXY: Final = 8000
KONG_PROXY_TLS: Final = 8443
KONG_STATUS: Final = 8100
PROMETHEUS: Final = 9090
ALERTMANAGER: Final = 9093
ALERTMANAGER_CLUSTER: Final = 9094  # gossip between replicas, TCP and UDP
GRAFANA: Final = 3000
JAEGER_OTLP_GRPC: Final = 4317
JAEGER_OTLP_HTTP: Final = 4318
JAEGER_UI: Final = 16686  # query UI and HTTP API (/api/traces), Grafana's datasource
JAEGER_QUERY_GRPC: Final = 16685  # query gRPC API; bound to the pod's loopback, unused
JAEGER_HEALTH: Final = 13133  # healthcheckv2 extension: /status
JAEGER_METRICS: Final = 8888  # the collector's own telemetry (Prometheus format)
DNS: Final = 53
HTTPS: Final = 443
RABBITMQ_AMQP: Final = 5672
RABBITMQ_EPMD: Final = 4369  # Erlang port mapper: how nodes find each other's dist port
RABBITMQ_DIST: Final = 25672  # Erlang distribution between broker nodes (clustering)
RABBITMQ_METRICS: Final = 15692  # the rabbitmq_prometheus plugin
