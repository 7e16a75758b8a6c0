{{/*
Shared helpers of the static IndexForge chart. They mirror the operator's builders
(operator/indexforge_operator/builders/common.py, naming.py): same names, labels, security
contexts and probes, so `helm template` and `indexforge render` give the same objects
(tests/charts/test_parity.py). Helpers taking several arguments get a dict:
  root: the chart's top context ($), spec: the defaulted spec, component: a component name.
*/}}

{{/*
indexforge.defaulted: the API server's structural defaulting, applied to one value.
Input: dict s (node of files/spec-defaults.json: d=default, p=properties, i=items,
a=additionalProperties), v (the value), set (whether the value is present).
Output: JSON {"v": <value>} or {} when absent and without default.
An object default applies only when the object is absent; values.yaml leaves such objects
out, so a user's partial object is not deep-merged with it (the CR semantics).
*/}}
{{- define "indexforge.defaulted" -}}
{{- $s := .s -}}
{{- $v := .v -}}
{{- $set := .set -}}
{{- if and (not $set) (hasKey $s "d") -}}
{{- $v = index $s "d" | deepCopy -}}
{{- $set = true -}}
{{- end -}}
{{- if $set -}}
{{- if and (kindIs "map" $v) (or (hasKey $s "p") (hasKey $s "a")) -}}
{{- $out := dict -}}
{{- range $k, $child := $v -}}
{{- if and (hasKey $s "a") (not (hasKey (default dict $s.p) $k)) -}}
{{- $r := include "indexforge.defaulted" (dict "s" $s.a "v" $child "set" true) | fromJson -}}
{{- $_ := set $out $k $r.v -}}
{{- else -}}
{{- $_ := set $out $k $child -}}
{{- end -}}
{{- end -}}
{{- range $k, $cs := (default dict $s.p) -}}
{{- $r := include "indexforge.defaulted" (dict "s" $cs "v" (get $v $k) "set" (hasKey $v $k)) | fromJson -}}
{{- if hasKey $r "v" -}}
{{- $_ := set $out $k $r.v -}}
{{- end -}}
{{- end -}}
{{- $v = $out -}}
{{- else if and (kindIs "slice" $v) (hasKey $s "i") -}}
{{- $items := list -}}
{{- range $item := $v -}}
{{- $r := include "indexforge.defaulted" (dict "s" $s.i "v" $item "set" true) | fromJson -}}
{{- $items = append $items $r.v -}}
{{- end -}}
{{- $v = $items -}}
{{- end -}}
{{- dict "v" $v | toJson -}}
{{- else -}}
{{- "{}" -}}
{{- end -}}
{{- end -}}

{{/* indexforge.spec: the effective spec (values with the CRD's defaults), as JSON. */}}
{{- define "indexforge.spec" -}}
{{- $skeleton := .Files.Get "files/spec-defaults.json" | fromJson -}}
{{- /* Not spec: Helm's `global`, the chart-only `credentials`, the memo of indexforge.generated. */ -}}
{{- $values := omit .Values "global" "credentials" "__indexforgeGenerated" -}}
{{- $r := include "indexforge.defaulted" (dict "s" $skeleton "v" $values "set" true) | fromJson -}}
{{- /* Every `auto` of an optional integration made once from the cluster's APIs (the
       operator's decisions.resolve_integrations): templates read one concrete value. */ -}}
{{- include "indexforge.resolveIntegrations" (dict "root" . "spec" $r.v) -}}
{{- toJson $r.v -}}
{{- end -}}

{{/* indexforge.specAsWritten: the spec with defaults but no `auto` resolved (what the CRD's rules see). */}}
{{- define "indexforge.specAsWritten" -}}
{{- $skeleton := .Files.Get "files/spec-defaults.json" | fromJson -}}
{{- $values := omit .Values "global" "credentials" "__indexforgeGenerated" -}}
{{- $r := include "indexforge.defaulted" (dict "s" $skeleton "v" $values "set" true) | fromJson -}}
{{- toJson $r.v -}}
{{- end -}}

