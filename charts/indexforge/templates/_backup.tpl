{{/*
Scheduled backups (the operator's builders/backup.py).
*/}}

{{/* indexforge.backupSources: JSON list of the components backed up (dict spec, present). */}}
{{- define "indexforge.backupSources" -}}
{{- $out := list -}}
{{- $b := .spec.backup -}}
{{- if $b.enabled -}}
{{- $wanted := list "prometheus" "grafana" -}}
{{- if $b.weaviate }}{{ $wanted = append $wanted "weaviate" }}{{ end -}}
{{- if $b.redis }}{{ $wanted = concat $wanted (list "redis-app" "redis-state") }}{{ end -}}
{{- range $wanted }}{{ if has . $.present }}{{ $out = append $out . }}{{ end }}{{ end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* indexforge.weaviateBackend: "filesystem" or "s3" (spec). */}}
{{- define "indexforge.weaviateBackend" -}}
{{- if and .backup.target .backup.target.s3 }}s3{{ else }}filesystem{{ end -}}
{{- end -}}

{{/* indexforge.weaviateBacksUp: non-empty when Weaviate is backed up (spec). */}}
{{- define "indexforge.weaviateBacksUp" -}}
{{- if and .backup.enabled .backup.weaviate .backup.target }}yes{{ end -}}
{{- end -}}

{{/* indexforge.weaviateBackupModules: JSON list of backup modules Weaviate enables (spec). */}}
{{- define "indexforge.weaviateBackupModules" -}}
{{- if include "indexforge.weaviateBacksUp" . -}}
{{- toJson (list (printf "backup-%s" (include "indexforge.weaviateBackend" .))) -}}
{{- else -}}
[]
{{- end -}}
{{- end -}}

{{/* indexforge.weaviateBackupVolume: the claim Weaviate mounts at /backup, or "" (spec). */}}
{{- define "indexforge.weaviateBackupVolume" -}}
{{- if and (include "indexforge.weaviateBacksUp" .) (eq (include "indexforge.weaviateBackend" .) "filesystem") -}}
{{- .backup.target.volume.claimName -}}
{{- end -}}
{{- end -}}

{{/* indexforge.weaviateBackupEnv: Weaviate's backup module settings, env list items (spec). */}}
{{- define "indexforge.weaviateBackupEnv" -}}
{{- if include "indexforge.weaviateBacksUp" . -}}
{{- $s3 := .backup.target.s3 -}}
{{- if not $s3 -}}
- name: BACKUP_FILESYSTEM_PATH
  value: /backup/weaviate
{{- else -}}
- name: BACKUP_S3_BUCKET
  value: {{ $s3.bucket | quote }}
- name: BACKUP_S3_ENDPOINT
  value: {{ $s3.endpoint | quote }}
- name: BACKUP_S3_USE_SSL
  value: {{ $s3.useSsl | toString | quote }}
{{- if $s3.path }}
- name: BACKUP_S3_PATH
  value: {{ $s3.path | quote }}
{{- end }}
{{- if $s3.region }}
- name: AWS_REGION
  value: {{ $s3.region | quote }}
{{- end }}
{{- range list "AWS_ACCESS_KEY_ID" "AWS_SECRET_ACCESS_KEY" }}
{{ include "indexforge.secretEnv" (dict "name" . "secret" $s3.credentialsSecret "key" .) }}
{{- end }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* indexforge.configReloader: the config-reloader sidecar (dict spec, volume, dir, port). */}}
{{- define "indexforge.configReloader" -}}
{{- $reloader := .spec.monitoring.configReloader -}}
- name: config-reloader
  image: {{ $reloader.image }}
  imagePullPolicy: {{ $reloader.imagePullPolicy }}
  args:
    - --watched-dir={{ .dir }}
    - --reload-url=http://127.0.0.1:{{ .port }}/-/reload
    # No metrics listener: nothing scrapes the sidecar, so it opens no port.
    - --listen-address=
  resources:
    requests: {cpu: 10m, memory: 16Mi}
    limits: {cpu: 100m, memory: 64Mi}
  securityContext:
    {{- include "indexforge.containerSecurity" . | nindent 4 }}
  volumeMounts:
    - {name: {{ .volume }}, mountPath: {{ .dir }}, readOnly: true}
    {{- include "indexforge.tmpMount" . | nindent 4 }}
{{- end -}}
