{{/*
Names and labels.
*/}}
{{- define "candor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "candor.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The name of one component's objects: (list $ "worker") -> r-candor-worker */}}
{{- define "candor.componentName" -}}
{{- $root := index . 0 }}
{{- printf "%s-%s" (include "candor.fullname" $root | trunc 50 | trimSuffix "-") (index . 1) }}
{{- end }}

{{- define "candor.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object of the release carries; NetworkPolicies select the release's pods by these. */}}
{{- define "candor.releaseSelectorLabels" -}}
app.kubernetes.io/name: {{ include "candor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selector labels of one component: (list $ "worker") */}}
{{- define "candor.selectorLabels" -}}
{{ include "candor.releaseSelectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* All labels of one component's objects: (list $ "worker") */}}
{{- define "candor.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ include "candor.chart" $root }}
{{ include "candor.selectorLabels" . }}
app.kubernetes.io/part-of: candor
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
{{- end }}

{{- define "candor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "candor.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Ports, fixed by the deployment contract: every template takes them from here.
*/}}
{{- define "candor.grpcPort" -}}7070{{- end }}
{{- define "candor.httpPort" -}}9090{{- end }}
{{- define "candor.simPort" -}}8089{{- end }}
{{- define "candor.redisPort" -}}6379{{- end }}

{{- define "candor.coordinatorUrl" -}}
http://{{ include "candor.componentName" (list . "coordinator") }}:{{ include "candor.grpcPort" . }}
{{- end }}

{{/* The URL (never with a password) of whichever Redis is in use; the schema makes sure exactly one is. */}}
{{- define "candor.redisUrl" -}}
{{- if .Values.redis.bundled.enabled }}
{{- printf "redis://%s:%s" (include "candor.componentName" (list . "redis")) (include "candor.redisPort" .) }}
{{- else }}
{{- .Values.redis.external.url }}
{{- end }}
{{- end }}

{{- define "candor.tokenSecretName" -}}
{{- default (printf "%s-token" (include "candor.fullname" .)) .Values.auth.tokenSecret.name }}
{{- end }}

{{/*
The archive (CANDOR_ARCHIVE). A file:// URL (or a plain absolute path) is a directory on a
PersistentVolumeClaim mounted at that path in the coordinator and every worker; s3://, gs://
and az:// need no volume. The schema allows only those forms, without credentials.
*/}}
{{- define "candor.archiveIsFile" -}}
{{- if or (hasPrefix "file://" .Values.archive.url) (not (contains "://" .Values.archive.url)) }}true{{ end }}
{{- end }}

{{- define "candor.archivePath" -}}
{{- trimPrefix "file://" .Values.archive.url }}
{{- end }}

{{- define "candor.archiveClaimName" -}}
{{- default (include "candor.componentName" (list . "archive")) .Values.archive.persistence.existingClaim }}
{{- end }}

{{/* Where archive.existingSecret is mounted; CANDOR_ARCHIVE_OPTIONS_FILE is its key there. */}}
{{- define "candor.archiveSecretDir" -}}/etc/candor/archive{{- end }}

{{/* An env var from a Secret key: (dict "name" "X" "secret" "s" "key" "k") */}}
{{- define "candor.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret | quote }}
      key: {{ .key | quote }}
{{- end }}

{{/*
The environment of candor's processes, in one place so that names cannot drift between them:
(dict "root" $ "component" "coordinator"|"worker"|"nightly"). See the contract's Environment.
*/}}
{{- define "candor.env" -}}
{{- $root := .root }}
{{- $c := .component }}
{{- $v := $root.Values }}
{{- if eq $c "coordinator" -}}
- name: CANDOR_LISTEN
  value: "0.0.0.0:{{ include "candor.grpcPort" $root }}"
{{- else -}}
- name: CANDOR_COORDINATOR
  value: {{ include "candor.coordinatorUrl" $root | quote }}
{{- end }}
{{ include "candor.secretEnv" (dict "name" "CANDOR_TOKEN" "secret" (include "candor.tokenSecretName" $root) "key" $v.auth.tokenSecret.key) }}
{{- if eq $c "nightly" }}
- name: CANDOR_RUN
  valueFrom:
    fieldRef:
      fieldPath: metadata.labels['batch.kubernetes.io/job-name']
{{- else }}
- name: CANDOR_HTTP
  value: "0.0.0.0:{{ include "candor.httpPort" $root }}"
- name: CANDOR_REDIS_URL
  value: {{ include "candor.redisUrl" $root | quote }}
{{- $pw := (ternary $v.redis.bundled $v.redis.external $v.redis.bundled.enabled).passwordSecret }}
{{- if $pw.name }}
{{ include "candor.secretEnv" (dict "name" "CANDOR_REDIS_PASSWORD" "secret" $pw.name "key" $pw.key) }}
{{- end }}
- name: CANDOR_LOG
  value: {{ $v.log | quote }}
{{- with $v.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- if ne $c "nightly" }}
- name: CANDOR_ARCHIVE
  value: {{ $v.archive.url | quote }}
{{- with $v.archive.existingSecret }}
- name: CANDOR_ARCHIVE_OPTIONS_FILE
  value: "{{ include "candor.archiveSecretDir" $root }}/{{ $v.archive.existingSecretKey }}"
{{- end }}
{{- range $name, $value := $v.archive.env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}
{{- if eq $c "coordinator" }}
- name: CANDOR_LEASE_TTL_MS
  value: {{ $v.coordinator.leaseTtlMs | quote }}
- name: CANDOR_RETENTION_DAYS
  value: {{ $v.coordinator.retentionDays | quote }}
- name: CANDOR_ARCHIVE_GC_GRACE_SECS
  value: {{ $v.archive.gcGraceSecs | quote }}
{{- end }}
{{- if eq $c "worker" }}
- name: CANDOR_CONCURRENCY
  value: {{ $v.worker.concurrency | quote }}
{{- with $v.worker.judgeConcurrency }}
- name: CANDOR_JUDGE_CONCURRENCY
  value: {{ . | quote }}
{{- end }}
- name: CANDOR_GRACE_SECS
  value: {{ $v.worker.graceSecs | quote }}
- name: CANDOR_CACHE_TTL_DAYS
  value: {{ $v.worker.cacheTtlDays | quote }}
{{- if $v.worker.noCache }}
- name: CANDOR_NO_CACHE
  value: "true"
{{- end }}
- name: CANDOR_WORKER_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- range $v.apiKeys }}
{{ include "candor.secretEnv" (dict "name" .name "secret" .secretName "key" .secretKey) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Pods.
*/}}
{{- define "candor.image" -}}
image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
imagePullPolicy: {{ .Values.image.pullPolicy }}
{{- end }}

{{/*
The pod-level fields every pod of the release shares:
(dict "root" $ "pod" .Values.worker [ "uid" 999 ]); uid defaults to the candor image's 65532.
*/}}
{{- define "candor.podSpec" -}}
{{- $root := .root }}
{{- $uid := .uid | default 65532 -}}
serviceAccountName: {{ include "candor.serviceAccountName" $root }}
automountServiceAccountToken: false
enableServiceLinks: false
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
{{- toYaml . | nindent 0 }}
{{- end }}
securityContext:
  runAsNonRoot: true
  runAsUser: {{ $uid }}
  runAsGroup: {{ $uid }}
  fsGroup: {{ $uid }}
  # A volume's files are re-owned only when its root is not fsGroup's already: not a walk over
  # every archive part at each pod start.
  fsGroupChangePolicy: OnRootMismatch
  seccompProfile:
    type: RuntimeDefault
{{- include "candor.scheduling" .pod }}
{{- end }}

{{/* nodeSelector, tolerations and affinity of one component's values */}}
{{- define "candor.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
{{- toYaml . | nindent 0 }}
{{- end }}
{{- with .affinity }}
affinity:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* A pod template's metadata: (list $ "worker" .Values.worker) */}}
{{- define "candor.podMetadata" -}}
labels:
  {{- include "candor.labels" (list (index . 0) (index . 1)) | nindent 2 }}
{{- with (index . 2).podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "candor.containerSecurityContext" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  capabilities:
    drop:
    - ALL
{{- end }}

{{/* The image's writable directories (the root filesystem is read-only) */}}
{{- define "candor.volumes" -}}
- name: tmp
  emptyDir: {}
- name: work
  emptyDir: {}
{{- end }}

{{- define "candor.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: work
  mountPath: /var/lib/candor
{{- end }}

{{/* The archive's volumes, in the coordinator and worker pods only (the nightly job reaches the
results through the coordinator): the claim of a file:// archive, the options Secret. */}}
{{- define "candor.archiveVolumes" -}}
{{- if include "candor.archiveIsFile" . }}
- name: archive
  persistentVolumeClaim:
    claimName: {{ include "candor.archiveClaimName" . }}
{{- end }}
{{- with .Values.archive.existingSecret }}
- name: archive-options
  secret:
    secretName: {{ . | quote }}
    defaultMode: 0440
{{- end }}
{{- end }}

{{- define "candor.archiveVolumeMounts" -}}
{{- if include "candor.archiveIsFile" . }}
- name: archive
  mountPath: {{ include "candor.archivePath" . }}
{{- end }}
{{- if .Values.archive.existingSecret }}
- name: archive-options
  mountPath: {{ include "candor.archiveSecretDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/* envFrom of archive.envFromSecret: SDK variables (AWS_ACCESS_KEY_ID, ...) from a Secret. */}}
{{- define "candor.archiveEnvFrom" -}}
{{- with .Values.archive.envFromSecret }}
envFrom:
- secretRef:
    name: {{ . | quote }}
{{- end }}
{{- end }}

{{/* readiness and liveness over HTTP: (dict "ready" "/readyz" "port" "http") */}}
{{- define "candor.httpProbes" -}}
readinessProbe:
  httpGet:
    path: {{ .ready }}
    port: {{ .port }}
  periodSeconds: 5
  failureThreshold: 3
livenessProbe:
  httpGet:
    path: /healthz
    port: {{ .port }}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
{{- end }}

{{/*
A string as a YAML literal block whose lines sit at column 4 (ConfigMap data under `data:`).
Unlike toYaml's, its blank lines stay empty (no trailing spaces); line breaks are kept exactly.
*/}}
{{- define "candor.literal4" -}}
{{- $t := . }}
{{- if or (eq (trimAll "\n" $t) "") (contains "\r" $t) }}
{{- toJson $t }}
{{- else }}
{{- $chomp := "-" }}
{{- if hasSuffix "\n\n" $t }}{{ $chomp = "+" }}{{ else if hasSuffix "\n" $t }}{{ $chomp = "" }}{{ end }}
{{- $body := ternary (trimSuffix "\n" $t) $t (hasSuffix "\n" $t) -}}
|{{ if regexMatch "^\n*[ ]" $body }}2{{ end }}{{ $chomp }}
{{- range splitList "\n" $body }}
{{ if . }}    {{ . }}{{ end }}
{{- end }}
{{- end }}
{{- end }}
