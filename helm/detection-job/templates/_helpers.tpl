{{/*
Names. Everything is cut to 52 characters: a CronJob's name is at most 52 long, because the
Jobs it creates append an 11-character suffix and must stay within 63.
*/}}
{{- define "detection-job.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "detection-job.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A name for one of the release's other objects: the full name cut so that "-suffix" fits in 52. */}}
{{- define "detection-job.suffixed" -}}
{{- $root := index . 0 -}}
{{- $suffix := index . 1 -}}
{{- printf "%s-%s" (include "detection-job.fullname" $root | trunc (int (sub 51 (len $suffix))) | trimSuffix "-") $suffix -}}
{{- end -}}

{{- define "detection-job.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "detection-job.selectorLabels" -}}
app.kubernetes.io/name: {{ include "detection-job.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "detection-job.labels" -}}
helm.sh/chart: {{ include "detection-job.chart" . }}
{{ include "detection-job.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: detection-job
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "detection-job.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "detection-job.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "detection-job.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Where the pod finds things. Fixed paths: the settings below point at them. */}}
{{- define "detection-job.paths" -}}
secrets: /var/run/secrets/detection-job
ca: /etc/detection-job/ca
clientCert: /etc/detection-job/client
rules: /etc/detection-job/rules
tmp: /tmp
{{- end -}}

{{/* Is a rules folder mounted (an existing ConfigMap, or the chart's own from inline files)? */}}
{{- define "detection-job.rulesConfigMap" -}}
{{- if .Values.rulesConfigMap.name -}}
{{- .Values.rulesConfigMap.name -}}
{{- else if .Values.rules -}}
{{- include "detection-job.suffixed" (list . "rules") -}}
{{- end -}}
{{- end -}}

{{/*
The key of an inline rule file in the chart's ConfigMap. ConfigMap keys cannot hold "/", so
"exceptions/x.toml" is stored as "exceptions..x.toml" ("..": the schema keeps it out of file names)
and mounted back at its path through the volume's items.
*/}}
{{- define "detection-job.ruleKey" -}}
{{- . | replace "/" ".." -}}
{{- end -}}

{{/*
The pod's security context, both levels: the restricted Pod Security Standard, with the image's
numeric user.
*/}}
{{- define "detection-job.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "detection-job.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Environment of the job's container. Argument: (list $ "runtime"|"setup").
*/}}
{{- define "detection-job.env" -}}
{{- $root := index . 0 -}}
{{- $role := index . 1 -}}
{{- $paths := include "detection-job.paths" $root | fromYaml -}}
{{- $v := $root.Values -}}
{{- $es := $v.elasticsearch -}}
{{- $creds := ternary $v.setup.credentials $v.credentials (eq $role "setup") -}}
- name: DETECTION_ES_HOSTS
  value: {{ join "," $es.hosts | quote }}
- name: DETECTION_ES_VERIFY_CERTS
  value: {{ $es.verifyCerts | quote }}
{{- if $es.requestTimeout }}
- name: DETECTION_ES_REQUEST_TIMEOUT
  value: {{ $es.requestTimeout | quote }}
{{- end }}
{{- if $creds.existingSecret }}
- name: DETECTION_SECRETS_DIR
  value: {{ $paths.secrets | quote }}
{{- end }}
{{- if or $es.ca.secretName $es.ca.configMapName }}
- name: DETECTION_ES_CA_CERTS
  value: {{ printf "%s/ca.crt" $paths.ca | quote }}
{{- end }}
{{- if $es.clientCert.secretName }}
- name: DETECTION_ES_CLIENT_CERT
  value: {{ printf "%s/tls.crt" $paths.clientCert | quote }}
- name: DETECTION_ES_CLIENT_KEY
  value: {{ printf "%s/tls.key" $paths.clientCert | quote }}
{{- end }}
{{- if include "detection-job.rulesConfigMap" $root }}
- name: DETECTION_RULES_DIR
  value: {{ $paths.rules | quote }}
{{- end }}
{{- with $v.config }}
{{- if .alertsIndex }}
- name: DETECTION_ALERTS_INDEX
  value: {{ .alertsIndex | quote }}
{{- end }}
{{- if .executionsIndex }}
- name: DETECTION_EXECUTIONS_INDEX
  value: {{ .executionsIndex | quote }}
{{- end }}
{{- if .deadLetterIndex }}
- name: DETECTION_DEAD_LETTER_INDEX
  value: {{ .deadLetterIndex | quote }}
{{- end }}
{{- if .spaceId }}
- name: DETECTION_SPACE_ID
  value: {{ .spaceId | quote }}
{{- end }}
{{- if .alertsMax }}
- name: DETECTION_ALERTS_MAX
  value: {{ .alertsMax | quote }}
{{- end }}
- name: DETECTION_LOG_FORMAT
  value: {{ .logFormat | quote }}
- name: DETECTION_LOG_LEVEL
  value: {{ .logLevel | quote }}
{{- if and (ne $role "setup") .runTimeout }}
- name: DETECTION_RUN_TIMEOUT
  value: {{ .runTimeout | quote }}
{{- end }}
{{- end }}
{{- if ne $role "setup" }}
{{- if eq $v.mode "deployment" }}
- name: DETECTION_HTTP_PORT
  value: {{ $v.deployment.httpPort | quote }}
- name: DETECTION_SHUTDOWN_GRACE
  value: {{ printf "%ds" (int $v.deployment.shutdownGrace) | quote }}
{{- else }}
{{- if gt (int $v.shards) 1 }}
- name: DETECTION_SHARDS
  value: {{ $v.shards | quote }}
{{- end }}
{{- with $v.metrics.pushgatewayUrl }}
- name: DETECTION_PUSHGATEWAY_URL
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- with $v.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Volume mounts of the job's container. Argument: (list $ "runtime"|"setup"). */}}
{{- define "detection-job.volumeMounts" -}}
{{- $root := index . 0 -}}
{{- $role := index . 1 -}}
{{- $paths := include "detection-job.paths" $root | fromYaml -}}
{{- $v := $root.Values -}}
{{- $creds := ternary $v.setup.credentials $v.credentials (eq $role "setup") -}}
- name: tmp
  mountPath: {{ $paths.tmp }}
{{- if $creds.existingSecret }}
- name: credentials
  mountPath: {{ $paths.secrets }}
  readOnly: true
{{- end }}
{{- if or $v.elasticsearch.ca.secretName $v.elasticsearch.ca.configMapName }}
- name: ca
  mountPath: {{ $paths.ca }}
  readOnly: true
{{- end }}
{{- if $v.elasticsearch.clientCert.secretName }}
- name: client-cert
  mountPath: {{ $paths.clientCert }}
  readOnly: true
{{- end }}
{{- if and (ne $role "setup") (include "detection-job.rulesConfigMap" $root) }}
- name: rules
  mountPath: {{ $paths.rules }}
  readOnly: true
{{- end }}
{{- with $v.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Volumes of the pod. Argument: (list $ "runtime"|"setup"). */}}
{{- define "detection-job.volumes" -}}
{{- $root := index . 0 -}}
{{- $role := index . 1 -}}
{{- $v := $root.Values -}}
{{- $es := $v.elasticsearch -}}
{{- $creds := ternary $v.setup.credentials $v.credentials (eq $role "setup") -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ $v.tmpSizeLimit }}
{{- if $creds.existingSecret }}
- name: credentials
  secret:
    secretName: {{ $creds.existingSecret }}
    defaultMode: 0440
    items:
    {{- if $creds.apiKeyKey }}
      - key: {{ $creds.apiKeyKey }}
        path: detection_es_api_key
    {{- else }}
      - key: {{ $creds.usernameKey }}
        path: detection_es_username
      - key: {{ $creds.passwordKey }}
        path: detection_es_password
    {{- end }}
{{- end }}
{{- if $es.ca.secretName }}
- name: ca
  secret:
    secretName: {{ $es.ca.secretName }}
    defaultMode: 0444
    items:
      - key: {{ $es.ca.key }}
        path: ca.crt
{{- else if $es.ca.configMapName }}
- name: ca
  configMap:
    name: {{ $es.ca.configMapName }}
    defaultMode: 0444
    items:
      - key: {{ $es.ca.key }}
        path: ca.crt
{{- end }}
{{- if $es.clientCert.secretName }}
- name: client-cert
  secret:
    secretName: {{ $es.clientCert.secretName }}
    defaultMode: 0440
    items:
      - key: {{ $es.clientCert.certKey }}
        path: tls.crt
      - key: {{ $es.clientCert.keyKey }}
        path: tls.key
{{- end }}
{{- if and (ne $role "setup") (include "detection-job.rulesConfigMap" $root) }}
- name: rules
  configMap:
    name: {{ include "detection-job.rulesConfigMap" $root }}
    defaultMode: 0444
    {{- if $v.rulesConfigMap.name }}
    {{- with $v.rulesConfigMap.items }}
    items: {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- else }}
    items:
    {{- range $path, $_ := $v.rules }}
      - key: {{ include "detection-job.ruleKey" $path }}
        path: {{ $path }}
    {{- end }}
    {{- end }}
{{- end }}
{{- with $v.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The pod spec fields every workload shares. Argument: (list $ serviceAccountName). */}}
{{- define "detection-job.podCommon" -}}
{{- $sa := index . 1 -}}
{{- with index . 0 -}}
serviceAccountName: {{ $sa }}
automountServiceAccountToken: false
securityContext:
  {{- include "detection-job.podSecurityContext" . | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}
{{- end -}}
