{{/*
The replicated state Redis (redis.state.replication), as the operator's
builders/redis_replication.py: the sentinels' addresses, the init step both the Redis and the
Sentinel pods run (files/redis-replication-init.sh, generated from the operator's INIT_SCRIPT:
it asks the sentinels for the current primary, ordinal 0 when none answers) and sentinel.conf.
*/}}

{{/* indexforge.podHost: a StatefulSet pod's DNS name (dict root, component, ordinal). */}}
{{- define "indexforge.podHost" -}}
{{- $name := include "indexforge.name" . -}}
{{- printf "%s-%d.%s" $name (int .ordinal) (include "indexforge.fqdn" (dict "root" .root "service" (printf "%s-headless" $name))) -}}
{{- end -}}

{{/* indexforge.sentinelAddresses: host:port of every Sentinel pod (dict root, replication). */}}
{{- define "indexforge.sentinelAddresses" -}}
{{- $out := list -}}
{{- range $i := until (int .replication.sentinels) -}}
{{- $out = append $out (printf "%s:26379" (include "indexforge.podHost" (dict "root" $.root "component" "sentinel" "ordinal" $i))) -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}

{{/* indexforge.stateClientEnv: what the API and workers get instead of the state Redis URL (dict root, replication). */}}
{{- define "indexforge.stateClientEnv" -}}
{{ include "indexforge.env" (dict "name" "INDEXFORGE_STATE_REDIS_SENTINELS" "value" (include "indexforge.sentinelAddresses" .)) }}
{{ include "indexforge.env" (dict "name" "INDEXFORGE_STATE_REDIS_MASTER" "value" "indexforge-state") }}
{{ include "indexforge.env" (dict "name" "INDEXFORGE_STATE_REDIS_WAIT_REPLICAS" "value" (int .replication.waitReplicas)) }}
{{- end -}}

{{/*
indexforge.redisInitContainer: the init step writing a pod's runtime config (dict root, redis
(the state instance), role ("redis" or "sentinel"), configDir, confIn, confOut, mounts (YAML)).
*/}}
{{- define "indexforge.redisInitContainer" -}}
{{- $rep := .redis.replication -}}
{{- $component := ternary "sentinel" "redis-state" (eq .role "sentinel") -}}
{{- $headless := include "indexforge.fqdn" (dict "root" .root "service" (printf "%s-headless" (include "indexforge.name" (dict "root" .root "component" $component)))) -}}
- name: init
  image: {{ .redis.image }}
  imagePullPolicy: {{ .redis.imagePullPolicy }}
  command:
    - sh
    - {{ .configDir }}/init.sh
    - {{ .role }}
  env:
    - name: POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    {{- include "indexforge.env" (dict "name" "ANNOUNCE_HOST" "value" (printf "$(POD_NAME).%s" $headless)) | nindent 4 }}
    {{- include "indexforge.env" (dict "name" "SENTINELS" "value" (include "indexforge.sentinelAddresses" (dict "root" .root "replication" $rep))) | nindent 4 }}
    {{- include "indexforge.env" (dict "name" "MASTER_NAME" "value" "indexforge-state") | nindent 4 }}
    {{- include "indexforge.env" (dict "name" "PRIMARY" "value" (printf "%s:6379" (include "indexforge.podHost" (dict "root" .root "component" "redis-state" "ordinal" 0)))) | nindent 4 }}
    {{- include "indexforge.env" (dict "name" "REDIS_PORT" "value" 6379) | nindent 4 }}
    {{- include "indexforge.env" (dict "name" "PRIMARY_WAIT_SECONDS" "value" 30) | nindent 4 }}
    {{- include "indexforge.internalEnv" (dict "root" .root "name" "REDISCLI_AUTH" "key" "redis-state-password") | nindent 4 }}
    {{- include "indexforge.env" (dict "name" "CONF_IN" "value" .confIn) | nindent 4 }}
    {{- include "indexforge.env" (dict "name" "CONF_OUT" "value" .confOut) | nindent 4 }}
  resources:
    {{- include "indexforge.resources" (dict "resources" $rep.sentinelResources) | nindent 4 }}
  securityContext:
    {{- include "indexforge.containerSecurity" . | nindent 4 }}
  volumeMounts:
    {{- .mounts | nindent 4 }}
{{- end -}}

{{/* indexforge.sentinelConf (dict root, replication): init.sh fills in the primary. */}}
{{- define "indexforge.sentinelConf" -}}
{{- $rep := .replication -}}
{{- $quorum := ternary (int $rep.quorum) (add (div (int $rep.sentinels) 2) 1) (hasKey $rep "quorum") -}}
# Rendered by the IndexForge operator for {{ .root.Release.Name }}/sentinel; do not edit.
# init.sh copies it to /data (Sentinel rewrites its config), naming the current primary
# and adding this pod's id, announced name and the password.
port 26379
bind 0.0.0.0
protected-mode no
daemonize no
dir /data
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel monitor indexforge-state @PRIMARY_HOST@ @PRIMARY_PORT@ {{ $quorum }}
sentinel down-after-milliseconds indexforge-state 5000
sentinel failover-timeout indexforge-state 10000
sentinel parallel-syncs indexforge-state 1
{{ end -}}
