{{/* NetworkPolicy pieces: (list $ "worker") selects one component's pods. */}}
{{- define "candor.np.peer" -}}
- podSelector:
    matchLabels:
      {{- include "candor.selectorLabels" . | nindent 6 }}
{{- end }}

{{/* An egress rule to one component on a TCP port: (list $ "coordinator" 7070) */}}
{{- define "candor.np.egressTo" -}}
- to:
  {{- include "candor.np.peer" (list (index . 0) (index . 1)) | nindent 2 }}
  ports:
  - port: {{ index . 2 }}
    protocol: TCP
{{- end }}

{{- define "candor.np.dns" -}}
- to:
  - namespaceSelector:
      matchLabels:
        kubernetes.io/metadata.name: kube-system
  ports:
  - port: 53
    protocol: UDP
  - port: 53
    protocol: TCP
{{- end }}

{{/* Who may scrape /metrics: networkPolicy.metricsFrom (may be empty) */}}
{{- define "candor.np.metricsRule" -}}
{{- with .Values.networkPolicy.metricsFrom -}}
- from:
  {{- toYaml . | nindent 2 }}
  ports:
  - port: {{ include "candor.httpPort" $ }}
    protocol: TCP
{{- end }}
{{- end }}

{{/* The header of one component's policy: (list $ "worker") */}}
{{- define "candor.np.meta" -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "candor.componentName" . }}
  labels:
    {{- include "candor.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "candor.selectorLabels" . | nindent 6 }}
{{- end }}
