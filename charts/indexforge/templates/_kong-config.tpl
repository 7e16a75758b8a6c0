{{/*
Kong's DB-less declarative configuration (kong.yml), as the operator's
builders/kong_config.py: routes /api/v1/ -> API and /api/v1/ml/ -> ML (Kong picks the longest
matching prefix), each service behind an upstream whose single target is the component's
headless Service, with active and passive health checks. Search has its own route, the only
one proxy-cache runs on. Kong adds the instance's gateway token to every proxied request (the
services reject requests without it). The secret values are passed in as `creds`
(keys: username -> consumer key, token: the gateway token Kong sends, redisPassword: of the
app Redis, for shared rate-limit counters): the values themselves, or references to them
(credentials.existingSecret, see gateway.yaml). Input: dict root, gw, creds; the result is JSON.
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

{{- /* indexforge.kongRateLimiting (dict root, gw, perMinute, creds). */ -}}
{{- define "indexforge.kongRateLimiting" -}}
{{- $rl := .gw.rateLimiting -}}
{{- /* fault_tolerant: Redis down, serve rather than fail every request. */ -}}
{{- $config := dict "minute" (int .perMinute) "policy" $rl.policy "limit_by" "consumer" "fault_tolerant" true -}}
{{- if eq $rl.policy "redis" -}}
{{- /* Database 2: the API uses db 0 and Excel db 1 of the app Redis. */ -}}
{{- $host := include "indexforge.fqdn" (dict "root" .root "service" (printf "%s-redis-app" .root.Release.Name)) -}}
{{- $_ := set $config "redis" (dict "host" $host "port" 6379 "password" .creds.redisPassword "database" 2 "timeout" 2000) -}}
{{- end -}}
{{- dict "name" "rate-limiting" "config" $config | toJson -}}
{{- end -}}

{{- /* indexforge.kongProxyCache (gw): on the search route; the API's Cache-Control decides per response. */ -}}
{{- define "indexforge.kongProxyCache" -}}
{{- $pc := .proxyCache -}}
{{- $codes := list -}}
{{- range $pc.responseCodes }}{{ $codes = append $codes (int .) }}{{ end -}}
{{- dict "name" "proxy-cache" "config" (dict "strategy" $pc.strategy "content_type" $pc.contentTypes "cache_ttl" (int $pc.ttlSeconds) "cache_control" true "request_method" $pc.requestMethods "response_code" $codes "memory" (dict "dictionary_name" "kong_db_cache")) | toJson -}}
{{- end -}}

{{- /* indexforge.kongRoute (dict name, path[, plugins]). */ -}}
{{- define "indexforge.kongRoute" -}}
{{- /* strip_path off: the services serve under the same prefixes. */ -}}
{{- $route := dict "name" .name "paths" (list .path) "strip_path" false "preserve_host" false "protocols" (list "http" "https") -}}
{{- with .plugins }}{{ $_ := set $route "plugins" . }}{{ end -}}
{{- toJson $route -}}
{{- end -}}

{{- define "indexforge.kongService" -}}
{{- $plugins := list -}}
{{- if .gw.rateLimiting.enabled -}}
{{- $plugins = append $plugins (include "indexforge.kongRateLimiting" . | fromJson) -}}
{{- end -}}
{{- $routes := list (include "indexforge.kongRoute" (dict "name" .component "path" .path) | fromJson) -}}
{{- if and (eq .component "api") .gw.proxyCache.enabled -}}
{{- $cache := include "indexforge.kongProxyCache" .gw | fromJson -}}
{{- $routes = append $routes (include "indexforge.kongRoute" (dict "name" "api-search" "path" (printf "%ssearch" .path) "plugins" (list $cache)) | fromJson) -}}
{{- end -}}
{{- dict "name" .component "protocol" "http" "host" (printf "%s.upstream" .component) "port" .port "connect_timeout" 5000 "read_timeout" 60000 "write_timeout" 60000 "retries" 2 "routes" $routes "plugins" $plugins | toJson -}}
{{- end -}}

{{- define "indexforge.kongUpstream" -}}
{{- $headless := include "indexforge.fqdn" (dict "root" .root "service" (printf "%s-%s-headless" .root.Release.Name .component)) -}}
{{- $health := include "indexforge.kongHealthchecks" .gw | fromJson -}}
{{- dict "name" (printf "%s.upstream" .component) "algorithm" .gw.upstream.algorithm "healthchecks" $health "targets" (list (dict "target" (printf "%s:%v" $headless .port) "weight" 100)) | toJson -}}
{{- end -}}

{{- define "indexforge.kongPlugins" -}}
{{- $gw := .gw -}}
{{- /* Removes whatever the client sent, then adds the current token (remove runs first).
Without key-auth a client could also send the consumer headers key-auth sets. */ -}}
{{- $tokenHeader := "X-IndexForge-Gateway-Token" -}}
{{- $remove := list $tokenHeader -}}
{{- if not $gw.keyAuth.enabled }}{{ $remove = concat $remove (list "X-Consumer-ID" "X-Consumer-Username" "X-Consumer-Custom-ID") }}{{ end -}}
{{- $out := list (dict "name" "request-transformer" "config" (dict "remove" (dict "headers" $remove) "add" (dict "headers" (list (printf "%s:%s" $tokenHeader .creds.token))))) -}}
{{- if $gw.keyAuth.enabled -}}
{{- /* key_in_query off: keys in URLs end up in access logs. */ -}}
{{- $out = append $out (dict "name" "key-auth" "config" (dict "key_names" $gw.keyAuth.keyNames "hide_credentials" $gw.keyAuth.hideCredentials "key_in_header" true "key_in_query" false "key_in_body" false)) -}}
{{- end -}}
{{- if $gw.cors.enabled -}}
{{- $c := $gw.cors -}}
{{- $out = append $out (dict "name" "cors" "config" (dict "origins" $c.origins "methods" $c.methods "headers" $c.headers "exposed_headers" $c.exposedHeaders "credentials" $c.credentials "max_age" (int $c.maxAgeSeconds) "preflight_continue" false)) -}}
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
{{- $consumers = append $consumers (dict "username" .username "keyauth_credentials" (list (dict "key" (index $.creds.keys .username)))) -}}
{{- end -}}
{{- end -}}
{{- $services := list
  (include "indexforge.kongService" (dict "root" .root "gw" $gw "creds" .creds "component" "api" "path" $gw.routes.api "perMinute" $gw.rateLimiting.apiPerMinute "port" 8000) | fromJson)
  (include "indexforge.kongService" (dict "root" .root "gw" $gw "creds" .creds "component" "ml" "path" $gw.routes.ml "perMinute" $gw.rateLimiting.mlPerMinute "port" 8080) | fromJson) -}}
{{- $upstreams := list
  (include "indexforge.kongUpstream" (dict "root" .root "gw" $gw "component" "api" "port" 8000) | fromJson)
  (include "indexforge.kongUpstream" (dict "root" .root "gw" $gw "component" "ml" "port" 8080) | fromJson) -}}
{{- $plugins := include "indexforge.kongPlugins" (dict "gw" $gw "creds" .creds) | fromJsonArray -}}
{{- dict "_format_version" "3.0" "_transform" true "services" $services "upstreams" $upstreams "consumers" $consumers "plugins" $plugins | toJson -}}
{{- end -}}
