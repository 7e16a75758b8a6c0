{{/*
secrets.provider externalSecrets, as the operator's builders/external_secrets.py: the chart
generates nothing; each credential Secret becomes an ExternalSecret of the same name whose
target.template holds the same keys, every generated value being a template expression that
reads one key of the instance's store entry (<vault.pathPrefix>/<namespace>/<release>, keys
in the README). secrets.provider vault fails the release (templates/_validate.tpl): only the
operator can write generated values to Vault.
*/}}

{{/* indexforge.secretsProvider: kubernetes | vault | externalSecrets. */}}
{{- define "indexforge.secretsProvider" -}}
{{- (include "indexforge.spec" . | fromJson).secrets.provider -}}
{{- end -}}

{{/* indexforge.esRef: the ESO template expression reading one key of the store entry. */}}
{{- define "indexforge.esRef" -}}
{{- printf "%s index . %q }}" "{{" . -}}
{{- end -}}

{{/*
indexforge.esGenerated: what indexforge.generated is in externalSecrets mode (same shape,
template expressions instead of values). Kong sends the first stored gateway token.
*/}}
{{- define "indexforge.esGenerated" -}}
{{- $spec := include "indexforge.spec" . | fromJson -}}
{{- $keys := dict -}}
{{- if and $spec.gateway.enabled $spec.gateway.keyAuth.enabled -}}
{{- range $spec.gateway.keyAuth.consumers -}}
{{- $_ := set $keys .username (include "indexforge.esRef" (printf "consumer-%s" .username)) -}}
{{- end -}}
{{- end -}}
{{- $redis := dict -}}
{{- range list "redis-app" "redis-ml" "redis-state" -}}
{{- $_ := set $redis . (include "indexforge.esRef" (printf "%s-password" .)) -}}
{{- end -}}
{{- $messaging := $spec.messaging.enabled -}}
{{- $rabbitmq := dict "password" (ternary (include "indexforge.esRef" "rabbitmq-password") "" $messaging) "cookie" (ternary (include "indexforge.esRef" "rabbitmq-erlang-cookie") "" $messaging) -}}
{{- $first := printf "%s index . %q | splitList %q | first }}" "{{" "gateway-tokens" "\n" -}}
{{- dict
  "consumers" $keys
  "grafanaPassword" (include "indexforge.esRef" "grafana-admin-password")
  "gatewayTokens" (list $first)
  "redis" $redis
  "weaviateApiKey" (include "indexforge.esRef" "weaviate-api-key")
  "rabbitmq" $rabbitmq | toJson -}}
{{- end -}}

{{/*
indexforge.credentialSecret: a Secret of generated values (dict ctx: the component context
with root, name, data: plain key -> text), or its ExternalSecret in externalSecrets mode.
*/}}
{{- define "indexforge.credentialSecret" -}}
{{- $root := .ctx.root -}}
{{- $spec := include "indexforge.spec" $root | fromJson -}}
{{- $meta := include "indexforge.metadata" (merge (dict "name" .name) .ctx) | fromYaml -}}
{{- if eq $spec.secrets.provider "externalSecrets" -}}
{{- $sec := $spec.secrets -}}
{{- $store := dict "name" (printf "%s-secrets" $root.Release.Name) "kind" "SecretStore" -}}
{{- with $sec.externalSecrets.storeRef }}{{ $store = dict "name" .name "kind" (.kind | default "SecretStore") }}{{ end -}}
{{- $data := .data -}}
{{- if hasKey $data "gateway-tokens" }}{{ $data = merge (dict "gateway-tokens" (printf "%s\n" (include "indexforge.esRef" "gateway-tokens"))) $data }}{{ end -}}
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  {{- $meta | toYaml | nindent 2 }}
spec:
  refreshInterval: {{ printf "%ds" (int $sec.vault.refreshSeconds) }}
  secretStoreRef:
    {{- $store | toYaml | nindent 4 }}
  target:
    name: {{ .name }}
    creationPolicy: Owner
    deletionPolicy: Retain
    template:
      engineVersion: v2
      type: Opaque
      metadata:
        labels:
          {{- $meta.labels | toYaml | nindent 10 }}
      data:
        {{- $data | toYaml | nindent 8 }}
  dataFrom:
  - extract:
      key: {{ include "indexforge.storeKey" $root }}
{{- else -}}
apiVersion: v1
kind: Secret
metadata:
  {{- $meta | toYaml | nindent 2 }}
type: Opaque
data:
  {{- range $k, $v := .data }}
  {{ $k }}: {{ $v | b64enc }}
  {{- end }}
{{- end -}}
{{- end -}}

{{/* indexforge.storeKey: the store entry of this release (as vault_kv.kv_path). */}}
{{- define "indexforge.storeKey" -}}
{{- $sec := (include "indexforge.spec" . | fromJson).secrets -}}
{{- $sec.externalSecrets.remoteKey | default (printf "%s/%s/%s" $sec.vault.pathPrefix .Release.Namespace .Release.Name) -}}
{{- end -}}
