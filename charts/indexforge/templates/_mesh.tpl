{{/*
Istio mesh mode, as the operator's builders/mesh.py (read its docstring for the why):
sidecar labels on our pod templates, metrics ports left out of the sidecar, Prometheus and
Alertmanager out of the mesh; per meshed component a PeerAuthentication (STRICT, PERMISSIVE on
ports that sources outside the mesh use), an AuthorizationPolicy made from the NetworkPolicies'
flow table (our components by ServiceAccount principal; none: allow nothing) and, for what
meshed clients connect to, DestinationRules with ISTIO_MUTUAL.
*/}}

{{- define "indexforge.istioApi" -}}security.istio.io/v1/PeerAuthentication{{- end -}}
{{- define "indexforge.outOfMesh" -}}{{ list "prometheus" "alertmanager" | toJson }}{{- end -}}

{{/* indexforge.resolveMesh: mesh.mode auto -> istio when Istio's API is served (dict root, spec). */}}
{{- define "indexforge.resolveMesh" -}}
{{- if eq .spec.mesh.mode "auto" -}}
{{- $_ := set .spec.mesh "mode" (ternary "istio" "none" (.root.Capabilities.APIVersions.Has (include "indexforge.istioApi" .))) -}}
{{- end -}}
{{- end -}}

{{/* indexforge.metricsPorts: a component's ports only Prometheus uses, as a JSON list (dict spec, component). */}}
{{- define "indexforge.metricsPorts" -}}
{{- $out := list -}}
{{- range include "indexforge.scrapeTargets" (dict "spec" .spec) | fromJsonArray -}}
{{- if eq .component $.component }}{{ $out = append $out (int .port) }}{{ end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* indexforge.meshPod: {"labels", "annotations"} of a pod template for the mesh, JSON (dict root, spec, component). */}}
{{- define "indexforge.meshPod" -}}
{{- $labels := dict -}}
{{- $annotations := dict -}}
{{- if eq .spec.mesh.mode "istio" -}}
{{- if has .component (include "indexforge.outOfMesh" . | fromJsonArray) -}}
{{- /* Explicit: a namespace labelled istio-injection=enabled would inject. */ -}}
{{- $_ := set $labels "sidecar.istio.io/inject" "false" -}}
{{- else -}}
{{- $_ := set $labels "sidecar.istio.io/inject" "true" -}}
{{- $excluded := list -}}
{{- range include "indexforge.metricsPorts" . | fromJsonArray }}{{ $excluded = append $excluded (int .) }}{{ end -}}
{{- if $excluded }}{{ $_ := set $annotations "traffic.sidecar.istio.io/excludeInboundPorts" (join "," $excluded) }}{{ end -}}
{{- /* Backup Job pods must end: the proxy as a native sidecar stops with the job. */ -}}
{{- if eq .component "backup" }}{{ $_ := set $annotations "sidecar.istio.io/nativeSidecar" "true" }}{{ end -}}
{{- end -}}
{{- else if .root.Capabilities.APIVersions.Has (include "indexforge.istioApi" .) -}}
{{- /* Istio installed, mesh mode none: the pods opt out (see builders/mesh.py inject). */ -}}
{{- $_ := set $labels "sidecar.istio.io/inject" "false" -}}
{{- end -}}
{{- dict "labels" $labels "annotations" $annotations | toJson -}}
{{- end -}}

{{/* indexforge.meshPodLabels / meshPodAnnotations: the lines to add to a pod template's labels / annotations ("" without Istio; dict root, spec, component). */}}
{{- define "indexforge.meshPodLabels" -}}
{{- with (include "indexforge.meshPod" . | fromJson).labels }}{{ toYaml . }}{{ end -}}
{{- end -}}
{{- define "indexforge.meshPodAnnotations" -}}
{{- with (include "indexforge.meshPod" . | fromJson).annotations }}{{ toYaml . }}{{ end -}}
{{- end -}}

