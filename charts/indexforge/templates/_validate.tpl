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
{{- /* The spec as written: the CRD's rules see `auto`, not what it resolves to. */ -}}
{{- $m := (include "indexforge.specAsWritten" . | fromJson).messaging -}}
{{- if ne (mod (int $m.rabbitmq.replicas) 2) 1 }}{{ $errors = append $errors "rabbitmq.replicas must be odd" }}{{ end -}}
{{- if gt (int $m.workers.minReplicas) (int $m.workers.maxReplicas) }}{{ $errors = append $errors "workers.minReplicas must be less than or equal to maxReplicas" }}{{ end -}}
{{- if and (has $m.workers.scaler (list "hpa" "queueLength")) (eq (int $m.workers.minReplicas) 0) }}{{ $errors = append $errors "workers.minReplicas 0 needs the keda scaler (an HPA cannot scale to zero)" }}{{ end -}}
{{- $rep := $spec.redis.state.replication -}}
{{- if ne (mod (int $rep.sentinels) 2) 1 }}{{ $errors = append $errors "redis.state.replication.sentinels must be odd" }}{{ end -}}
{{- if and (hasKey $rep "quorum") (gt (int $rep.quorum) (int $rep.sentinels)) }}{{ $errors = append $errors "redis.state.replication.quorum must be at most sentinels" }}{{ end -}}
{{- if ge (int $rep.waitReplicas) (int $rep.replicas) }}{{ $errors = append $errors "redis.state.replication.waitReplicas must be less than replicas" }}{{ end -}}
{{- $w := $spec.weaviate -}}
{{- if and (hasKey $w "replicationFactor") (gt (int $w.replicationFactor) (int $w.replicas)) }}{{ $errors = append $errors "weaviate.replicationFactor must be at most weaviate.replicas" }}{{ end -}}
{{- $gw := $spec.gateway -}}
{{- if eq $gw.routes.api $gw.routes.ml }}{{ $errors = append $errors "routes.api and routes.ml must differ" }}{{ end -}}
{{- if and $gw.cors.credentials (has "*" $gw.cors.origins) }}{{ $errors = append $errors "cors.credentials requires explicit origins (browsers reject '*' with credentials)" }}{{ end -}}
{{- $users := list -}}
{{- range $gw.keyAuth.consumers }}{{ $users = append $users .username }}{{ end -}}
{{- if ne (len $users) (len (uniq $users)) }}{{ $errors = append $errors "keyAuth.consumers usernames must be unique" }}{{ end -}}
{{- $ip := $gw.ipRestriction -}}
{{- if and $ip.enabled (not (or $ip.allow $ip.deny)) }}{{ $errors = append $errors "ipRestriction needs at least one allow or deny entry when enabled" }}{{ end -}}
{{- if and $gw.tls.enabled (not $gw.tls.secretName) }}{{ $errors = append $errors "tls.secretName is required when enabled" }}{{ end -}}
{{- /* IPs and CIDRs (the CRD's isIP()/isCIDR()): IPv4 completely; IPv6 only its prefix length,
       Helm has no address parser (the CRD and `indexforge render` check the rest). */ -}}
{{- $octet := "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])" -}}
{{- $v4 := printf "^%s(\\.%s){3}(/(3[0-2]|[12]?[0-9]))?$" $octet $octet -}}
{{- $v6 := "^[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*(/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))?$" -}}
{{- range $field := list "allow" "deny" -}}
{{- range $i, $a := (get $ip $field | default list) -}}
{{- if not (or (regexMatch $v4 $a) (regexMatch $v6 $a)) }}{{ $errors = append $errors (printf "gateway.ipRestriction.%s[%d]: must be an IP address or a CIDR, e.g. 192.168.1.1, 10.0.0.0/8 or 2001:db8::/32" $field $i) }}{{ end -}}
{{- end -}}
{{- end -}}
{{- /* Label keys, node-selector keys, toleration keys and resource names: qualified names. */ -}}
{{- range $path, $map := dict "ml.gpu.nodeSelector" $gpu.nodeSelector "monitoring.serviceMonitor.labels" $spec.monitoring.serviceMonitor.labels -}}
{{- range $key, $_ := ($map | default dict) -}}
{{- if ne (include "indexforge.validate.qualifiedName" $key) "ok" }}{{ $errors = append $errors (printf "%s: key %q: every key must be a qualified name%s" $path $key (include "indexforge.validate.qualifiedNameRule" .)) }}{{ end -}}
{{- end -}}
{{- end -}}
{{- range $i, $t := $gpu.tolerations -}}
{{- if and (hasKey $t "key") (ne (include "indexforge.validate.qualifiedName" $t.key) "ok") }}{{ $errors = append $errors (printf "ml.gpu.tolerations[%d].key: must be a qualified name%s" $i (include "indexforge.validate.qualifiedNameRule" .)) }}{{ end -}}
{{- end -}}
{{- range $line := include "indexforge.validate.resources" (list $spec "") | trim | splitList "\n" -}}
{{- if $line }}{{ $errors = append $errors $line }}{{ end -}}
{{- end -}}
{{- $sec := $spec.secrets -}}
{{- if and (eq $sec.provider "vault") (not $sec.vault.address) }}{{ $errors = append $errors "secrets.vault.address is required when secrets.provider is vault" }}{{ end -}}
{{- if and (eq $sec.provider "externalSecrets") (not $sec.vault.address) (not $sec.externalSecrets.storeRef) }}{{ $errors = append $errors "secrets.externalSecrets needs vault.address (the operator emits a SecretStore) or externalSecrets.storeRef (an existing store) when secrets.provider is externalSecrets" }}{{ end -}}
{{- if $errors }}{{ fail (printf "invalid values (IndexForge spec):\n  - %s" (join "\n  - " $errors)) }}{{ end -}}
{{- /* Valid as a CR, impossible without an operator: the chart cannot write to Vault. */ -}}
{{- if and (ne $sec.provider "kubernetes") (include "indexforge.existingSecret" .) }}{{ fail (printf "credentials.existingSecret and secrets.provider %s both say where the credentials come from: set one" $sec.provider) }}{{ end -}}
{{- if eq $sec.provider "vault" }}{{ fail "secrets.provider vault needs the IndexForge operator (it generates the values and writes them to Vault); the static chart cannot write to Vault: seed the values in Vault (keys in the README) and use secrets.provider externalSecrets, or use the operator" }}{{ end -}}
{{- end -}}

