{{/*
The Grafana dashboards, as the operator's builders/dashboards package: overview, services,
infra, ml, business, slo. Their JSON is generated from that package into
files/monitoring/dashboards/ (hack/monitoring_files.py) with placeholders this helper fills:
release namespace and name, and the uid digest (16 hex digits of sha256 "namespace/name";
Grafana uids are at most 40 characters).
*/}}

{{/* indexforge.dashboardKeys: the dashboards, in the operator's order (JSON list). */}}
{{- define "indexforge.dashboardKeys" -}}
{{- list "overview" "services" "infra" "ml" "business" "slo" | toJson -}}
{{- end -}}

{{/* indexforge.dashboardFiles: file name -> dashboard JSON text (dict root; JSON object). */}}
{{- define "indexforge.dashboardFiles" -}}
{{- $root := .root -}}
{{- $digest := printf "%s/%s" $root.Release.Namespace $root.Release.Name | sha256sum | trunc 16 -}}
{{- $out := dict -}}
{{- range include "indexforge.dashboardKeys" . | fromJsonArray -}}
{{- $file := printf "indexforge-%s.json" . -}}
{{- $text := $root.Files.Get (printf "files/monitoring/dashboards/%s" $file) -}}
{{- $text = $text | replace "__NAMESPACE__" $root.Release.Namespace | replace "__INSTANCE__" $root.Release.Name | replace "__UID_DIGEST__" $digest -}}
{{- $_ := set $out $file $text -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}
