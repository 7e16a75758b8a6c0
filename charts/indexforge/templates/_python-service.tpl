{{/*
The workload shape shared by the three Python services (api, ml, excel), as the operator's
builders/python_service.py: ServiceAccount, Deployment, Service, headless Service, PDB.
Each service is a console script (`indexforge-<name> --host --port`) configured entirely by
INDEXFORGE_* environment variables.
*/}}

{{/* indexforge.commonEnv: environment every service understands (dict root, spec, component, logLevel). */}}
{{- define "indexforge.commonEnv" -}}
{{- $spec := .spec -}}
{{ include "indexforge.env" (dict "name" "INDEXFORGE_SERVICE_NAME" "value" .component) }}
{{ include "indexforge.env" (dict "name" "INDEXFORGE_LOG_LEVEL" "value" .logLevel) }}
{{ include "indexforge.env" (dict "name" "INDEXFORGE_LOG_JSON" "value" "true") }}
{{ include "indexforge.env" (dict "name" "INDEXFORGE_ENVIRONMENT" "value" $spec.sentry.environment) }}
{{ include "indexforge.env" (dict "name" "HOME" "value" "/tmp") }}
{{ include "indexforge.env" (dict "name" "PYTHONDONTWRITEBYTECODE" "value" "1") }}
{{ include "indexforge.env" (dict "name" "INDEXFORGE_METRICS_PORT" "value" 9102) }}
{{ include "indexforge.env" (dict "name" "INDEXFORGE_GATEWAY_TOKENS_FILE" "value" "/var/run/indexforge/gateway/tokens") }}
{{- if and $spec.monitoring.enabled $spec.monitoring.jaeger.enabled }}
{{ include "indexforge.env" (dict "name" "INDEXFORGE_OTLP_ENDPOINT" "value" (include "indexforge.url" (dict "root" .root "component" "jaeger" "port" 4318))) }}
{{- end }}
{{- if and $spec.sentry.enabled $spec.sentry.dsnSecretRef }}
- name: INDEXFORGE_SENTRY_DSN
  valueFrom:
    secretKeyRef:
      name: {{ $spec.sentry.dsnSecretRef.name }}
      key: {{ $spec.sentry.dsnSecretRef.key }}
{{ include "indexforge.env" (dict "name" "INDEXFORGE_SENTRY_TRACES_SAMPLE_RATE" "value" (include "indexforge.pyfloat" $spec.sentry.tracesSampleRate)) }}
{{ include "indexforge.env" (dict "name" "INDEXFORGE_SENTRY_PROFILES_SAMPLE_RATE" "value" (include "indexforge.pyfloat" $spec.sentry.profilesSampleRate)) }}
{{- end }}
{{- end -}}

