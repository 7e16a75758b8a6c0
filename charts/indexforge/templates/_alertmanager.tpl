{{/*
Alert delivery, as the operator's builders/alertmanager.py: which receivers exist, the
standalone alertmanager.yml and the AlertmanagerConfig spec (prometheus-operator mode).
Receiver credentials stay in the user's Secret (monitoring.alertmanager.receiversSecretRef):
mounted and named by file standalone, referenced by key in the AlertmanagerConfig. Which
receivers exist depends on key names only: receiversSecretKeys when set, else the keys the
Secret has (`lookup`; `helm template` has no cluster, so GitOps renders set the list).
*/}}

{{/* indexforge.alertmanagerReceivers: JSON {slack, pagerduty, webhook, webhookToken, email, emailPassword} (dict root, spec). */}}
{{- define "indexforge.alertmanagerReceivers" -}}
{{- $am := .spec.monitoring.alertmanager -}}
{{- $keys := list -}}
{{- if $am.receiversSecretRef -}}
{{- if kindIs "slice" $am.receiversSecretKeys -}}
{{- $keys = $am.receiversSecretKeys -}}
{{- else -}}
{{- $secret := lookup "v1" "Secret" .root.Release.Namespace $am.receiversSecretRef.name | default dict -}}
{{- range $k, $v := ($secret.data | default dict) }}{{ if $v }}{{ $keys = append $keys $k }}{{ end }}{{ end -}}
{{- end -}}
{{- end -}}
{{- $webhook := not (empty $am.webhookUrl) -}}
{{- $email := not (empty $am.email.to) -}}
{{- dict "slack" (has "slack-api-url" $keys) "pagerduty" (has "pagerduty-routing-key" $keys) "webhook" $webhook "webhookToken" (and $webhook (has "webhook-bearer-token" $keys)) "email" $email "emailPassword" (and $email (has "smtp-auth-password" $keys)) | toJson -}}
{{- end -}}

{{/* indexforge.alertmanagerSlackText: the Slack message body (Alertmanager template syntax). */}}
{{- define "indexforge.alertmanagerSlackText" -}}
{{- "{{ range .Alerts }}*{{ .Labels.alertname }}* ({{ .Labels.severity }}) {{ .Annotations.summary }}\n{{ .Annotations.description }}\nRunbook: {{ .Annotations.runbook_url }}\n{{ end }}" -}}
{{- end -}}

{{/* indexforge.alertmanagerConfig: alertmanager.yml as JSON (dict root, spec). */}}
{{- define "indexforge.alertmanagerConfig" -}}
{{- $am := .spec.monitoring.alertmanager -}}
{{- $rec := include "indexforge.alertmanagerReceivers" . | fromJson -}}
{{- $dir := "/etc/alertmanager/receivers" -}}
{{- $critical := dict "name" "indexforge-critical" -}}
{{- $warning := dict "name" "indexforge-warning" -}}
{{- if $rec.pagerduty -}}
{{- $_ := set $critical "pagerduty_configs" (list (dict "routing_key_file" (printf "%s/pagerduty-routing-key" $dir) "send_resolved" true)) -}}
{{- end -}}
{{- if $rec.slack -}}
{{- $slack := dict "api_url_file" (printf "%s/slack-api-url" $dir) "send_resolved" true "text" (include "indexforge.alertmanagerSlackText" .) -}}
{{- with $am.slackChannel }}{{ $_ := set $slack "channel" . }}{{ end -}}
{{- $_ := set $critical "slack_configs" (list $slack) -}}
{{- $_ := set $warning "slack_configs" (list $slack) -}}
{{- end -}}
{{- if $rec.email -}}
{{- $mail := dict "to" $am.email.to "from" $am.email.fromAddress "smarthost" $am.email.smarthost "require_tls" $am.email.requireTls "send_resolved" true -}}
{{- with $am.email.authUsername }}{{ $_ := set $mail "auth_username" . }}{{ end -}}
{{- if $rec.emailPassword }}{{ $_ := set $mail "auth_password_file" (printf "%s/smtp-auth-password" $dir) }}{{ end -}}
{{- $_ := set $warning "email_configs" (list $mail) -}}
{{- end -}}
{{- if $rec.webhook -}}
{{- $hook := dict "url" $am.webhookUrl "send_resolved" true -}}
{{- if $rec.webhookToken }}{{ $_ := set $hook "http_config" (dict "authorization" (dict "credentials_file" (printf "%s/webhook-bearer-token" $dir))) }}{{ end -}}
{{- $_ := set $critical "webhook_configs" (list $hook) -}}
{{- $_ := set $warning "webhook_configs" (list $hook) -}}
{{- end -}}
{{- $route := dict
  "receiver" "indexforge-warning"
  "group_by" (list "alertname" "indexforge_namespace" "indexforge_instance")
  "group_wait" (printf "%ds" (int $am.groupWaitSeconds))
  "group_interval" (printf "%ds" (int $am.groupIntervalSeconds))
  "repeat_interval" (printf "%dm" (int $am.repeatIntervalMinutes))
  "routes" (list (dict "receiver" "indexforge-critical" "matchers" (list "severity=\"critical\"")) (dict "receiver" "indexforge-warning" "matchers" (list "severity=\"warning\""))) -}}
{{- $inhibit := list (dict "source_matchers" (list "severity=\"critical\"") "target_matchers" (list "severity=\"warning\"") "equal" (list "alertname" "indexforge_namespace" "indexforge_instance" "component")) -}}
{{- dict "route" $route "inhibit_rules" $inhibit "receivers" (list $critical $warning) | toJson -}}
{{- end -}}

