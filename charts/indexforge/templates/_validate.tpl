{{/*
indexforge.validate: the CRD's cross-field (CEL) rules, with the same messages, so a values
file the API server would reject as a CR fails here too. values.schema.json covers types,
bounds, enums and patterns.
*/}}
{{- define "indexforge.validate" -}}
{{- $_ := include "indexforge.instance" . -}}
{{- $spec := include "indexforge.spec" . | fromJson -}}
{{- $errors := list -}}
{{- $as := $spec.api.autoscaling -}}
{{- if gt (int $as.minReplicas) (int $as.maxReplicas) }}{{ $errors = append $errors "autoscaling.minReplicas must be less than or equal to maxReplicas" }}{{ end -}}
{{- $gpu := $spec.ml.gpu -}}
{{- if and $gpu.enabled (lt (int $gpu.count) 1) }}{{ $errors = append $errors "gpu.count must be at least 1 when enabled" }}{{ end -}}
{{- if hasPrefix "kubernetes.io/" $gpu.resourceName }}{{ $errors = append $errors "gpu.resourceName cannot be in the kubernetes.io domain" }}{{ end -}}
{{- range $gpu.tolerations -}}
{{- if and (eq .operator "Exists") (hasKey . "value") }}{{ $errors = append $errors "a toleration with operator Exists must not set value" }}{{ end -}}
{{- end -}}
{{- if hasKey $spec.sentry "dsn" }}{{ $errors = append $errors "sentry.dsn must not be set inline; put it in a Secret and set sentry.dsnSecretRef" }}{{ end -}}
{{- if and $spec.sentry.enabled (not $spec.sentry.dsnSecretRef) }}{{ $errors = append $errors "sentry.dsnSecretRef is required when sentry is enabled" }}{{ end -}}
{{- $gw := $spec.gateway -}}
{{- if eq $gw.routes.api $gw.routes.ml }}{{ $errors = append $errors "routes.api and routes.ml must differ" }}{{ end -}}
{{- if and $gw.cors.credentials (has "*" $gw.cors.origins) }}{{ $errors = append $errors "cors.credentials requires explicit origins (browsers reject '*' with credentials)" }}{{ end -}}
{{- $users := list -}}
{{- range $gw.keyAuth.consumers }}{{ $users = append $users .username }}{{ end -}}
{{- if ne (len $users) (len (uniq $users)) }}{{ $errors = append $errors "keyAuth.consumers usernames must be unique" }}{{ end -}}
{{- $ip := $gw.ipRestriction -}}
{{- if and $ip.enabled (not (or $ip.allow $ip.deny)) }}{{ $errors = append $errors "ipRestriction needs at least one allow or deny entry when enabled" }}{{ end -}}
{{- if and $gw.tls.enabled (not $gw.tls.secretName) }}{{ $errors = append $errors "tls.secretName is required when enabled" }}{{ end -}}
{{- if $errors }}{{ fail (printf "invalid values (IndexForge spec):\n  - %s" (join "\n  - " $errors)) }}{{ end -}}
{{- end -}}
