{{/*
Event-driven ingestion (spec.messaging): what the broker, the workers and the API share, as the
operator's decisions.py (resolve_integrations, check_integrations), builders/queue_env.py and
builders/rabbitmq.py. The objects themselves are in rabbitmq.yaml and workers.yaml.

Optional integrations switch on by detection, like the monitoring mode: `auto` picks the
RabbitMQ cluster operator when `rabbitmq.com/v1beta1/RabbitmqCluster` is served and KEDA when
`keda.sh/v1alpha1/ScaledObject` is (`helm template` learns them from `--api-versions`).
*/}}

{{- define "indexforge.rabbitmqClusterApi" -}}rabbitmq.com/v1beta1/RabbitmqCluster{{- end -}}
{{- define "indexforge.kedaApi" -}}keda.sh/v1alpha1/ScaledObject{{- end -}}
{{- define "indexforge.rabbitmqTopologyApi" -}}rabbitmq.com/v1beta1/Queue{{- end -}}

{{/*
indexforge.resolveIntegrations: sets messaging.provider and messaging.workers.scaler of the
defaulted spec (dict root, spec; changed in place) from the cluster's APIs when they are auto.
*/}}
{{- define "indexforge.resolveIntegrations" -}}
{{- $m := .spec.messaging -}}
{{- $apis := .root.Capabilities.APIVersions -}}
{{- if eq $m.provider "auto" -}}
{{- $_ := set $m "provider" (ternary "rabbitmqClusterOperator" "builtin" ($apis.Has (include "indexforge.rabbitmqClusterApi" .))) -}}
{{- end -}}
{{- if eq $m.topology "auto" -}}
{{- $withOperator := and ($apis.Has (include "indexforge.rabbitmqTopologyApi" .)) (eq $m.provider "rabbitmqClusterOperator") -}}
{{- $_ := set $m "topology" (ternary "topologyOperator" "services" $withOperator) -}}
{{- end -}}
{{- if eq $m.workers.scaler "auto" -}}
{{- $_ := set $m.workers "scaler" (ternary "keda" "hpa" ($apis.Has (include "indexforge.kedaApi" .))) -}}
{{- end -}}
{{- include "indexforge.resolveMesh" . -}}
{{- end -}}

{{/* indexforge.usesClusterOperator: "true" when the broker is a RabbitmqCluster (spec resolved). */}}
{{- define "indexforge.usesClusterOperator" -}}
{{- if and .messaging.enabled (eq .messaging.provider "rabbitmqClusterOperator") }}true{{ end -}}
{{- end -}}

{{/* indexforge.usesTopologyOperator: "true" when the topology operator's objects and application user are used (spec resolved). */}}
{{- define "indexforge.usesTopologyOperator" -}}
{{- if and (include "indexforge.usesClusterOperator" .) (eq .messaging.topology "topologyOperator") }}true{{ end -}}
{{- end -}}

{{/*
indexforge.checkIntegrations: a forced integration whose CRD is not served fails the release
with decisions.check_integrations' messages (the operator leaves those objects out and reports
Degraded; a chart has no status to report on).
*/}}
{{- define "indexforge.checkIntegrations" -}}
{{- $spec := include "indexforge.spec" . | fromJson -}}
{{- $m := $spec.messaging -}}
{{- $found := list -}}
{{- if and (eq $spec.mesh.mode "istio") (not (.Capabilities.APIVersions.Has (include "indexforge.istioApi" .))) -}}
{{- $found = append $found "IstioCRDMissing: mesh.mode is istio but the peerauthentications.security.istio.io CRD is not installed: install Istio or set mesh.mode auto" -}}
{{- end -}}
{{- if $m.enabled -}}
{{- if and (eq $m.provider "rabbitmqClusterOperator") (not (.Capabilities.APIVersions.Has (include "indexforge.rabbitmqClusterApi" .))) -}}
{{- $found = append $found "RabbitmqClusterCRDMissing: messaging.provider is rabbitmqClusterOperator but the rabbitmqclusters.rabbitmq.com CRD is not installed: install the RabbitMQ cluster operator or set provider auto" -}}
{{- end -}}
{{- if eq $m.topology "topologyOperator" -}}
{{- if not (.Capabilities.APIVersions.Has (include "indexforge.rabbitmqTopologyApi" .)) -}}
{{- $found = append $found "RabbitmqTopologyCRDMissing: messaging.topology is topologyOperator but the queues.rabbitmq.com CRD is not installed: install the RabbitMQ messaging topology operator or set topology auto" -}}
{{- end -}}
{{- if eq $m.provider "builtin" -}}{{- /* resolved: auto without the cluster operator is builtin */ -}}
{{- $found = append $found "RabbitmqTopologyNeedsClusterOperator: messaging.topology is topologyOperator but the broker is the built-in StatefulSet: the topology operator manages RabbitmqClusters only; use provider rabbitmqClusterOperator or topology auto" -}}
{{- end -}}
{{- end -}}
{{- if and (eq $m.workers.scaler "keda") (not (.Capabilities.APIVersions.Has (include "indexforge.kedaApi" .))) -}}
{{- $found = append $found "KedaCRDMissing: messaging.workers.scaler is keda but the scaledobjects.keda.sh CRD is not installed: install KEDA or set scaler auto" -}}
{{- end -}}
{{- end -}}
{{- if $found }}{{ fail (printf "missing integration:\n  - %s" (join "\n  - " $found)) }}{{ end -}}
{{- end -}}

