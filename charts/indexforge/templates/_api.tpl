{{/*
Environment of the API image: the API and the ingestion workers (`indexforge-api --worker`)
find their dependencies the same way (the operator's builders/api.py api_env).
*/}}

{{/* indexforge.apiEnv: YAML list text (dict root, spec, component). */}}
{{- define "indexforge.apiEnv" -}}
{{- $root := .root -}}
{{- $spec := .spec -}}
{{- $component := .component -}}
{{- $api := $spec.api -}}
{{- $redis := include "indexforge.fqdn" (dict "root" $root "service" (printf "%s-redis-app" $root.Release.Name)) -}}
{{- $stateRedis := include "indexforge.fqdn" (dict "root" $root "service" (printf "%s-redis-state" $root.Release.Name)) -}}
{{- /* max-age the API puts on search answers: how stale Kong's cache may be after an upload
or delete (Kong cannot be told to purge); 0 when nothing caches at the gateway. */ -}}
{{- $pc := $spec.gateway.proxyCache -}}
{{- $maxAge := 0 -}}
{{- /* Replicated state Redis: its primary as the sentinels name it (it moves with a failover). */ -}}
{{- $state := include "indexforge.env" (dict "name" "INDEXFORGE_STATE_REDIS_URL" "value" (printf "redis://%s:6379/0" $stateRedis)) -}}
{{- if $spec.redis.state.replication.enabled }}{{ $state = include "indexforge.stateClientEnv" (dict "root" $root "replication" $spec.redis.state.replication) }}{{ end -}}
{{- if and $spec.gateway.enabled $pc.enabled }}{{ $maxAge = min (int64 $pc.ttlSeconds) (int64 $api.cache.responseTtlSeconds) }}{{ end -}}
{{- $env := list
  (include "indexforge.commonEnv" (dict "root" $root "spec" $spec "component" $component "logLevel" $api.logLevel))
  (include "indexforge.env" (dict "name" "INDEXFORGE_REDIS_URL" "value" (printf "redis://%s:6379/0" $redis)))
  $state
  (include "indexforge.env" (dict "name" "INDEXFORGE_STATE_REDIS_PASSWORD_FILE" "value" "/var/run/indexforge/redis/redis-state"))
  (include "indexforge.env" (dict "name" "INDEXFORGE_WEAVIATE_URL" "value" (include "indexforge.url" (dict "root" $root "component" "weaviate" "port" 8080))))
  (include "indexforge.env" (dict "name" "INDEXFORGE_WEAVIATE_GRPC_PORT" "value" 50051))
  (include "indexforge.env" (dict "name" "INDEXFORGE_WEAVIATE_REPLICATION_FACTOR" "value" (include "indexforge.weaviateReplicationFactor" $spec.weaviate)))
  (include "indexforge.env" (dict "name" "INDEXFORGE_ML_URL" "value" (include "indexforge.url" (dict "root" $root "component" "ml" "port" 8080))))
  (include "indexforge.env" (dict "name" "INDEXFORGE_CACHE_RESPONSE_TTL_SECONDS" "value" (int64 $api.cache.responseTtlSeconds)))
  (include "indexforge.env" (dict "name" "INDEXFORGE_CACHE_SESSION_TTL_SECONDS" "value" (int64 $api.cache.sessionTtlSeconds)))
  (include "indexforge.env" (dict "name" "INDEXFORGE_RATE_LIMIT_WINDOW_SECONDS" "value" (int64 $api.cache.rateLimitWindowSeconds)))
  (include "indexforge.env" (dict "name" "INDEXFORGE_WEAVIATE_API_KEY_FILE" "value" "/var/run/indexforge/weaviate/api-key"))
  (include "indexforge.env" (dict "name" "INDEXFORGE_GATEWAY_AUTH_REQUIRED" "value" $spec.gateway.enabled))
  (include "indexforge.env" (dict "name" "INDEXFORGE_GATEWAY_CACHE_MAX_AGE_SECONDS" "value" $maxAge))
  (include "indexforge.env" (dict "name" "INDEXFORGE_MAX_UPLOAD_BYTES" "value" (mul (int64 $api.uploads.maxMegabytes) 1048576)))
  (include "indexforge.env" (dict "name" "INDEXFORGE_MAX_CONCURRENT_UPLOADS" "value" (int64 $api.uploads.maxConcurrent)))
-}}
{{- if $spec.excel.enabled }}
{{- $env = concat $env (list
  (include "indexforge.env" (dict "name" "INDEXFORGE_EXCEL_URL" "value" (include "indexforge.url" (dict "root" $root "component" "excel" "port" 8000))))
  (include "indexforge.env" (dict "name" "INDEXFORGE_EXCEL_MAX_UPLOAD_BYTES" "value" (mul (int64 $spec.excel.maxUploadMegabytes) 1048576)))
  (include "indexforge.env" (dict "name" "INDEXFORGE_EXCEL_MAX_ROWS" "value" (int64 $spec.excel.maxRows)))) -}}
{{- end -}}
{{- join "\n" $env -}}
{{- end -}}

{{/* indexforge.apiTmpSize: /tmp holds every upload being read at once, plus the usual 256Mi of scratch space (spec). */}}
{{- define "indexforge.apiTmpSize" -}}
{{- printf "%dMi" (add (mul (int64 .api.uploads.maxMegabytes) (int64 .api.uploads.maxConcurrent)) 256) -}}
{{- end -}}

{{/* indexforge.weaviateReplicationFactor: copies of each object in the collections the API
creates: weaviate.replicationFactor, else min(replicas, 3) (three survive one lost node under
QUORUM). */}}
{{- define "indexforge.weaviateReplicationFactor" -}}
{{- if hasKey . "replicationFactor" }}{{ int .replicationFactor }}{{ else }}{{ min (int .replicas) 3 }}{{ end -}}
{{- end -}}
