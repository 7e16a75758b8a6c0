{{/*
What monitoring shares: the scrape targets (ServiceMonitors and the standalone Prometheus use
the same list) and the alert rules (one source for the PrometheusRule and the rule file), as
the operator's builders/targets.py and alerts.py. Results are JSON.
*/}}

{{/* indexforge.monitoringMode: PrometheusOperator when its CRDs exist, else Standalone (if enabled), else Disabled. */}}
{{- define "indexforge.monitoringMode" -}}
{{- if not .spec.monitoring.enabled -}}Disabled
{{- else if .root.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor" -}}PrometheusOperator
{{- else if .spec.monitoring.prometheus.enabled -}}Standalone
{{- else -}}Disabled
{{- end -}}
{{- end -}}

{{/* indexforge.scrapeTargets: pods behind a component's headless Service, scraped on a named port (dict spec, standalone). */}}
{{- define "indexforge.scrapeTargets" -}}
{{- $spec := .spec -}}
{{- /* The Python services' metrics listen apart from their serving port. */ -}}
{{- $out := list (dict "component" "api" "portName" "metrics" "port" 9102) (dict "component" "ml" "portName" "metrics" "port" 9102) -}}
{{- if $spec.excel.enabled }}{{ $out = append $out (dict "component" "excel" "portName" "metrics" "port" 9102) }}{{ end -}}
{{- if $spec.gateway.enabled }}{{ $out = append $out (dict "component" "gateway" "portName" "status" "port" 8100) }}{{ end -}}
{{- if $spec.redis.app.exporter.enabled }}{{ $out = append $out (dict "component" "redis-app" "portName" "metrics" "port" 9121) }}{{ end -}}
{{- if $spec.redis.ml.exporter.enabled }}{{ $out = append $out (dict "component" "redis-ml" "portName" "metrics" "port" 9121) }}{{ end -}}
{{- if $spec.redis.state.exporter.enabled }}{{ $out = append $out (dict "component" "redis-state" "portName" "metrics" "port" 9121) }}{{ end -}}
{{- $out = append $out (dict "component" "weaviate" "portName" "metrics" "port" 2112) -}}
{{- /* Spans refused or dropped by the collector show up only in Jaeger's own metrics. */ -}}
{{- if and $spec.monitoring.enabled $spec.monitoring.jaeger.enabled }}{{ $out = append $out (dict "component" "jaeger" "portName" "metrics" "port" 8888) }}{{ end -}}
{{- /* standalone: the Alertmanager this chart deploys in that mode (failed notifications show up only in its metrics). */ -}}
{{- if and .standalone $spec.monitoring.enabled $spec.monitoring.alertmanager.enabled }}{{ $out = append $out (dict "component" "alertmanager" "portName" "http" "port" 9093) }}{{ end -}}
{{- if $spec.messaging.enabled -}}
{{- $out = append $out (dict "component" "worker" "portName" "metrics" "port" 9102) -}}
{{- /* The cluster operator's brokers are scraped the way its docs describe. */ -}}
{{- if not (include "indexforge.usesClusterOperator" $spec) }}{{ $out = append $out (dict "component" "rabbitmq" "portName" "metrics" "port" 15692) }}{{ end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* indexforge.decimal: shortest decimal text of a number (no exponent, no float noise). */}}
{{- define "indexforge.decimal" -}}
{{- printf "%.10f" (float64 .) | trimSuffix "0" | trimSuffix "0" | trimSuffix "0" | trimSuffix "0" | trimSuffix "0" | trimSuffix "0" | trimSuffix "0" | trimSuffix "0" | trimSuffix "0" | trimSuffix "0" | trimSuffix "." -}}
{{- end -}}

{{/* indexforge.limitTerms: "(series / limit)" per component with a limit on `resource` (dict root, spec, resource, series with SEL placeholder). */}}
{{- define "indexforge.limitTerms" -}}
{{- $spec := .spec -}}
{{- $limited := list (list "api" $spec.api.resources) (list "ml" $spec.ml.resources) -}}
{{- if $spec.excel.enabled }}{{ $limited = append $limited (list "excel" $spec.excel.resources) }}{{ end -}}
{{- $limited = append $limited (list "weaviate" $spec.weaviate.resources) -}}
{{- $terms := list -}}
{{- range $limited -}}
{{- $limits := (index . 1).limits | default dict -}}
{{- if hasKey $limits $.resource -}}
{{- $sel := include "indexforge.matcher" (dict "root" $.root "extra" (dict "component" (index . 0))) -}}
{{- $terms = append $terms (printf "(%s / %s)" (replace "SEL" $sel $.series) (include "indexforge.number" (index $limits $.resource))) -}}
{{- end -}}
{{- end -}}
{{- join " or " $terms -}}
{{- end -}}

{{/* indexforge.ruleGroups: Prometheus rule groups (dict root, spec, standalone): the alerts (when on), then the SLO groups. */}}
{{- define "indexforge.ruleGroups" -}}
{{- $groups := include "indexforge.alertGroups" . | fromJsonArray -}}
{{- $groups = concat $groups (include "indexforge.sloGroups" . | fromJsonArray) -}}
{{- toJson $groups -}}
{{- end -}}

{{/*
indexforge.sloGroups: SLO recording rules and burn-rate alerts (dict root, spec), generated
from the operator's slo.py into files/monitoring/slo-rules.json (hack/monitoring_files.py)
with placeholders filled here. Recorded even when alerts are off (the SLO dashboard reads them).
*/}}
{{- define "indexforge.sloGroups" -}}
{{- $mon := .spec.monitoring -}}
{{- $groups := list -}}
{{- if and $mon.enabled $mon.slo.enabled -}}
{{- $slo := $mon.slo -}}
{{- $base := regexReplaceAll "/+$" $mon.alerts.runbookBaseUrl "" | toJson | trimPrefix "\"" | trimSuffix "\"" -}}
{{- $text := .root.Files.Get "files/monitoring/slo-rules.json" | replace "__NAMESPACE__" .root.Release.Namespace | replace "__INSTANCE__" .root.Release.Name | replace "__RUNBOOK_BASE__" $base -}}
{{- $text = $text | replace "__OBJECTIVE_SERVICES_AVAILABILITY__" (include "indexforge.decimal" (divf $slo.services.availabilityPercent 100)) | replace "__OBJECTIVE_SERVICES_LATENCY__" (include "indexforge.decimal" (divf $slo.services.latencyPercent 100)) -}}
{{- $text = $text | replace "__OBJECTIVE_GATEWAY_AVAILABILITY__" (include "indexforge.decimal" (divf $slo.gateway.availabilityPercent 100)) | replace "__OBJECTIVE_GATEWAY_LATENCY__" (include "indexforge.decimal" (divf $slo.gateway.latencyPercent 100)) -}}
{{- $families := $text | fromJson -}}
{{- $names := list "services" -}}
{{- if .spec.gateway.enabled }}{{ $names = append $names "gateway" }}{{ end -}}
{{- range $names -}}
{{- $f := index $families . -}}
{{- $rules := $f.records -}}
{{- if $mon.alerts.enabled }}{{ $rules = concat $rules $f.alerts }}{{ end -}}
{{- $groups = append $groups (dict "name" $f.name "rules" $rules) -}}
{{- end -}}
{{- end -}}
{{- toJson $groups -}}
{{- end -}}

{{/* indexforge.alertGroups: the alert group (dict root, spec, standalone); [] when alerts are off. */}}
{{- define "indexforge.alertGroups" -}}
{{- $spec := .spec -}}
{{- $cfg := $spec.monitoring.alerts -}}
{{- if not (and $spec.monitoring.enabled $cfg.enabled) -}}
[]
{{- else -}}
{{- $by := "indexforge_namespace, indexforge_instance, component" -}}
{{- $http := include "indexforge.matcher" (dict "root" .root "extra" (dict "component" "api|ml|excel")) -}}
{{- $errors := include "indexforge.matcher" (dict "root" .root "extra" (dict "component" "api|ml|excel" "status" "5..")) -}}
{{- $every := include "indexforge.matcher" (dict "root" .root) -}}
{{- $errorRatio := include "indexforge.decimal" (divf $cfg.errorRatePercent 100) -}}
{{- $latency := include "indexforge.decimal" (divf $cfg.latencyP95Milliseconds 1000) -}}
{{- $memory := include "indexforge.decimal" (divf $cfg.memoryPercent 100) -}}
{{- $cpu := include "indexforge.decimal" (divf $cfg.cpuPercent 100) -}}
{{- $alerts := list -}}
{{- $alerts = append $alerts (list "IndexForgeHighErrorRate"
  (printf "sum by (%s) (rate(http_requests_total%s[5m]))\n  / sum by (%s) (rate(http_requests_total%s[5m]))\n  > %s" $by $errors $by $http $errorRatio)
  "critical" "{{ $labels.component }} answers too many requests with 5xx"
  (printf "More than %s%% of requests to {{ $labels.component }} failed with a 5xx status over the last 5m." (printf "%.6g" (float64 $cfg.errorRatePercent)))) -}}
{{- $alerts = append $alerts (list "IndexForgeHighLatencyP95"
  (printf "histogram_quantile(0.95, sum by (%s, le) (rate(http_request_duration_seconds_bucket%s[5m])))\n  > %s" $by $http $latency)
  "warning" "{{ $labels.component }} p95 latency is high"
  (printf "95th percentile latency of {{ $labels.component }} is above %d ms." (int $cfg.latencyP95Milliseconds))) -}}
{{- $mem := include "indexforge.limitTerms" (dict "root" .root "spec" $spec "resource" "memory" "series" "process_resident_memory_bytesSEL") -}}
{{- if $mem -}}
{{- $alerts = append $alerts (list "IndexForgeHighMemory" (printf "(%s)\n  > %s" $mem $memory)
  "warning" "{{ $labels.component }} is close to its memory limit"
  (printf "{{ $labels.component }} uses more than %d%% of its memory limit; it will be OOM-killed when it reaches it." (int $cfg.memoryPercent))) -}}
{{- end -}}
{{- $cpuTerms := include "indexforge.limitTerms" (dict "root" .root "spec" $spec "resource" "cpu" "series" "rate(process_cpu_seconds_totalSEL[5m])") -}}
{{- if $cpuTerms -}}
{{- $alerts = append $alerts (list "IndexForgeHighCPU" (printf "(%s)\n  > %s" $cpuTerms $cpu)
  "warning" "{{ $labels.component }} is close to its CPU limit"
  (printf "{{ $labels.component }} uses more than %d%% of its CPU limit and is being throttled." (int $cfg.cpuPercent))) -}}
{{- end -}}
{{- $alerts = append $alerts (list "IndexForgeRedisMemoryHigh"
  (printf "(redis_memory_used_bytes%s / (redis_memory_max_bytes%s > 0))\n  > %s" $every $every $memory)
  "warning" "{{ $labels.component }} is close to maxmemory"
  (printf "{{ $labels.component }} holds more than %d%% of its maxmemory; eviction is about to start or has started." (int $cfg.memoryPercent))) -}}
{{- if and .standalone $spec.monitoring.alertmanager.enabled -}}
{{- /* Alerts that cannot be delivered are silent: watch the deliverer itself. */ -}}
{{- $am := include "indexforge.matcher" (dict "root" .root "extra" (dict "component" "alertmanager")) -}}
{{- $alerts = append $alerts (list "IndexForgeAlertmanagerNotificationsFailing"
  (printf "sum by (%s, integration) (rate(alertmanager_notifications_failed_total%s[5m]))\n  > 0" $by $am)
  "critical" "Alertmanager fails to send notifications via {{ $labels.integration }}"
  "Alertmanager could not deliver notifications through the {{ $labels.integration }} integration over the last 5m; alerts may reach no one.") -}}
{{- end -}}
{{- /* Ingestion (the built-in broker's own metrics, per queue; the operator's
       messaging_alerts.py). The cluster operator's brokers are not this instance's targets. */ -}}
{{- if and $spec.messaging.enabled (not (include "indexforge.usesClusterOperator" $spec)) -}}
{{- $ingest := include "indexforge.matcher" (dict "root" .root "extra" (dict "component" "rabbitmq" "queue" "indexforge.ingest")) -}}
{{- $dead := include "indexforge.matcher" (dict "root" .root "extra" (dict "component" "rabbitmq" "queue" "indexforge.ingest.dead")) -}}
{{- $outcomes := include "indexforge.matcher" (dict "root" .root "extra" (dict "component" "rabbitmq" "queue" "indexforge.jobs")) -}}
{{- $nodes := include "indexforge.matcher" (dict "root" .root "extra" (dict "component" "rabbitmq")) -}}
{{- /* Workers at their maximum, each with its target backlog: more than this waits. */ -}}
{{- $backlog := mul (int64 $spec.messaging.workers.maxReplicas) (int64 $spec.messaging.workers.messagesPerWorker) -}}
{{- $alerts = append $alerts (list "IndexForgeIngestDeadLetters"
  (printf "sum by (%s) (rabbitmq_queue_messages%s) > 0" $by $dead)
  "warning" "ingestion jobs are in the dead-letter queue"
  "Messages are in indexforge.ingest.dead: invalid messages or jobs that ran out of attempts; their uploads were not indexed.") -}}
{{- $alerts = append $alerts (list "IndexForgeIngestBacklog"
  (printf "sum by (%s) (rabbitmq_queue_messages_ready%s) > %d" $by $ingest $backlog)
  "warning" "ingestion is falling behind"
  (printf "More than %d uploads wait in indexforge.ingest (maxReplicas x messagesPerWorker): the workers at their maximum cannot keep up." $backlog)) -}}
{{- $alerts = append $alerts (list "IndexForgeIngestNoConsumers"
  (printf "(sum by (%s) (rabbitmq_queue_messages_ready%s) > 0)\n  and (sum by (%s) (rabbitmq_queue_consumers%s) == 0)" $by $ingest $by $ingest)
  "critical" "uploads wait but no worker consumes them"
  "Messages wait in indexforge.ingest and no worker is connected: uploads are accepted (202) but never indexed.") -}}
{{- $alerts = append $alerts (list "IndexForgeJobOutcomesNotRecorded"
  (printf "(sum by (%s) (rabbitmq_queue_messages_ready%s) > 0)\n  and (sum by (%s) (rabbitmq_queue_consumers%s) == 0)" $by $outcomes $by $outcomes)
  "warning" "finished jobs are not recorded"
  "Job outcomes wait in indexforge.jobs and no job projection consumes them: jobs that finished still read queued or processing.") -}}
{{- $alerts = append $alerts (list "IndexForgeRabbitMQResourceAlarm"
  (printf "max by (%s) (rabbitmq_alarms_memory_used_watermark%s + rabbitmq_alarms_free_disk_space_watermark%s) > 0" $by $nodes $nodes)
  "critical" "RabbitMQ blocks publishers (memory or disk alarm)"
  "A broker node raised its memory or free-disk alarm: publishers are blocked and uploads answer 503 until it clears.") -}}
{{- end -}}
{{- $alerts = append $alerts (list "IndexForgeTargetDown" (printf "up%s == 0" $every)
  "warning" "{{ $labels.component }} metrics endpoint is down"
  "Prometheus cannot scrape {{ $labels.component }} ({{ $labels.instance }}).") -}}
{{- $base := regexReplaceAll "/+$" $cfg.runbookBaseUrl "" -}}
{{- $rules := list -}}
{{- range $alerts -}}
{{- $rules = append $rules (dict "alert" (index . 0) "expr" (index . 1) "for" $cfg.forDuration "labels" (dict "severity" (index . 2) "namespace" $.root.Release.Namespace) "annotations" (dict "summary" (index . 3) "description" (index . 4) "runbook_url" (printf "%s/%s.md" $base (index . 0)))) -}}
{{- end -}}
{{- list (dict "name" (printf "indexforge.%s.%s" .root.Release.Namespace .root.Release.Name) "rules" $rules) | toJson -}}
{{- end -}}
{{- end -}}
