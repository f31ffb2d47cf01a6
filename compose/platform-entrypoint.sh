#!/bin/sh
# Entry point of the platform image (docker-compose.yml).
#   agc-entrypoint init          one-shot, as root: generate the secrets that are missing into
#                                $AGC_SECRETS_DIR (a named volume); what exists is kept, so a
#                                restart or a re-run never rotates a key
#   agc-entrypoint agcluster ... AGC_SECRET_KEY from the environment (.env) or, when unset,
#                                from the volume; then exec the command (never via argv)
#   agc-entrypoint CMD ...       exec CMD (nats-server, redis-server)
set -eu
SECRETS="${AGC_SECRETS_DIR:-/run/agc-secrets}"

case "${1:-}" in
init)
  umask 077
  mkdir -p "$SECRETS"
  if [ -s "$SECRETS/secret.key" ]; then
    echo "init: AGC_SECRET_KEY present in $SECRETS"
  else
    python3 -c 'import secrets; print(secrets.token_urlsafe(32))' >"$SECRETS/secret.key.tmp"
    mv "$SECRETS/secret.key.tmp" "$SECRETS/secret.key"
    echo "init: generated AGC_SECRET_KEY into $SECRETS"
  fi
  # the API runs as agc (uid 1000), the worker as root: both read, nobody else
  chown -R 1000:1000 "$SECRETS"
  chmod 0500 "$SECRETS"
  find "$SECRETS" -type f -exec chmod 0400 {} +
  exit 0
  ;;
agcluster)
  if [ -z "${AGC_SECRET_KEY:-}" ]; then
    if [ ! -r "$SECRETS/secret.key" ]; then
      echo "agc-entrypoint: $SECRETS/secret.key missing: the init service has not run" >&2
      exit 1
    fi
    AGC_SECRET_KEY="$(cat "$SECRETS/secret.key")"
    export AGC_SECRET_KEY
  fi
  ;;
esac
exec "$@"
