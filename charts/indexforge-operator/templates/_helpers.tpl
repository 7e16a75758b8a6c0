{{/* Helpers of the operator chart: names, labels, image, RBAC rules. */}}

{{/* indexforge-operator.name: the chart name (nameOverride). */}}
{{- define "indexforge-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* indexforge-operator.fullname: name of every object of the release. */}}
{{- define "indexforge-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "indexforge-operator.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
indexforge-operator.selectorLabels: what the Deployment selects its pod by.
Selectors are immutable: never add a label here.
*/}}
{{- define "indexforge-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "indexforge-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* indexforge-operator.labels: labels of every object. */}}
{{- define "indexforge-operator.labels" -}}
{{ include "indexforge-operator.selectorLabels" . }}
app.kubernetes.io/part-of: indexforge
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* indexforge-operator.serviceAccountName */}}
{{- define "indexforge-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "indexforge-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* indexforge-operator.image: repository@digest or repository:tag. */}}
{{- define "indexforge-operator.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
indexforge-operator.namespacedRules: what the operator does inside a watched namespace.
Children are written with server-side apply (create/patch), read back (get/list) and pruned
(delete); pods and events are only read (GPU scheduling failures). No wildcards.
*/}}
{{- define "indexforge-operator.namespacedRules" -}}
- apiGroups: [indexforge.io]
  resources: [indexforges]
  verbs: [get, list, watch, patch]
- apiGroups: [indexforge.io]
  resources: [indexforges/status]
  verbs: [get, patch]
- apiGroups: [""]
  resources: [events]
  verbs: [get, list, watch, create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [serviceaccounts, secrets, configmaps, services, persistentvolumeclaims]
  verbs: [get, list, create, patch, delete]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, list, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, create, patch, delete]
- apiGroups: [apps]
  resources: [statefulsets, deployments]
  verbs: [get, list, create, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, create, patch, delete]
- apiGroups: [monitoring.coreos.com]
  resources: [servicemonitors, prometheusrules]
  verbs: [get, list, create, patch, delete]
{{- end -}}
