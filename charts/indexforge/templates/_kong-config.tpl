{{/*
Kong's DB-less declarative configuration (kong.yml), as the operator's
builders/kong_config.py: routes /api/v1/ -> API and /api/v1/ml/ -> ML (Kong picks the longest
matching prefix), each service behind an upstream whose single target is the component's
headless Service, with active and passive health checks. Consumer keys are passed in
(dict root, gw, keys: username -> key); the result is JSON.
*/}}

{{- define "indexforge.kongHealthchecks" -}}
{{- $active := .upstream.active -}}
{{- $passive := .upstream.passive -}}
{{- /* Interval 0 switches a check off in Kong. */ -}}
{{- $interval := ternary (int $active.intervalSeconds) 0 $active.enabled -}}
{{- $on := $passive.enabled -}}
{{- $activeCfg := dict
  "type" "http" "http_path" $active.path "timeout" (int $active.timeoutSeconds) "concurrency" 10
  "healthy" (dict "interval" $interval "successes" (int $active.healthySuccesses) "http_statuses" (list 200 302))
  "unhealthy" (dict "interval" $interval "http_failures" (int $active.unhealthyFailures) "tcp_failures" (int $active.unhealthyFailures) "timeouts" (int $active.unhealthyFailures) "http_statuses" (list 429 404 500 501 502 503 504 505)) -}}
{{- $passiveCfg := dict
  "type" "http"
  "healthy" (dict "successes" (ternary (int $passive.healthySuccesses) 0 $on))
  "unhealthy" (dict "http_failures" (ternary (int $passive.unhealthyHttpFailures) 0 $on) "tcp_failures" (ternary (int $passive.unhealthyHttpFailures) 0 $on) "timeouts" (ternary (int $passive.unhealthyTimeouts) 0 $on) "http_statuses" (list 500 502 503 504)) -}}
{{- dict "active" $activeCfg "passive" $passiveCfg | toJson -}}
{{- end -}}

{{- define "indexforge.kongService" -}}
{{- $plugins := list -}}
{{- if .gw.rateLimiting.enabled -}}
{{- $plugins = append $plugins (dict "name" "rate-limiting" "config" (dict "minute" (int .perMinute) "policy" .gw.rateLimiting.policy "limit_by" "consumer" "fault_tolerant" true)) -}}
{{- end -}}
{{- $route := dict "name" .component "paths" (list .path) "strip_path" false "preserve_host" false "protocols" (list "http" "https") -}}
{{- dict "name" .component "protocol" "http" "host" (printf "%s.upstream" .component) "port" .port "connect_timeout" 5000 "read_timeout" 60000 "write_timeout" 60000 "retries" 2 "routes" (list $route) "plugins" $plugins | toJson -}}
{{- end -}}

{{- define "indexforge.kongUpstream" -}}
{{- $headless := include "indexforge.fqdn" (dict "root" .root "service" (printf "%s-%s-headless" .root.Release.Name .component)) -}}
{{- $health := include "indexforge.kongHealthchecks" .gw | fromJson -}}
{{- dict "name" (printf "%s.upstream" .component) "algorithm" .gw.upstream.algorithm "healthchecks" $health "targets" (list (dict "target" (printf "%s:%v" $headless .port) "weight" 100)) | toJson -}}
{{- end -}}

{{- define "indexforge.kongPlugins" -}}
{{- $gw := . -}}
{{- $out := list -}}
{{- if $gw.keyAuth.enabled -}}
{{- /* key_in_query off: keys in URLs end up in access logs. */ -}}
{{- $out = append $out (dict "name" "key-auth" "config" (dict "key_names" $gw.keyAuth.keyNames "hide_credentials" $gw.keyAuth.hideCredentials "key_in_header" true "key_in_query" false "key_in_body" false)) -}}
{{- end -}}
{{- if $gw.cors.enabled -}}
{{- $c := $gw.cors -}}
{{- $out = append $out (dict "name" "cors" "config" (dict "origins" $c.origins "methods" $c.methods "headers" $c.headers "exposed_headers" $c.exposedHeaders "credentials" $c.credentials "max_age" (int $c.maxAgeSeconds) "preflight_continue" false)) -}}
{{- end -}}
{{- if $gw.proxyCache.enabled -}}
{{- $pc := $gw.proxyCache -}}
{{- $codes := list -}}
{{- range $pc.responseCodes }}{{ $codes = append $codes (int .) }}{{ end -}}
{{- $out = append $out (dict "name" "proxy-cache" "config" (dict "strategy" $pc.strategy "content_type" $pc.contentTypes "cache_ttl" (int $pc.ttlSeconds) "request_method" $pc.requestMethods "response_code" $codes "memory" (dict "dictionary_name" "kong_db_cache"))) -}}
{{- end -}}
{{- if $gw.correlationId.enabled -}}
{{- $cid := $gw.correlationId -}}
{{- $out = append $out (dict "name" "correlation-id" "config" (dict "header_name" $cid.headerName "generator" $cid.generator "echo_downstream" $cid.echoDownstream)) -}}
{{- end -}}
{{- if $gw.ipRestriction.enabled -}}
{{- $ip := $gw.ipRestriction -}}
{{- $cfg := dict "status" 403 "message" "Forbidden" -}}
{{- with $ip.allow }}{{ $_ := set $cfg "allow" . }}{{ end -}}
{{- with $ip.deny }}{{ $_ := set $cfg "deny" . }}{{ end -}}
{{- $out = append $out (dict "name" "ip-restriction" "config" $cfg) -}}
{{- end -}}
{{- if $gw.botDetection.enabled -}}
{{- $out = append $out (dict "name" "bot-detection" "config" (dict "allow" (default list $gw.botDetection.allow) "deny" (default list $gw.botDetection.deny))) -}}
{{- end -}}
{{- /* per_consumer off: a consumer label would grow with every consumer. */ -}}
{{- $out = append $out (dict "name" "prometheus" "config" (dict "status_code_metrics" true "latency_metrics" true "bandwidth_metrics" true "upstream_health_metrics" true "per_consumer" false)) -}}
{{- toJson $out -}}
{{- end -}}

{{- define "indexforge.kongConfig" -}}
{{- $gw := .gw -}}
{{- $consumers := list -}}
{{- if $gw.keyAuth.enabled -}}
{{- range $gw.keyAuth.consumers -}}
{{- $consumers = append $consumers (dict "username" .username "keyauth_credentials" (list (dict "key" (index $.keys .username)))) -}}
{{- end -}}
{{- end -}}
{{- $services := list
  (include "indexforge.kongService" (dict "gw" $gw "component" "api" "path" $gw.routes.api "perMinute" $gw.rateLimiting.apiPerMinute "port" 8000) | fromJson)
  (include "indexforge.kongService" (dict "gw" $gw "component" "ml" "path" $gw.routes.ml "perMinute" $gw.rateLimiting.mlPerMinute "port" 8080) | fromJson) -}}
{{- $upstreams := list
  (include "indexforge.kongUpstream" (dict "root" .root "gw" $gw "component" "api" "port" 8000) | fromJson)
  (include "indexforge.kongUpstream" (dict "root" .root "gw" $gw "component" "ml" "port" 8080) | fromJson) -}}
{{- $plugins := include "indexforge.kongPlugins" $gw | fromJsonArray -}}
{{- dict "_format_version" "3.0" "_transform" true "services" $services "upstreams" $upstreams "consumers" $consumers "plugins" $plugins | toJson -}}
{{- end -}}