{{/*
indexforge.brokerSecret: where the broker user's name and password are, as JSON {"name",
"usernameKey", "passwordKey"} (dict root, spec): the internal credentials for the built-in
broker, the cluster operator's `<release>-rabbitmq-default-user` for a RabbitmqCluster.
*/}}
{{- define "indexforge.brokerSecret" -}}
{{- if include "indexforge.usesTopologyOperator" .spec -}}
{{- dict "name" (printf "%s-rabbitmq-app-user" .root.Release.Name) "usernameKey" "username" "passwordKey" "password" | toJson -}}
{{- else if include "indexforge.usesClusterOperator" .spec -}}
{{- dict "name" (printf "%s-rabbitmq-default-user" .root.Release.Name) "usernameKey" "username" "passwordKey" "password" | toJson -}}
{{- else -}}
{{- dict "name" (include "indexforge.internalAuthSecret" .root) "usernameKey" "rabbitmq-username" "passwordKey" "rabbitmq-password" | toJson -}}
{{- end -}}
{{- end -}}

{{/* indexforge.brokerHost: host:port of the broker's client Service (root). */}}
{{- define "indexforge.brokerHost" -}}
{{- printf "%s:5672" (include "indexforge.fqdn" (dict "root" . "service" (printf "%s-rabbitmq" .Release.Name))) -}}
{{- end -}}

{{/*
indexforge.queueEnv: what the API and the workers need to publish and consume (dict root,
spec). The kubelet assembles the AMQP URL from the two Secret variables before it ($(VAR)
expansion), so no URL with a password is stored. The prefix is explicit so the scaler's queue
name and the workers' cannot drift apart.
*/}}
{{- define "indexforge.queueEnv" -}}
{{- $secret := include "indexforge.brokerSecret" . | fromJson -}}
{{- $workers := .spec.messaging.workers -}}
{{ include "indexforge.secretEnv" (dict "name" "AMQP_USERNAME" "secret" $secret.name "key" $secret.usernameKey) }}
{{ include "indexforge.secretEnv" (dict "name" "AMQP_PASSWORD" "secret" $secret.name "key" $secret.passwordKey) }}
{{ include "indexforge.env" (dict "name" "INDEXFORGE_AMQP_URL" "value" (printf "amqp://$(AMQP_USERNAME):$(AMQP_PASSWORD)@%s/" (include "indexforge.brokerHost" .root))) }}
{{ include "indexforge.env" (dict "name" "INDEXFORGE_INGEST_MODE" "value" "queue") }}
{{ include "indexforge.env" (dict "name" "INDEXFORGE_QUEUE_PREFIX" "value" "indexforge") }}
{{ include "indexforge.env" (dict "name" "INDEXFORGE_QUEUE_PREFETCH" "value" (int64 $workers.prefetch)) }}
{{ include "indexforge.env" (dict "name" "INDEXFORGE_QUEUE_MAX_ATTEMPTS" "value" (int64 $workers.maxAttempts)) }}
{{ include "indexforge.env" (dict "name" "INDEXFORGE_QUEUE_RETRY_BASE_SECONDS" "value" "2.0") }}
{{ include "indexforge.env" (dict "name" "INDEXFORGE_QUEUE_RETRY_MAX_SECONDS" "value" "300.0") }}
{{- end -}}

{{/* indexforge.bytes: a quantity as whole bytes, truncated (the operator's int(parse_quantity())). */}}
{{- define "indexforge.bytes" -}}
{{- $n := include "indexforge.number" . -}}
{{- if contains "." $n }}{{ floor (float64 $n) | int64 }}{{ else }}{{ $n }}{{ end -}}
{{- end -}}

{{/*
indexforge.rabbitmqConf: rabbitmq.conf of every built-in node (dict root, spec). Nodes find
each other by name (classic_config: a StatefulSet's pod names are known in advance, so no node
needs RBAC for peer discovery); long names under the headless Service.
*/}}
{{- define "indexforge.rabbitmqConf" -}}
{{- $rabbit := .spec.messaging.rabbitmq -}}
{{- $name := printf "%s-rabbitmq" .root.Release.Name -}}
{{- $domain := include "indexforge.fqdn" (dict "root" .root "service" (printf "%s-headless" $name)) -}}
listeners.tcp.default = 5672
prometheus.tcp.port = 15692
{{- /* Per-queue series (a handful of queues): the alerts watch the ingest queue and the DLQ. */}}
prometheus.return_per_object_metrics = true
cluster_formation.peer_discovery_backend = classic_config
{{- range $i := until (int $rabbit.replicas) }}
cluster_formation.classic_config.nodes.{{ add1 $i }} = rabbit@{{ $name }}-{{ $i }}.{{ $domain }}
{{- end }}
cluster_partition_handling = pause_minority
log.console = true
log.console.level = info
log.file = false
loopback_users.guest = true
{{- with ($rabbit.resources.limits | default dict).memory }}
total_memory_available_override_value = {{ include "indexforge.bytes" . }}
{{- end }}
vm_memory_high_watermark.relative = 0.6
{{- if $rabbit.persistence.enabled }}
disk_free_limit.absolute = {{ min (div (int64 (include "indexforge.bytes" $rabbit.persistence.size)) 10) 2147483648 }}
{{- end }}
{{ end -}}

{{/* indexforge.rabbitmqAuthConf: conf.d file of the default user (password); read when a node creates its database. */}}
{{- define "indexforge.rabbitmqAuthConf" -}}
{{- printf "default_user = indexforge\ndefault_pass = %s\ndefault_permissions.configure = .*\ndefault_permissions.read = .*\ndefault_permissions.write = .*\n" . -}}
{{- end -}}
