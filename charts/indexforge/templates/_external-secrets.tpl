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
indexforge.esChecks: as checks() in builders/external_secrets.py: for each store key a
template reads (sorted), an action failing ESO's render when the value is missing or breaks
the pattern (vault_kv.SAFE_VALUE; gateway-tokens: one such value per line). The parity tests
compare the result with the operator's.
*/}}
{{- define "indexforge.esChecks" -}}
{{- $value := `[^\x00-\x20\x7f\x22\x27\x5c\x60#]+` -}}
{{- $lines := printf `%s(\n%s)*\n?` $value $value -}}
{{- $why := "holds whitespace, a control character, a quote, a backslash, # or a backtick, which the generated config files cannot carry" -}}
{{- $keys := list -}}
{{- range regexFindAll `\{\{ index \. "[^"]+"` . -1 -}}
{{- $keys = append $keys (regexReplaceAll `^.*"([^"]+)"$` . "${1}") -}}
{{- end -}}
{{- range $keys | uniq | sortAlpha -}}
{{- $pattern := ternary $lines $value (eq . "gateway-tokens") -}}
{{- $message := printf "store key %s is missing or empty, or %s" . $why -}}
{{- printf "%s if not (regexMatch `^%s$` (index . %q)) }}%s fail %q }}%s end }}" "{{" $pattern . "{{" $message "{{" -}}
{{- end -}}
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
{{- $checked := dict -}}
{{- range $k, $v := $data }}{{ $_ := set $checked $k (printf "%s%s" (include "indexforge.esChecks" $v) $v) }}{{ end -}}
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
        {{- $checked | toYaml | nindent 8 }}
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
