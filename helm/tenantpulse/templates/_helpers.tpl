{{/* Chart name, truncated to fit label values. */}}
{{- define "tenantpulse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object name prefix: "<release>-tenantpulse", or the release name when it already says tenantpulse. */}}
{{- define "tenantpulse.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "tenantpulse.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that never change for a component: used in selectors. Call with (dict "root" $ "component" "x"). */}}
{{- define "tenantpulse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tenantpulse.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/* Standard labels for every object. Call with (dict "root" $ "component" "x"); component may be empty. */}}
{{- define "tenantpulse.labels" -}}
helm.sh/chart: {{ include "tenantpulse.chart" .root }}
{{ include "tenantpulse.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: tenantpulse
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels for objects the Prometheus Operator selects (ServiceMonitor, PrometheusRule, AlertmanagerConfig). */}}
{{- define "tenantpulse.monitoringLabels" -}}
{{ include "tenantpulse.labels" . }}
{{- with .root.Values.monitoring.labels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "tenantpulse.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "tenantpulse.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tenantpulse.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Secret holding api-keys.yaml and pseudonymisation-secret. */}}
{{- define "tenantpulse.keysSecretName" -}}
{{- default (printf "%s-keys" (include "tenantpulse.fullname" .)) .Values.secret.existingSecret }}
{{- end }}

{{/* Secret holding slack-webhook-url and smtp-password for the AlertmanagerConfig. */}}
{{- define "tenantpulse.alertingSecretName" -}}
{{- default (printf "%s-alerting" (include "tenantpulse.fullname" .)) .Values.alertmanagerConfig.existingSecret }}
{{- end }}

{{/* Environment shared by every component: logs and tracing, OTLP or Jaeger Thrift (standard OTEL_* variables). */}}
{{- define "tenantpulse.commonEnv" -}}
- name: OTEL_SERVICE_NAME
  value: {{ printf "tenantpulse-%s" .component | quote }}
{{- with .root.Values.otel }}
{{- $jaeger := eq (.exporter | default "otlp") "jaeger" }}
{{- if $jaeger }}
- name: OTEL_TRACES_EXPORTER
  value: jaeger
{{- if .jaeger.endpoint }}
- name: OTEL_EXPORTER_JAEGER_ENDPOINT
  value: {{ .jaeger.endpoint | quote }}
{{- else }}
- name: OTEL_EXPORTER_JAEGER_AGENT_HOST
  value: {{ .jaeger.agentHost | quote }}
- name: OTEL_EXPORTER_JAEGER_AGENT_PORT
  value: {{ .jaeger.agentPort | toString | quote }}
{{- end }}
{{- else if .endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: http/protobuf
{{- end }}
{{- if or $jaeger .endpoint }}
- name: OTEL_TRACES_SAMPLER
  value: parentbased_traceidratio
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ .samplingRatio | toString | quote }}
{{- else }}
- name: OTEL_TRACES_EXPORTER
  value: none
{{- end }}
{{- $attrs := list (printf "service.namespace=%s" $.root.Release.Namespace) (printf "service.version=%s" $.root.Chart.AppVersion) }}
{{- range $k, $v := .resourceAttributes }}
{{- $attrs = append $attrs (printf "%s=%s" $k $v) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attrs | quote }}
{{- end }}
{{- end }}

{{/* ServiceMonitor authorization for the exporter when GET /metrics needs a key (exporter.metricsAuth). */}}
{{- define "tenantpulse.scrapeAuth" -}}
authorization:
  type: Bearer
  credentials:
    name: {{ include "tenantpulse.keysSecretName" . }}
    key: metrics-token
{{- end }}

{{/* "true" when the exporter erases tenants from the sidecar too (exporter.erasure.sidecar). */}}
{{- define "tenantpulse.erasesSidecar" -}}
{{- if and .Values.exporter.enabled .Values.sidecar.enabled .Values.exporter.erasure.sidecar }}true{{ end }}
{{- end }}

{{/* The sidecar the exporter erases from: its Service, or shard 0's own Service with several shards
(the shared one would pick a shard at random; the exporter takes one URL). */}}
{{- define "tenantpulse.sidecarUrl" -}}
{{- $name := printf "%s-sidecar" (include "tenantpulse.fullname" .) }}
{{- if gt (int .Values.sidecar.shards) 1 }}{{ $name = printf "%s-0" $name }}{{ end }}
{{- printf "%s://%s.%s.svc:%v" (include "tenantpulse.scheme" .) $name .Release.Namespace .Values.sidecar.service.port }}
{{- end }}

{{/* Changes whenever the keys a component reads may change, so its pods roll and read the new keys:
the values the keys Secret is made of, or the data of secret.existingSecret as found in the cluster at
upgrade. The sidecar's leaves out what only the exporter reads (pseudonym key, scrape token), so a
change there does not make the sidecar relearn. Call with (dict "root" $ "component" "exporter"). */}}
{{- define "tenantpulse.keysChecksum" -}}
{{- $values := .root.Values }}
{{- $existing := dict }}
{{- with $values.secret.existingSecret }}
{{- $existing = (lookup "v1" "Secret" $.root.Release.Namespace .).data | default dict }}
{{- end }}
{{- $inputs := dict "apiKeys" $values.secret.apiKeys "existingSecret" $values.secret.existingSecret "existing" $existing "erasesSidecar" (include "tenantpulse.erasesSidecar" .root) }}
{{- if eq .component "exporter" }}
{{- $_ := set $inputs "pseudonymisationSecret" $values.secret.pseudonymisationSecret }}
{{- $_ := set $inputs "metricsAuth" $values.exporter.metricsAuth }}
{{- end }}
{{- toJson $inputs | sha256sum }}
{{- end }}

{{/* "https" when both servers serve TLS (tls.secretName), else "http". */}}
{{- define "tenantpulse.scheme" -}}
{{- ternary "http" "https" (empty .Values.tls.secretName) }}
{{- end }}

{{/* Server flags, mount and volume for TLS; each empty without tls.secretName. */}}
{{- define "tenantpulse.tlsArgs" -}}
{{- if .Values.tls.secretName -}}
- --tls-cert=/etc/tenantpulse/tls/tls.crt
- --tls-key=/etc/tenantpulse/tls/tls.key
{{- end }}
{{- end }}

{{- define "tenantpulse.tlsMount" -}}
{{- if .Values.tls.secretName -}}
- name: tls
  mountPath: /etc/tenantpulse/tls
  readOnly: true
{{- end }}
{{- end }}

{{/* The certificate and key, and the CA (as ca.crt) when tls.caKey is set. Call with (dict "root" $), or (dict "root" $ "caOnly" true) for the CA only. */}}
{{- define "tenantpulse.tlsVolume" -}}
{{- with .root.Values.tls }}
{{- if .secretName -}}
- name: tls
  secret:
    secretName: {{ .secretName }}
    items:
      {{- if not $.caOnly }}
      - {key: tls.crt, path: tls.crt}
      - {key: tls.key, path: tls.key}
      {{- end }}
      {{- if .caKey }}
      - {key: {{ .caKey }}, path: ca.crt}
      {{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* ServiceMonitor endpoint fields for an HTTPS target; call with (dict "root" $ "service" "<Service name>"). */}}
{{- define "tenantpulse.scrapeTls" -}}
{{- with .root.Values.tls }}
{{- if .secretName -}}
scheme: https
tlsConfig:
  serverName: {{ printf "%s.%s.svc" $.service $.root.Release.Namespace }}
  {{- if .caKey }}
  ca:
    secret:
      name: {{ .secretName }}
      key: {{ .caKey }}
  {{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* The gateway's Service URL, as Grafana (and anything in the cluster) reaches it. */}}
{{- define "tenantpulse.gatewayUrl" -}}
{{- printf "%s://%s-gateway.%s.svc:%v" (include "tenantpulse.scheme" .) (include "tenantpulse.fullname" .) .Release.Namespace .Values.gateway.service.port }}
{{- end }}
