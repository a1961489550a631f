{{/* The chart name (nameOverride replaces it). */}}
{{- define "heat-reconciler.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every object name. */}}
{{- define "heat-reconciler.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* A component's object name: (dict "ctx" $ "component" "monitor"). */}}
{{- define "heat-reconciler.componentName" -}}
{{- printf "%s-%s" (include "heat-reconciler.fullname" .ctx) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "heat-reconciler.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels that select a component's pods: (dict "ctx" $ "component" "controller"). */}}
{{- define "heat-reconciler.selectorLabels" -}}
app.kubernetes.io/name: {{ include "heat-reconciler.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/* The standard labels of every object: (dict "ctx" $ "component" "controller"); an empty
component for objects shared by all. */}}
{{- define "heat-reconciler.labels" -}}
helm.sh/chart: {{ include "heat-reconciler.chart" .ctx }}
{{ include "heat-reconciler.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Values.image.tag | default .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: heat-reconciler
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end }}

{{- define "heat-reconciler.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}
{{- end }}

{{/* The ServiceAccount of controller and monitor (no Kubernetes API access, no token). */}}
{{- define "heat-reconciler.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- include "heat-reconciler.fullname" . }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The mirror's ServiceAccount (bound to the mirror's Role). */}}
{{- define "heat-reconciler.mirrorServiceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- include "heat-reconciler.componentName" (dict "ctx" . "component" "mirror") }}
{{- else }}
{{- required "serviceAccount.mirrorName is required when serviceAccount.create is false and the mirror is enabled" .Values.serviceAccount.mirrorName }}
{{- end }}
{{- end }}

{{- define "heat-reconciler.mirrorNamespace" -}}
{{- default .Release.Namespace .Values.mirror.namespace }}
{{- end }}

{{- define "heat-reconciler.keystoneSecretName" -}}
{{- default (printf "%s-keystone" (include "heat-reconciler.fullname" .)) .Values.keystone.secretName }}
{{- end }}

{{- define "heat-reconciler.monitorTokenSecretName" -}}
{{- default (printf "%s-monitor-token" (include "heat-reconciler.fullname" .)) .Values.monitor.tokenSecret }}
{{- end }}

{{/* Checks of values that would otherwise fail only at run time. */}}
{{- define "heat-reconciler.validate" -}}
{{- if not (has .Values.logFormat (list "json" "text")) }}
{{- fail (printf "logFormat must be json or text, not %q" .Values.logFormat) }}
{{- end }}
{{- if not .Values.etcd.endpoints }}
{{- fail "etcd.endpoints must name at least one etcd client URL" }}
{{- end }}
{{- if and .Values.etcd.auth.user (not .Values.etcd.auth.passwordSecret) }}
{{- fail "etcd.auth.passwordSecret is required when etcd.auth.user is set" }}
{{- end }}
{{- end }}

{{/* Flags every component takes: log format, schema, etcd access, leases, metrics. Secrets are
only ever file paths here. */}}
{{- define "heat-reconciler.commonArgs" -}}
- --log-format={{ .Values.logFormat }}
{{- if .Values.schemaConfigMap }}
- --schema-dir=/etc/heat-reconciler/schema
{{- end }}
- --etcd-endpoints={{ join "," .Values.etcd.endpoints }}
{{- if .Values.etcd.tls.secretName }}
- --etcd-ca-file=/etc/heat-reconciler/etcd-tls/ca.crt
{{- if .Values.etcd.tls.clientCertificate }}
- --etcd-cert-file=/etc/heat-reconciler/etcd-tls/tls.crt
- --etcd-key-file=/etc/heat-reconciler/etcd-tls/tls.key
{{- end }}
{{- end }}
{{- if .Values.etcd.auth.user }}
- --etcd-user={{ .Values.etcd.auth.user }}
- --etcd-password-file=/etc/heat-reconciler/etcd-auth/password
{{- end }}
- --leader-ttl={{ .Values.leaderTtl }}
- --resync-interval={{ .Values.resyncInterval }}
- --metrics-listen=0.0.0.0:{{ .Values.metrics.port }}
{{- end }}

{{- define "heat-reconciler.commonEnv" -}}
- name: RUST_LOG
  value: {{ .Values.logLevel | quote }}
{{- end }}

{{- define "heat-reconciler.commonVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.schemaConfigMap }}
- name: schema
  mountPath: /etc/heat-reconciler/schema
  readOnly: true
{{- end }}
{{- if .Values.etcd.tls.secretName }}
- name: etcd-tls
  mountPath: /etc/heat-reconciler/etcd-tls
  readOnly: true
{{- end }}
{{- if .Values.etcd.auth.user }}
- name: etcd-auth
  mountPath: /etc/heat-reconciler/etcd-auth
  readOnly: true
{{- end }}
{{- end }}

{{/* Secret files are readable by the pod's group (fsGroup) only: defaultMode 288 = 0440. */}}
{{- define "heat-reconciler.commonVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- if .Values.schemaConfigMap }}
- name: schema
  configMap:
    name: {{ .Values.schemaConfigMap }}
{{- end }}
{{- if .Values.etcd.tls.secretName }}
- name: etcd-tls
  secret:
    secretName: {{ .Values.etcd.tls.secretName }}
    defaultMode: 288
    items:
      - key: ca.crt
        path: ca.crt
      {{- if .Values.etcd.tls.clientCertificate }}
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
      {{- end }}
{{- end }}
{{- if .Values.etcd.auth.user }}
- name: etcd-auth
  secret:
    secretName: {{ .Values.etcd.auth.passwordSecret }}
    defaultMode: 288
    items:
      - key: {{ .Values.etcd.auth.passwordKey }}
        path: password
{{- end }}
{{- end }}

{{/* Liveness and readiness on the metrics port. */}}
{{- define "heat-reconciler.probes" -}}
livenessProbe:
  httpGet:
    path: /healthz
    port: metrics
  periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
  timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
  failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
readinessProbe:
  httpGet:
    path: /readyz
    port: metrics
  periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
  timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
  failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
{{- end }}

{{/* Pod-level settings shared by every component: (dict "ctx" $ "component" "controller"). */}}
{{- define "heat-reconciler.podSettings" -}}
{{- $ctx := .ctx -}}
{{- with $ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $ctx.Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $ctx.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $ctx.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $ctx.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $ctx.Values.spreadAcrossNodes }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "heat-reconciler.selectorLabels" . | nindent 8 }}
{{- end }}
securityContext:
  {{- toYaml $ctx.Values.podSecurityContext | nindent 2 }}
{{- /* No Service environment variables: their HEAT_RECONCILER_*-like names could shadow the
binary's own environment settings. */}}
enableServiceLinks: false
{{- end }}

{{/* The container's security context and port list head. */}}
{{- define "heat-reconciler.containerSecurity" -}}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
{{- end }}

{{/* A PodDisruptionBudget (minAvailable 1) when the component runs at least 2 replicas:
(dict "ctx" $ "component" "controller" "values" .Values.controller). */}}
{{- define "heat-reconciler.pdb" }}
{{- if and .values.podDisruptionBudget.enabled (ge (int .values.replicas) 2) }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "heat-reconciler.componentName" . }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "heat-reconciler.labels" . | nindent 4 }}
spec:
  minAvailable: 1
  selector:
    matchLabels:
      {{- include "heat-reconciler.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end }}

{{/* A Service exposing the metrics port (and `extraPorts`): (dict "ctx" $ "component" "mirror"
"type" "ClusterIP" "annotations" (dict) "extraPorts" (list)). */}}
{{- define "heat-reconciler.service" }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ include "heat-reconciler.componentName" . }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "heat-reconciler.labels" . | nindent 4 }}
  {{- with (merge (dict) (.annotations | default dict) .ctx.Values.metrics.serviceAnnotations) }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ .type | default "ClusterIP" }}
  selector:
    {{- include "heat-reconciler.selectorLabels" . | nindent 4 }}
  ports:
    {{- range .extraPorts }}
    - name: {{ .name }}
      port: {{ .port }}
      targetPort: {{ .name }}
      protocol: TCP
    {{- end }}
    - name: metrics
      port: {{ .ctx.Values.metrics.port }}
      targetPort: metrics
      protocol: TCP
{{- end }}
