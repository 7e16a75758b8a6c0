{{/*
Generated credentials: Kong consumer keys, the Grafana admin password and the internal
credentials of every hop (gateway tokens, Redis passwords, the Weaviate API key, RabbitMQ's
default user and Erlang cookie), as the
operator's generated.py and builders/credentials.py.

Two modes (chart-only value `credentials.existingSecret`):
* unset: the chart generates the values into its own Secrets (<release>-gateway-consumers,
  <release>-grafana-admin, <release>-internal-auth). `lookup` keeps what a previous release
  stored, so `helm install/upgrade` never rotates them; `helm template` (GitOps renderers,
  no cluster access) has nothing to look up and generates fresh values on every render.
* set: the user created that Secret beforehand (`indexforge credentials`), the chart renders
  no secret value at all and every reference points at it, so the output is stable across
  renders. Its keys: the internal-auth ones, gateway-token (the token Kong sends),
  consumer-<username>, grafana-admin-password (values.yaml documents them; `indexforge
  credentials` writes them; tests/charts/test_credentials.py checks the two agree).
*/}}

{{/* indexforge.existingSecret: name of the pre-created credentials Secret, or "". */}}
{{- define "indexforge.existingSecret" -}}
{{- (.Values.credentials | default dict).existingSecret | default "" -}}
{{- end -}}

{{/* indexforge.internalAuthSecret: the Secret holding the internal credentials. */}}
{{- define "indexforge.internalAuthSecret" -}}
{{- include "indexforge.existingSecret" . | default (printf "%s-internal-auth" .Release.Name) -}}
{{- end -}}

{{/*
indexforge.consumerKeyRef: where a consumer's key is (dict root, username), as JSON
{"name", "key"}: <release>-gateway-consumers/<username>, or <existingSecret>/consumer-<username>.
*/}}
{{- define "indexforge.consumerKeyRef" -}}
{{- $existing := include "indexforge.existingSecret" .root -}}
{{- if $existing -}}
{{- dict "name" $existing "key" (printf "consumer-%s" .username) | toJson -}}
{{- else -}}
{{- dict "name" (printf "%s-gateway-consumers" .root.Release.Name) "key" .username | toJson -}}
{{- end -}}
{{- end -}}

{{/* indexforge.grafanaPasswordRef: where the Grafana admin password is, as JSON {"name", "key"}. */}}
{{- define "indexforge.grafanaPasswordRef" -}}
{{- $existing := include "indexforge.existingSecret" . -}}
{{- if $existing -}}
{{- dict "name" $existing "key" "grafana-admin-password" | toJson -}}
{{- else -}}
{{- dict "name" (printf "%s-grafana-admin" .Release.Name) "key" "admin-password" | toJson -}}
{{- end -}}
{{- end -}}