{{/* indexforge.instance: the release name is the instance name (the CR's name). */}}
{{- define "indexforge.instance" -}}
{{- $name := .Release.Name -}}
{{- if or (gt (len $name) 40) (not (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" $name)) -}}
{{- fail (printf "release name %q must start with a letter, contain only lowercase letters, digits and '-', and be at most 40 characters (it prefixes every object name)" $name) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{/* indexforge.name: name of a component's workload, Service, ServiceAccount and policy. */}}
{{- define "indexforge.name" -}}
{{- printf "%s-%s" .root.Release.Name .component -}}
{{- end -}}

{{/* indexforge.fqdn: in-cluster DNS name of a Service (dict root, service). */}}
{{- define "indexforge.fqdn" -}}
{{- printf "%s.%s.svc" .service .root.Release.Namespace -}}
{{- end -}}

{{/* indexforge.url: http URL of a component's Service (dict root, component, port). */}}
{{- define "indexforge.url" -}}
{{- $svc := include "indexforge.name" . -}}
{{- printf "http://%s:%v" (include "indexforge.fqdn" (dict "root" .root "service" $svc)) .port -}}
{{- end -}}

{{/*
indexforge.selectorLabels: labels a workload selects its pods by (dict root, component;
component may be empty for instance-wide selectors).
Deployment and StatefulSet selectors are immutable: never add a label here.
*/}}
{{- define "indexforge.selectorLabels" -}}
app.kubernetes.io/name: indexforge
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{/*
indexforge.labels: full label set of objects and pod templates (dict root, component[, extra]).
Extra labels never override the ones selectors use.
*/}}
{{- define "indexforge.labels" -}}
{{- $base := dict "app.kubernetes.io/name" "indexforge" "app.kubernetes.io/instance" .root.Release.Name "app.kubernetes.io/part-of" "indexforge" "app.kubernetes.io/managed-by" .root.Release.Service -}}
{{- if .component }}{{ $_ := set $base "app.kubernetes.io/component" .component }}{{ end -}}
{{- toYaml (merge $base (default dict .extra)) -}}
{{- end -}}

{{/* indexforge.metadata: name, namespace and labels (dict root, component, name[, extra]). */}}
{{- define "indexforge.metadata" -}}
name: {{ .name }}
namespace: {{ .root.Release.Namespace }}
labels:
  {{- include "indexforge.labels" . | nindent 2 }}
{{- end -}}

{{/* indexforge.podSecurity: pod part of Pod Security "restricted" (uid). */}}
{{- define "indexforge.podSecurity" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* indexforge.containerSecurity: container part of Pod Security "restricted". */}}
{{- define "indexforge.containerSecurity" -}}
allowPrivilegeEscalation: false
capabilities:
  drop:
    - ALL
readOnlyRootFilesystem: true
runAsNonRoot: true
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* indexforge.httpProbe: dict path, port[, period, failures]. */}}
{{- define "indexforge.httpProbe" -}}
httpGet:
  path: {{ .path }}
  port: {{ .port }}
periodSeconds: {{ default 10 .period }}
timeoutSeconds: 2
failureThreshold: {{ default 3 .failures }}
{{- end -}}

{{/* indexforge.resources: requests/limits of a container (the spec's Resources, + extra limits). */}}
{{- define "indexforge.resources" -}}
{{- $out := dict -}}
{{- with .resources.requests }}{{ $_ := set $out "requests" . }}{{ end -}}
{{- $limits := merge (dict) (default dict .extraLimits) (default dict .resources.limits) -}}
{{- with $limits }}{{ $_ := set $out "limits" . }}{{ end -}}
{{- if $out }}{{ toYaml $out }}{{ else }}{}{{ end -}}
{{- end -}}

{{/* indexforge.tmpVolume / tmpMount: writable /tmp for a read-only root filesystem
(`.tmpSize` overrides the size: the API spools uploads there). */}}
{{- define "indexforge.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .tmpSize | default "256Mi" }}
{{- end -}}
{{- define "indexforge.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/*
indexforge.podCommon: fields every pod spec starts with (dict root, spec, component).
No component talks to the Kubernetes API: no token is mounted.
*/}}
{{- define "indexforge.podCommon" -}}
serviceAccountName: {{ include "indexforge.name" . }}
automountServiceAccountToken: false
enableServiceLinks: false
{{- with .spec.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- /* One component's replicas over nodes, then zones (the operator's
       common.spread_constraints): only usable nodes count (Honor), one Deployment revision
       at a time (pod-template-hash), so a rollout never waits for old pods. Backup Job pods
       are pinned to their source's node instead. */}}
{{- if ne .component "backup" }}
topologySpreadConstraints:
{{- $ctx := . }}
{{- range $key, $policy := dict "kubernetes.io/hostname" .spec.topologySpread.node "topology.kubernetes.io/zone" .spec.topologySpread.zone }}
  - maxSkew: 1
    topologyKey: {{ $key }}
    whenUnsatisfiable: {{ $policy }}
    labelSelector:
      matchLabels:
        {{- include "indexforge.selectorLabels" $ctx | nindent 8 }}
    matchLabelKeys: [pod-template-hash]
    nodeAffinityPolicy: Honor
    nodeTaintsPolicy: Honor
{{- end }}
{{- end }}
{{- end -}}

{{/* indexforge.serviceAccount (dict root, component). */}}
{{- define "indexforge.serviceAccount" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  {{- include "indexforge.metadata" (merge (dict "name" (include "indexforge.name" .)) .) | nindent 2 }}
automountServiceAccountToken: false
{{- end -}}

{{/* indexforge.servicePorts: list of dict name, port[, target]. */}}
{{- define "indexforge.servicePorts" -}}
{{- range . }}
- name: {{ .name }}
  port: {{ .port }}
  targetPort: {{ default .name .target }}
  protocol: TCP
{{- end }}
{{- end -}}

{{/* indexforge.service: ClusterIP (or given type) Service (dict root, component, ports[, type]). */}}
{{- define "indexforge.service" -}}
apiVersion: v1
kind: Service
metadata:
  {{- include "indexforge.metadata" (merge (dict "name" (include "indexforge.name" .)) .) | nindent 2 }}
spec:
  type: {{ default "ClusterIP" .type }}
  selector:
    {{- include "indexforge.selectorLabels" . | nindent 4 }}
  ports:
    {{- include "indexforge.servicePorts" .ports | nindent 4 }}
{{- end -}}

{{/*
indexforge.headlessService: per-pod DNS (StatefulSets, Kong targets, scraping)
(dict root, component, ports[, scrape, publishNotReady]). The scrape label marks what
monitoring selects, so the ClusterIP Service is never scraped twice.
*/}}
{{- define "indexforge.headlessService" -}}
{{- $scrape := ternary .scrape true (hasKey . "scrape") -}}
{{- $extra := ternary (dict "indexforge.io/scrape" "true") dict $scrape -}}
apiVersion: v1
kind: Service
metadata:
  {{- include "indexforge.metadata" (merge (dict "name" (printf "%s-headless" (include "indexforge.name" .)) "extra" $extra) .) | nindent 2 }}
spec:
  clusterIP: None
  publishNotReadyAddresses: {{ default false .publishNotReady }}
  selector:
    {{- include "indexforge.selectorLabels" . | nindent 4 }}
  ports:
    {{- include "indexforge.servicePorts" .ports | nindent 4 }}
{{- end -}}

{{/* indexforge.pdb (dict root, component, budget). Only when >1 replica can exist. */}}
{{- define "indexforge.pdb" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  {{- include "indexforge.metadata" (merge (dict "name" (include "indexforge.name" .)) .) | nindent 2 }}
spec:
  maxUnavailable: {{ int .budget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "indexforge.selectorLabels" . | nindent 6 }}
{{- end -}}

{{/* indexforge.wantsPdb: "true" when a budget protects something (dict budget, maxReplicas). */}}
{{- define "indexforge.wantsPdb" -}}
{{- if and .budget.enabled (gt (int .maxReplicas) 1) }}true{{ end -}}
{{- end -}}

{{/*
indexforge.checksum: sha256 over canonical JSON of config data (a list of maps), the
operator's `checksum()`; a changed config changes the pod template, so pods roll.
*/}}
{{- define "indexforge.checksum" -}}
{{- toJson . | sha256sum -}}
{{- end -}}

{{/* indexforge.env: one env entry (name, value); booleans lower-case, everything a string. */}}
{{- define "indexforge.env" -}}
- name: {{ .name }}
  value: {{ .value | toString | quote }}
{{- end -}}

{{/*
indexforge.number: a Kubernetes quantity as the shortest decimal PromQL accepts
("500m" -> 0.5, "768Mi" -> 805306368), like the operator's parse_quantity + _number.
*/}}
{{- define "indexforge.number" -}}
{{- $m := regexFindAll "^([0-9]+)(\\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$" . -1 -}}
{{- if not $m }}{{ fail (printf "not a quantity: %q" .) }}{{ end -}}
{{- $num := regexReplaceAll "(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)$" . "" -}}
{{- $suffix := trimPrefix $num . -}}
{{- $mult := dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "P" 1000000000000000 "E" 1000000000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "Pi" 1125899906842624 "Ei" 1152921504606846976 -}}
{{- if eq $suffix "m" -}}
{{- divf (float64 $num) 1000 | toString -}}
{{- else if contains "." $num -}}
{{- $f := mulf (float64 $num) (index $mult $suffix) -}}
{{- if eq $f (floor $f) }}{{ int64 $f }}{{ else }}{{ $f | toString }}{{ end -}}
{{- else -}}
{{- mul (int64 $num) (index $mult $suffix) -}}
{{- end -}}
{{- end -}}

{{/* indexforge.matcher: PromQL matcher of one instance (dict root, extra: map of regexes). */}}
{{- define "indexforge.matcher" -}}
{{- $parts := list (printf "indexforge_namespace=%q" .root.Release.Namespace) (printf "indexforge_instance=%q" .root.Release.Name) -}}
{{- $extra := default dict .extra -}}
{{- range $k := keys $extra | sortAlpha -}}
{{- $parts = append $parts (printf "%s=~%q" $k (index $extra $k)) -}}
{{- end -}}
{{- printf "{%s}" (join "," $parts) -}}
{{- end -}}

{{/*
indexforge.relabel: relabelling that attaches the target labels every scraped series of a
component gets (dict root, component, key: "targetLabel" or "target_label"), in the
operator's order (namespace, instance, component).
*/}}
{{- define "indexforge.relabel" -}}
{{- $pairs := list (list "indexforge_namespace" .root.Release.Namespace) (list "indexforge_instance" .root.Release.Name) (list "component" .component) -}}
{{- $out := list -}}
{{- range $pairs -}}
{{- $out = append $out (dict $.key (index . 0) "replacement" (index . 1) "action" "replace") -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* indexforge.pyfloat: a number as Python's str(float) writes it (1 -> "1.0", 0.1 -> "0.1"). */}}
{{- define "indexforge.pyfloat" -}}
{{- $f := float64 . -}}
{{- if eq $f (floor $f) }}{{ printf "%.1f" $f }}{{ else }}{{ toString $f }}{{ end -}}
{{- end -}}