{{/* indexforge.alertmanagerConfigSpec: the AlertmanagerConfig's spec as JSON (dict root, spec). */}}
{{- define "indexforge.alertmanagerConfigSpec" -}}
{{- $am := .spec.monitoring.alertmanager -}}
{{- $rec := include "indexforge.alertmanagerReceivers" . | fromJson -}}
{{- $secret := ($am.receiversSecretRef | default dict).name -}}
{{- $critical := dict "name" "indexforge-critical" -}}
{{- $warning := dict "name" "indexforge-warning" -}}
{{- if $rec.pagerduty -}}
{{- $_ := set $critical "pagerdutyConfigs" (list (dict "routingKey" (dict "name" $secret "key" "pagerduty-routing-key") "sendResolved" true)) -}}
{{- end -}}
{{- if $rec.slack -}}
{{- $slack := dict "apiURL" (dict "name" $secret "key" "slack-api-url") "sendResolved" true "text" (include "indexforge.alertmanagerSlackText" .) -}}
{{- with $am.slackChannel }}{{ $_ := set $slack "channel" . }}{{ end -}}
{{- $_ := set $critical "slackConfigs" (list $slack) -}}
{{- $_ := set $warning "slackConfigs" (list $slack) -}}
{{- end -}}
{{- if $rec.email -}}
{{- $mail := dict "to" $am.email.to "from" $am.email.fromAddress "smarthost" $am.email.smarthost "requireTLS" $am.email.requireTls "sendResolved" true -}}
{{- with $am.email.authUsername }}{{ $_ := set $mail "authUsername" . }}{{ end -}}
{{- if $rec.emailPassword }}{{ $_ := set $mail "authPassword" (dict "name" $secret "key" "smtp-auth-password") }}{{ end -}}
{{- $_ := set $warning "emailConfigs" (list $mail) -}}
{{- end -}}
{{- if $rec.webhook -}}
{{- $hook := dict "url" $am.webhookUrl "sendResolved" true -}}
{{- if $rec.webhookToken }}{{ $_ := set $hook "httpConfig" (dict "authorization" (dict "credentials" (dict "name" $secret "key" "webhook-bearer-token"))) }}{{ end -}}
{{- $_ := set $critical "webhookConfigs" (list $hook) -}}
{{- $_ := set $warning "webhookConfigs" (list $hook) -}}
{{- end -}}
{{- $critMatch := list (dict "name" "severity" "value" "critical" "matchType" "=") -}}
{{- $warnMatch := list (dict "name" "severity" "value" "warning" "matchType" "=") -}}
{{- $route := dict
  "receiver" "indexforge-warning"
  "groupBy" (list "alertname" "indexforge_namespace" "indexforge_instance")
  "groupWait" (printf "%ds" (int $am.groupWaitSeconds))
  "groupInterval" (printf "%ds" (int $am.groupIntervalSeconds))
  "repeatInterval" (printf "%dm" (int $am.repeatIntervalMinutes))
  "routes" (list (dict "receiver" "indexforge-critical" "matchers" $critMatch) (dict "receiver" "indexforge-warning" "matchers" $warnMatch)) -}}
{{- $inhibit := list (dict "sourceMatch" $critMatch "targetMatch" $warnMatch "equal" (list "alertname" "indexforge_namespace" "indexforge_instance" "component")) -}}
{{- dict "route" $route "receivers" (list $critical $warning) "inhibitRules" $inhibit | toJson -}}
{{- end -}}