{{/* indexforge.secretEnv: an env var read from a Secret key (dict name, secret, key). */}}
{{- define "indexforge.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
{{- end -}}

{{/* indexforge.internalEnv: an env var read from the internal credentials (dict root, name, key). */}}
{{- define "indexforge.internalEnv" -}}
{{ include "indexforge.secretEnv" (dict "name" .name "secret" (include "indexforge.internalAuthSecret" .root) "key" .key) }}
{{- end -}}

{{/*
indexforge.redisAuthConf: the file redis.conf includes (password): the ACL default user with
the accepted password and masterauth, as the operator's credentials.redis_auth_conf. The chart
never rotates, so the accepted list is the one password.
*/}}
{{- define "indexforge.redisAuthConf" -}}
{{- printf "user default on >%s ~* &* +@all\nmasterauth %s\n" . . -}}
{{- end -}}

{{/*
indexforge.generated: the generated values of this release as JSON (without existingSecret
only): {"consumers": {username: key}, "grafanaPassword", "gatewayTokens": [newest first],
"redis": {"redis-app", "redis-ml", "redis-state"}, "weaviateApiKey", "rabbitmq": {"password", "cookie"}
("" until messaging is first enabled)}. A value stored by a previous release
is kept; a missing one is generated. Computed once per render and remembered: kong.yml and the
Secrets are rendered by different templates and must agree.
*/}}
{{- define "indexforge.generated" -}}
{{- $memo := "__indexforgeGenerated" -}}
{{- if and (not (hasKey .Values $memo)) (eq (include "indexforge.secretsProvider" .) "externalSecrets") -}}
{{- $_ := set .Values $memo (include "indexforge.esGenerated" . | fromJson) -}}
{{- end -}}
{{- if not (hasKey .Values $memo) -}}
{{- $spec := include "indexforge.spec" . | fromJson -}}
{{- $ns := .Release.Namespace -}}
{{- $consumersOld := (lookup "v1" "Secret" $ns (printf "%s-gateway-consumers" .Release.Name)).data | default dict -}}
{{- $grafanaOld := (lookup "v1" "Secret" $ns (printf "%s-grafana-admin" .Release.Name)).data | default dict -}}
{{- $internalOld := (lookup "v1" "Secret" $ns (printf "%s-internal-auth" .Release.Name)).data | default dict -}}
{{- $keys := dict -}}
{{- range $spec.gateway.keyAuth.consumers -}}
{{- $_ := set $keys .username (index $consumersOld .username | default "" | b64dec | default (randAlphaNum 43)) -}}
{{- end -}}
{{- $tokens := list -}}
{{- range splitList "\n" (index $internalOld "gateway-tokens" | default "" | b64dec) -}}
{{- if . }}{{ $tokens = append $tokens . }}{{ end -}}
{{- end -}}
{{- if not $tokens }}{{ $tokens = list (randAlphaNum 43) }}{{ end -}}
{{- $redis := dict -}}
{{- range list "redis-app" "redis-ml" "redis-state" -}}
{{- $_ := set $redis . (index $internalOld (printf "%s-password" .) | default "" | b64dec | default (randAlphaNum 43)) -}}
{{- end -}}
{{- /* RabbitMQ's default user and the Erlang cookie its nodes share: made when messaging is
       on, kept once made (a node's database keeps the first default user; the cookie must
       match its peers'), as the operator's generated.complete. */ -}}
{{- $rabbitmq := dict -}}
{{- range $field, $key := dict "password" "rabbitmq-password" "cookie" "rabbitmq-erlang-cookie" -}}
{{- $old := index $internalOld $key | default "" | b64dec -}}
{{- $_ := set $rabbitmq $field ($old | default (ternary (randAlphaNum 43) "" $spec.messaging.enabled)) -}}
{{- end -}}
{{- $out := dict
  "rabbitmq" $rabbitmq
  "consumers" $keys
  "grafanaPassword" (index $grafanaOld "admin-password" | default "" | b64dec | default (randAlphaNum 43))
  "gatewayTokens" $tokens
  "redis" $redis
  "weaviateApiKey" (index $internalOld "weaviate-api-key" | default "" | b64dec | default (randAlphaNum 43)) -}}
{{- $_ := set .Values $memo $out -}}
{{- end -}}
{{- index .Values $memo | toJson -}}
{{- end -}}

{{/* indexforge.weaviateKeyVolume: the Weaviate API key clients use, as a file (root). A
directory volume (never subPath, whose files the kubelet does not update): a rotation reaches
the pod without a restart. As builders/credentials.py weaviate_key_volume. */}}
{{- define "indexforge.weaviateKeyVolume" -}}
- name: weaviate-api-key
  secret:
    secretName: {{ include "indexforge.internalAuthSecret" . }}
    items:
      - key: weaviate-api-key
        path: api-key
    defaultMode: 288  # 0440
{{- end -}}

{{/* indexforge.weaviateKeyMount: where the services and backup jobs read that file. */}}
{{- define "indexforge.weaviateKeyMount" -}}
- name: weaviate-api-key
  mountPath: /var/run/indexforge/weaviate
  readOnly: true
{{- end -}}