{{/*
indexforge.validate.qualifiedName: "ok" when the string is a Kubernetes qualified name (the
CRD's rule: an optional DNS-subdomain prefix of at most 253 characters and '/', then a name of
at most 63 characters).
*/}}
{{- define "indexforge.validate.qualifiedName" -}}
{{- $pattern := "^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$" -}}
{{- if and (regexMatch $pattern .) (le (len (splitList "/" . | initial | join "/")) 253) }}ok{{ end -}}
{{- end -}}

{{- define "indexforge.validate.qualifiedNameRule" -}}
: an optional DNS subdomain prefix of at most 253 characters and '/', then at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit (e.g. app.kubernetes.io/name)
{{- end -}}

{{/*
indexforge.validate.resources (list node path): one line per `resources` block anywhere under
node whose request exceeds its limit (compared as quantities; the first such resource in name
order, like the CRD's message), or with a bad resource name.
*/}}
{{- define "indexforge.validate.resources" -}}
{{- $path := index . 1 -}}
{{- range $key, $value := index . 0 -}}
{{- if and (eq $key "resources") (kindIs "map" $value) -}}
{{- $requests := $value.requests | default dict -}}
{{- $limits := $value.limits | default dict -}}
{{- range $name := concat (keys $requests) (keys $limits) | uniq | sortAlpha -}}
{{- if ne (include "indexforge.validate.qualifiedName" $name) "ok" }}
{{ $path }}resources: key {{ $name | quote }}: every key must be a qualified name{{ include "indexforge.validate.qualifiedNameRule" . }}
{{- end -}}
{{- end -}}
{{- $over := list -}}
{{- range $name, $request := $requests -}}
{{- if hasKey $limits $name -}}
{{- $limit := index $limits $name -}}
{{- /* float64 with a relative margin: 1000m and 1, 1Gi and 1024Mi are equal */ -}}
{{- if gt (float64 (include "indexforge.quantity" $request)) (mulf (float64 (include "indexforge.quantity" $limit)) 1.000000001) -}}
{{- $over = append $over (printf "resources.requests.%s (%s) must be less than or equal to resources.limits.%s (%s)" $name $request $name $limit) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $over }}
{{ $path }}resources: {{ first $over }}
{{- end -}}
{{- else if kindIs "map" $value -}}
{{- include "indexforge.validate.resources" (list $value (printf "%s%s." $path $key)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* indexforge.quantity: a Kubernetes quantity (the spec's forms) as a float ("1.5Gi"). */}}
{{- define "indexforge.quantity" -}}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" . -}}
{{- $scale := dict "" 1.0 "m" 0.001 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "E" 1e18 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 "Ei" 1152921504606846976.0 -}}
{{- mulf (float64 $number) (index $scale (trimPrefix $number .)) -}}
{{- end -}}
