{{/*
The IndexForge Grafana dashboard (JSON model), as the operator's builders/dashboard.py:
request rate, error rate, p95 latency, ML inference time, cache hit ratio per component of
one instance, with the metric names and target labels the alert rules use. (dict root)
*/}}

{{- define "indexforge.dashboardPanel" -}}
{{- $ds := dict "type" "prometheus" "uid" "prometheus" -}}
{{- $targets := list -}}
{{- range .targets }}{{ $targets = append $targets (merge (dict "datasource" $ds) .) }}{{ end -}}
{{- dict "id" .id "type" "timeseries" "title" .title "datasource" $ds
  "gridPos" (dict "h" 8 "w" 12 "x" .x "y" .y)
  "fieldConfig" (dict "defaults" (dict "unit" .unit) "overrides" list)
  "options" (dict "legend" (dict "displayMode" "list" "placement" "bottom"))
  "targets" $targets | toJson -}}
{{- end -}}

{{- define "indexforge.dashboard" -}}
{{- $root := .root -}}
{{- $by := "sum by (indexforge_namespace, indexforge_instance, component)" -}}
{{- $http := include "indexforge.matcher" (dict "root" $root "extra" (dict "component" "api|ml|excel")) -}}
{{- $errors := include "indexforge.matcher" (dict "root" $root "extra" (dict "component" "api|ml|excel" "status" "5..")) -}}
{{- $ml := include "indexforge.matcher" (dict "root" $root "extra" (dict "component" "ml")) -}}
{{- $every := include "indexforge.matcher" (dict "root" $root) -}}
{{- $hits := include "indexforge.matcher" (dict "root" $root "extra" (dict "result" "hit|stale")) -}}
{{- $legend := "{{component}}" -}}
{{- $panels := list
  (include "indexforge.dashboardPanel" (dict "id" 1 "title" "Request rate" "unit" "reqps" "x" 0 "y" 0
    "targets" (list (dict "refId" "A" "expr" (printf "%s (rate(http_requests_total%s[5m]))" $by $http) "legendFormat" $legend))) | fromJson)
  (include "indexforge.dashboardPanel" (dict "id" 2 "title" "Error rate (5xx)" "unit" "percentunit" "x" 12 "y" 0
    "targets" (list (dict "refId" "A" "expr" (printf "%s (rate(http_requests_total%s[5m])) / %s (rate(http_requests_total%s[5m]))" $by $errors $by $http) "legendFormat" $legend))) | fromJson)
  (include "indexforge.dashboardPanel" (dict "id" 3 "title" "p95 latency" "unit" "s" "x" 0 "y" 8
    "targets" (list (dict "refId" "A" "expr" (printf "histogram_quantile(0.95, sum by (indexforge_namespace, indexforge_instance, component, le) (rate(http_request_duration_seconds_bucket%s[5m])))" $http) "legendFormat" $legend))) | fromJson)
  (include "indexforge.dashboardPanel" (dict "id" 4 "title" "ML inference time (p50 / p95)" "unit" "s" "x" 12 "y" 8
    "targets" (list
      (dict "refId" "B" "expr" (printf "histogram_quantile(0.5, sum by (le, model) (rate(ml_model_inference_seconds_bucket%s[5m])))" $ml) "legendFormat" "p50 {{model}}")
      (dict "refId" "A" "expr" (printf "histogram_quantile(0.95, sum by (le, model) (rate(ml_model_inference_seconds_bucket%s[5m])))" $ml) "legendFormat" "p95 {{model}}"))) | fromJson)
  (include "indexforge.dashboardPanel" (dict "id" 5 "title" "Cache hit ratio" "unit" "percentunit" "x" 0 "y" 16
    "targets" (list (dict "refId" "A" "expr" (printf "%s (rate(cache_requests_total%s[5m])) / %s (rate(cache_requests_total%s[5m]))" $by $hits $by $every) "legendFormat" $legend))) | fromJson)
-}}
{{- /* Grafana uids are at most 40 characters; a digest keeps them unique and stable. */ -}}
{{- $uid := printf "indexforge-%s" (printf "%s/%s" $root.Release.Namespace $root.Release.Name | sha256sum | trunc 16) -}}
{{- dict "uid" $uid "title" (printf "IndexForge %s/%s" $root.Release.Namespace $root.Release.Name)
  "tags" (list "indexforge") "timezone" "browser" "editable" false "refresh" "30s" "schemaVersion" 39
  "time" (dict "from" "now-1h" "to" "now") "panels" $panels | toPrettyJson -}}
{{- end -}}
