{{/*
Scheduled backups (the operator's builders/backup.py).
*/}}

{{/* indexforge.backupSources: JSON list of the components backed up (dict spec, present). */}}
{{- define "indexforge.backupSources" -}}
{{- $out := list -}}
{{- if .spec.backup.enabled -}}
{{- range list "prometheus" "grafana" }}{{ if has . $.present }}{{ $out = append $out . }}{{ end }}{{ end -}}
{{- end -}}
{{- toJson $out -}}
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