{{/* indexforge.withMeshPod: a pod template (YAML text) with its mesh labels and annotations (dict root, spec, component, template). */}}
{{- define "indexforge.withMeshPod" -}}
{{- $m := include "indexforge.meshPod" . | fromJson -}}
{{- if $m.labels -}}
{{- $t := fromYaml .template -}}
{{- $_ := set $t.metadata "labels" (merge $m.labels $t.metadata.labels) -}}
{{- if $m.annotations }}{{ $_ := set $t.metadata "annotations" (merge $m.annotations (default dict $t.metadata.annotations)) }}{{ end -}}
{{- toYaml $t -}}
{{- else -}}
{{- .template -}}
{{- end -}}
{{- end -}}

{{/*
indexforge.meshObjects: the Istio objects (dict root, spec, flows, present): `flows` and
`present` are networkpolicies.yaml's own flow table and component list, so the
AuthorizationPolicies can never disagree with the NetworkPolicies.
*/}}
{{- define "indexforge.meshObjects" -}}
{{- $root := .root -}}
{{- $spec := .spec -}}
{{- $members := list -}}
{{- $out := include "indexforge.outOfMesh" . | fromJsonArray -}}
{{- range .present }}{{ if not (has . $out) }}{{ $members = append $members . }}{{ end }}{{ end -}}
{{- range $component := $members -}}
{{- $ctx := dict "root" $root "component" $component -}}
{{- $excluded := list -}}
{{- range include "indexforge.metricsPorts" (dict "spec" $spec "component" $component) | fromJsonArray }}{{ $excluded = append $excluded (int .) }}{{ end -}}
{{- $permissive := dict -}}
{{- $rules := list -}}
{{- $meshedClient := false -}}
{{- range $.flows -}}
{{- $src := index . 0 -}}
{{- if eq (index . 1) $component -}}
{{- $ports := list -}}
{{- range index . 2 }}{{ if not (has (int .) $excluded) }}{{ $ports = append $ports (toString .) }}{{ end }}{{ end -}}
{{- if $ports -}}
{{- $rule := dict "to" (list (dict "operation" (dict "ports" $ports))) -}}
{{- if has $src $members -}}
{{- $meshedClient = true -}}
{{- $_ := set $rule "from" (list (dict "source" (dict "principals" (list (printf "%s/ns/%s/sa/%s-%s" $spec.mesh.trustDomain $root.Release.Namespace $root.Release.Name $src))))) -}}
{{- else -}}
{{- range $ports }}{{ $_ := set $permissive . (dict "mode" "PERMISSIVE") }}{{ end -}}
{{- end -}}
{{- if not (has $rule $rules) }}{{ $rules = append $rules $rule }}{{ end -}}
{{- end -}}
{{- end -}}
{{- end }}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  {{- include "indexforge.metadata" (merge (dict "name" (include "indexforge.name" $ctx)) $ctx) | nindent 2 }}
spec:
  selector:
    matchLabels:
      {{- include "indexforge.selectorLabels" $ctx | nindent 6 }}
  mtls:
    mode: STRICT
  {{- with $permissive }}
  portLevelMtls:
    {{- toYaml . | nindent 4 }}
  {{- end }}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  {{- include "indexforge.metadata" (merge (dict "name" (include "indexforge.name" $ctx)) $ctx) | nindent 2 }}
spec:
  selector:
    matchLabels:
      {{- include "indexforge.selectorLabels" $ctx | nindent 6 }}
  action: ALLOW
  {{- with $rules }}
  rules:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- if $meshedClient }}
{{- range $service := list (include "indexforge.name" $ctx) (printf "%s-headless" (include "indexforge.name" $ctx)) }}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  {{- include "indexforge.metadata" (merge (dict "name" $service) $ctx) | nindent 2 }}
spec:
  host: {{ $service }}
  exportTo: ["."]
  trafficPolicy:
    tls:
      mode: ISTIO_MUTUAL
{{- end }}
{{- end }}
{{- end }}
{{- end -}}
