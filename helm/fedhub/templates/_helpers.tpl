{{/* Names and labels, as zero-to-jupyterhub and helm create name them. */}}
{{- define "fedhub.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "fedhub.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "fedhub.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "fedhub.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "fedhub.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fedhub.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: hub
{{- end -}}

{{/*
Where the hub's pod finds what the chart gives it. The image (helm/image/Dockerfile) installs
FedHub's wheel into /opt/fedhub/hub, with the project's hub config beside it.
*/}}
{{- define "fedhub.hubConfigFile" -}}/opt/fedhub/hub/share/fedhub/hub_config/jupyterhub_config.py{{- end -}}
{{- define "fedhub.chartDir" -}}/etc/fedhub/chart{{- end -}}
{{- define "fedhub.sshDir" -}}/etc/fedhub/ssh{{- end -}}
{{- define "fedhub.stateDir" -}}/var/lib/fedhub{{- end -}}

{{/*
A secret value: the one given in values, else the one this release's Secret already holds
(so an upgrade keeps it), else a new random one (64 hex digits).
*/}}
{{- define "fedhub.secretValue" -}}
{{- $given := index . 0 -}}{{- $existing := index . 1 -}}{{- $key := index . 2 -}}
{{- if $given -}}
{{- $given -}}
{{- else if and $existing (hasKey $existing.data $key) -}}
{{- index $existing.data $key | b64dec -}}
{{- else -}}
{{- randAlphaNum 128 | sha256sum -}}
{{- end -}}
{{- end -}}

{{/*
What the schema cannot say: checks across values, each failing with the value's name and the fix.
*/}}
{{- define "fedhub.validate" -}}
{{- $errors := list -}}
{{- $secrets := .Values.centreSecrets -}}
{{- $ids := list -}}
{{- range $i, $centre := .Values.federation.centres -}}
{{- $at := printf "federation.centres[%d] (%s)" $i $centre.id -}}
{{- if has $centre.id $ids -}}
{{- $errors = append $errors (printf "%s: the id %q is used by an earlier centre; give each centre its own id" $at $centre.id) -}}
{{- end -}}
{{- $ids = append $ids $centre.id -}}
{{- if ne $centre.scheduler.type "ssh" -}}
{{- $errors = append $errors (printf "%s.scheduler.type: %q cannot work in a pod: the hub's pod has no Slurm and no centre's slurm.conf. Reach the centre through its login node: scheduler: {type: ssh, host: <login node>, query_user: <login>}, with its key and host keys in centreSecrets.%s" $at $centre.scheduler.type $centre.id) -}}
{{- end -}}
{{- if not $centre.scheduler.host -}}
{{- $errors = append $errors (printf "%s.scheduler.host is required: the login node's host name or address" $at) -}}
{{- end -}}
{{- if not $centre.scheduler.query_user -}}
{{- $errors = append $errors (printf "%s.scheduler.query_user is required: the login the hub uses for centre-wide queries (all the hub's jobs, accounting)" $at) -}}
{{- end -}}
{{- if not (hasKey $secrets $centre.id) -}}
{{- $errors = append $errors (printf "centreSecrets.%s is missing: give the hub's ssh private key for %s's login node (sshPrivateKey) and the login node's pinned host keys (knownHosts, from ssh-keyscan, checked against what the centre publishes)" $centre.id $centre.id) -}}
{{- end -}}
{{- $mode := "direct" -}}
{{- if $centre.network -}}{{- $mode = default "direct" $centre.network.mode -}}{{- end -}}
{{- if and (eq $mode "direct") (not $centre.hub_connect_url) -}}
{{- $errors = append $errors (printf "%s.hub_connect_url is required with network mode direct: the hub's API as the centre's compute nodes reach it (through hub.apiService). Or use network: {mode: tunnel, ...}, which needs no way in to the cluster" $at) -}}
{{- end -}}
{{- end -}}
{{- range $id, $_ := $secrets -}}
{{- if not (has $id $ids) -}}
{{- $errors = append $errors (printf "centreSecrets.%s names no centre in federation.centres; remove it or fix the id" $id) -}}
{{- end -}}
{{- end -}}
{{- $hub := .Values.hub -}}
{{- if $hub.existingSecret -}}
{{- range $value := list (list "hub.cookieSecret" $hub.cookieSecret) (list "hub.cryptKey" $hub.cryptKey) (list "proxy.secretToken" $.Values.proxy.secretToken) (list "hub.db.url" $hub.db.url) (list "auth.oidc.clientSecret" $.Values.auth.oidc.clientSecret) -}}
{{- if index $value 1 -}}
{{- $errors = append $errors (printf "%s: hub.existingSecret holds the hub's secrets; leave %s empty and keep the value in that Secret" (index $value 0) (index $value 0)) -}}
{{- end -}}
{{- end -}}
{{- else if not $hub.cryptKey -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (printf "%s-hub" (include "fedhub.fullname" .)) -}}
{{- if not (and $existing (hasKey $existing.data "crypt-key")) -}}
{{- $errors = append $errors "hub.cryptKey is missing: give the key that encrypts the users' stored logins (openssl rand -hex 32), or keep it in a Secret of your own named by hub.existingSecret. The chart makes none up: under helm template or GitOps a made-up key would change at every render and make every stored login unreadable" -}}
{{- end -}}
{{- end -}}
{{- if .Values.networkPolicy.enabled -}}
{{- range $centre := .Values.federation.centres -}}
{{- if not (index $.Values.networkPolicy.loginNodes $centre.id) -}}
{{- $errors = append $errors (printf "networkPolicy.loginNodes.%s is missing: give the addresses of %s's login nodes as CIDRs (e.g. [192.0.2.10/32]); the hub's ssh may reach only them" $centre.id $centre.id) -}}
{{- end -}}
{{- end -}}
{{- range $id, $_ := .Values.networkPolicy.loginNodes -}}
{{- if not (has $id $ids) -}}
{{- $errors = append $errors (printf "networkPolicy.loginNodes.%s names no centre in federation.centres; remove it or fix the id" $id) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.auth.oidc.clientId (not .Values.networkPolicy.identityProvider) -}}
{{- $errors = append $errors "networkPolicy.identityProvider is missing: give the addresses of the federation's OpenID Connect provider as CIDRs; the hub's https may reach only them" -}}
{{- end -}}
{{- end -}}
{{- $oidc := .Values.auth.oidc -}}
{{- if and $oidc.clientId (not $oidc.clientSecret) (not $hub.existingSecret) -}}
{{- $errors = append $errors "auth.oidc.clientSecret is missing: give the client secret the federation's provider issued for auth.oidc.clientId" -}}
{{- end -}}
{{- if $oidc.clientId -}}
{{- range $key := list "authorizeUrl" "tokenUrl" "userdataUrl" -}}
{{- if not (index $oidc $key) -}}
{{- $errors = append $errors (printf "auth.oidc.%s is missing: give the provider's endpoint (its .well-known/openid-configuration lists it)" $key) -}}
{{- end -}}
{{- end -}}
{{- if not $.Values.hub.publicUrl -}}
{{- $errors = append $errors "hub.publicUrl is missing: the login's callback is made from it, e.g. https://notebooks.example.org/" -}}
{{- end -}}
{{- end -}}
{{- if $errors -}}
{{- fail (printf "the chart's values cannot work:\n- %s" (join "\n- " $errors)) -}}
{{/* helm lint logs a fail without failing: this line, never rendered otherwise, makes it fail */}}
fedhub-values-refused: [
{{- end -}}
{{- end -}}

{{/* The federation file: as in values, with each centre's key and host keys where the chart mounts them. */}}
{{- define "fedhub.federationFile" -}}
{{- $fed := deepCopy .Values.federation -}}
{{- $ssh := include "fedhub.sshDir" . -}}
{{- range $centre := $fed.centres -}}
{{- $_ := set $centre.scheduler "key_file" (printf "%s/%s.key" $ssh $centre.id) -}}
{{- $_ := set $centre.scheduler "known_hosts_file" (printf "%s/%s.known_hosts" $ssh $centre.id) -}}
{{- end -}}
{{- toYaml $fed -}}
{{- end -}}
