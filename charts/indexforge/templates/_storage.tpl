{{/*
StatefulSet and volumeClaimTemplate shapes shared by Redis and Weaviate (the operator's
builders/storage.py).
*/}}

{{/* indexforge.dataClaim: the `data` claim template as JSON, or "" when persistence is off (dict root, component, persistence). */}}
{{- define "indexforge.dataClaim" -}}
{{- if .persistence.enabled -}}
{{- $spec := dict "accessModes" (list "ReadWriteOnce") "resources" (dict "requests" (dict "storage" .persistence.size)) -}}
{{- with .persistence.storageClassName }}{{ $_ := set $spec "storageClassName" . }}{{ end -}}
{{- /* The labels let cleanup find (and, under deletionPolicy Delete, remove) the PVCs. */ -}}
{{- $labels := include "indexforge.labels" (dict "root" .root "component" .component) | fromYaml -}}
{{- dict "apiVersion" "v1" "kind" "PersistentVolumeClaim" "metadata" (dict "name" "data" "labels" $labels) "spec" $spec | toJson -}}
{{- end -}}
{{- end -}}

{{/*
indexforge.statefulset: dict root, spec, component, replicas, template (YAML text),
claim (JSON or ""), parallel.
*/}}
{{- define "indexforge.statefulset" -}}
{{- $ctx := dict "root" .root "component" .component -}}
apiVersion: apps/v1
kind: StatefulSet
metadata:
  {{- include "indexforge.metadata" (merge (dict "name" (include "indexforge.name" $ctx)) $ctx) | nindent 2 }}
spec:
  replicas: {{ .replicas }}
  serviceName: {{ include "indexforge.name" $ctx }}-headless
  selector:
    matchLabels:
      {{- include "indexforge.selectorLabels" $ctx | nindent 6 }}
  podManagementPolicy: {{ ternary "Parallel" "OrderedReady" (default false .parallel) }}
  updateStrategy:
    type: RollingUpdate
  template:
    {{- include "indexforge.withMeshPod" . | nindent 4 }}
  {{- if .claim }}
  volumeClaimTemplates:
    - {{- .claim | fromJson | toYaml | nindent 6 }}
  # deletionPolicy reaches the PVCs through the StatefulSet controller as well.
  persistentVolumeClaimRetentionPolicy:
    whenDeleted: {{ .spec.deletionPolicy }}
    whenScaled: Retain
  {{- end }}
{{- end -}}
