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
indexforge-operator.namespacedRules: exactly what the operator's code does inside a watched
namespace (operator/indexforge_operator/permissions.py is the list; a test compares both).
Children: watched into the cache (list/watch), read when missing from it (get), written with
server-side apply (create/patch), pruned (delete). Secrets are watched unfiltered because a
CR may reference one (the Sentry DSN, the Alertmanager receivers). Pods and Events are listed only to explain a GPU
shortage; Events are posted and aggregated (create/patch). PVCs are listed and patched to
grow volumes (persistence.size raised). indexforges/finalizers update is
what blockOwnerDeletion on the children's ownerReferences needs. No wildcards.
*/}}
{{- define "indexforge-operator.namespacedRules" -}}
- apiGroups: [indexforge.io]
  resources: [indexforges]
  verbs: [get, list, watch, patch]
- apiGroups: [indexforge.io]
  resources: [indexforges/status]
  verbs: [patch]
- apiGroups: [indexforge.io]
  resources: [indexforges/finalizers]
  verbs: [update]
- apiGroups: [""]
  resources: [events]
  verbs: [list, create, patch]
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [list, patch]
- apiGroups: [""]
  resources: [serviceaccounts, secrets, configmaps, services]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [apps]
  resources: [statefulsets, deployments]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [monitoring.coreos.com]
  resources: [servicemonitors, prometheusrules, alertmanagerconfigs]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [batch]
  resources: [cronjobs, jobs]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [rabbitmq.com]
  resources: [rabbitmqclusters, users, permissions, exchanges, queues, bindings]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [keda.sh]
  resources: [scaledobjects, triggerauthentications]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [security.istio.io]
  resources: [peerauthentications, authorizationpolicies]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [networking.istio.io]
  resources: [destinationrules]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [external-secrets.io]
  resources: [secretstores, externalsecrets]
  verbs: [get, list, watch, create, patch, delete]
{{- end -}}