{{/*
indexforge.pythonService: every object of one service. dict:
  root, spec, component, svc (the component's spec part), replicas ("" when an HPA owns the
  count), maxReplicas, port, env (YAML list text), podFields (YAML map text, GPU scheduling),
  extraLimits (map), slowStart (bool), redis (the Redis instance whose password it needs),
  stateRedis (also the state Redis's password: the API image), weaviateKey (the Weaviate API
  key file, re-read when it changes: the API image),
  rollout ("surge" default, "replace", "recreate"; the operator's common.deployment),
  program (the console script; default indexforge-<component>), extraArgs (after --host/--port),
  noClusterService (only the headless Service: nobody calls a worker), noDrain (no pre-stop
  pause: nobody routes to a worker).
Metrics listen on their own port (9102), so a scrape rule never opens the serving port. The
gateway tokens are a file the service re-reads, so an overlapping rotation needs no restart.
*/}}
{{- define "indexforge.pythonService" -}}
{{- $ctx := dict "root" .root "spec" .spec "component" .component -}}
{{- $svc := .svc -}}
{{- /* Redis instances whose current password the pod mounts as a file. */ -}}
{{- $redisFiles := list -}}
{{- with .redis }}{{ $redisFiles = append $redisFiles . }}{{ end -}}
{{- if .stateRedis }}{{ $redisFiles = append $redisFiles "redis-state" }}{{ end -}}
{{ include "indexforge.serviceAccount" $ctx }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  {{- include "indexforge.metadata" (merge (dict "name" (include "indexforge.name" $ctx)) $ctx) | nindent 2 }}
spec:
  {{- if ne (toString .replicas) "" }}
  replicas: {{ .replicas }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "indexforge.selectorLabels" $ctx | nindent 6 }}
  revisionHistoryLimit: 5
  strategy:
    {{- /* surge: a new pod first; replace: an old pod first (whole GPUs: a surge pod may
           never schedule); recreate: every old pod first (a single GPU replica). */}}
    {{- $rollout := .rollout | default "surge" }}
    {{- if eq $rollout "recreate" }}
    type: Recreate
    {{- else }}
    type: RollingUpdate
    rollingUpdate:
      maxSurge: {{ ternary 0 1 (eq $rollout "replace") }}
      maxUnavailable: {{ ternary 1 0 (eq $rollout "replace") }}
    {{- end }}
  template:
    metadata:
      labels:
        {{- include "indexforge.labels" $ctx | nindent 8 }}
        {{- include "indexforge.meshPodLabels" $ctx | nindent 8 }}
      {{- with include "indexforge.meshPodAnnotations" $ctx }}
      annotations:
        {{- . | nindent 8 }}
      {{- end }}
    spec:
      {{- include "indexforge.podCommon" $ctx | nindent 6 }}
      securityContext:
        {{- include "indexforge.podSecurity" 10001 | nindent 8 }}
      terminationGracePeriodSeconds: 30
      {{- with .podFields }}
      {{- . | nindent 6 }}
      {{- end }}
      containers:
        - name: {{ .component }}
          image: {{ $svc.image }}
          imagePullPolicy: {{ $svc.imagePullPolicy }}
          command:
            - {{ .program | default (printf "indexforge-%s" .component) }}
            - --host
            - 0.0.0.0
            - --port
            - {{ .port | quote }}
            {{- range .extraArgs }}
            - {{ . }}
            {{- end }}
          ports:
            - name: http
              containerPort: {{ .port }}
              protocol: TCP
            - name: metrics
              containerPort: 9102
              protocol: TCP
          env:
            {{- .env | nindent 12 }}
            {{- /* A file, not the value: re-read on every new connection (a rotation needs no restart). */}}
            {{- with .redis }}
            - name: INDEXFORGE_REDIS_PASSWORD_FILE
              value: /var/run/indexforge/redis/{{ . }}
            {{- end }}
          resources:
            {{- include "indexforge.resources" (dict "resources" $svc.resources "extraLimits" .extraLimits) | nindent 12 }}
          securityContext:
            {{- include "indexforge.containerSecurity" . | nindent 12 }}
          livenessProbe:
            {{- include "indexforge.httpProbe" (dict "path" "/healthz" "port" "http") | nindent 12 }}
          readinessProbe:
            {{- include "indexforge.httpProbe" (dict "path" "/readyz" "port" "http" "period" 5) | nindent 12 }}
          {{- if .slowStart }}
          # Model loading can take minutes on a cold node; liveness must not kill it meanwhile.
          startupProbe:
            {{- include "indexforge.httpProbe" (dict "path" "/healthz" "port" "http" "period" 10 "failures" 60) | nindent 12 }}
          {{- end }}
          {{- if not .noDrain }}
          # Kong (DNS TTL 5 s) and kube-proxy still send for a moment after termination
          # starts: keep serving, then uvicorn finishes in-flight requests (grace 30 s).
          lifecycle:
            preStop:
              sleep:
                seconds: 10
          {{- end }}
          volumeMounts:
            {{- include "indexforge.tmpMount" . | nindent 12 }}
            - name: gateway-tokens
              mountPath: /var/run/indexforge/gateway
              readOnly: true
            {{- if $redisFiles }}
            - name: redis-passwords
              mountPath: /var/run/indexforge/redis
              readOnly: true
            {{- end }}
            {{- if .weaviateKey }}
            {{- include "indexforge.weaviateKeyMount" . | nindent 12 }}
            {{- end }}
      volumes:
        {{- include "indexforge.tmpVolume" . | nindent 8 }}
        - name: gateway-tokens
          secret:
            secretName: {{ include "indexforge.internalAuthSecret" .root }}
            items:
              - key: gateway-tokens
                path: tokens
            defaultMode: 288  # 0440
        {{- if $redisFiles }}
        {{- /* A directory volume (never subPath, whose files the kubelet does not update). */}}
        - name: redis-passwords
          secret:
            secretName: {{ include "indexforge.internalAuthSecret" .root }}
            items:
              {{- range $redisFiles }}
              - key: {{ . }}-password
                path: {{ . }}
              {{- end }}
            defaultMode: 288  # 0440
        {{- end }}
        {{- if .weaviateKey }}
        {{- include "indexforge.weaviateKeyVolume" .root | nindent 8 }}
        {{- end }}
{{- if not .noClusterService }}
---
{{ include "indexforge.service" (merge (dict "ports" (list (dict "name" "http" "port" .port))) $ctx) }}
{{- end }}
---
{{ include "indexforge.headlessService" (merge (dict "ports" (list (dict "name" "http" "port" .port) (dict "name" "metrics" "port" 9102))) $ctx) }}
{{- if include "indexforge.wantsPdb" (dict "budget" $svc.podDisruptionBudget "maxReplicas" .maxReplicas) }}
---
{{ include "indexforge.pdb" (merge (dict "budget" $svc.podDisruptionBudget) $ctx) }}
{{- end }}
{{- end -}}
