#!/bin/sh
# Keep the default user's passwords equal to the lines of $REDIS_PASSWORDS_FILE.
set -u
port="${REDIS_PORT:-6379}"
interval="${REDIS_ACL_SYNC_SECONDS:-2}"
applied=""
exporter_has=""
exporter_warned=""
while :; do
  wanted="$(grep -v '^[[:space:]]*$' "$REDIS_PASSWORDS_FILE" 2>/dev/null || true)"
  if [ -n "$wanted" ] && [ "$wanted" != "$applied" ]; then
    rules=""
    for p in $wanted; do rules="$rules >$p"; done
    done_ok=""
    for auth in $wanted $applied; do
      out="$(printf 'ACL SETUSER default on resetpass%s ~* &* +@all\n' "$rules" \
        | REDISCLI_AUTH="$auth" redis-cli -h 127.0.0.1 -p "$port" --no-auth-warning 2>&1)"
      if [ "$out" = "OK" ]; then done_ok=1; break; fi
    done
    if [ -n "$done_ok" ]; then
      applied="$wanted"
      count="$(printf '%s\n' "$wanted" | wc -l | tr -d ' ')"
      echo "acl-sync: default user now accepts $count password(s)"
      if [ -n "${REDIS_ACL_APPLIED_FILE:-}" ]; then
        printf '%s\n' "$wanted" > "$REDIS_ACL_APPLIED_FILE.tmp"
        mv "$REDIS_ACL_APPLIED_FILE.tmp" "$REDIS_ACL_APPLIED_FILE"
      fi
    else
      echo "acl-sync: no listed password authenticates; retrying" >&2
    fi
  fi
  if [ -n "${REDIS_EXPORTER_PASSWORD_FILE:-}" ] && [ -n "$applied" ]; then
    newest="$(printf '%s
' "$applied" | head -n 1)"
    if [ "$newest" != "$exporter_has" ]; then
      (umask 077 && printf '{"%s":"%s"}
' "$REDIS_EXPORTER_ADDR" "$newest"         > "$REDIS_EXPORTER_PASSWORD_FILE.tmp")         && mv "$REDIS_EXPORTER_PASSWORD_FILE.tmp" "$REDIS_EXPORTER_PASSWORD_FILE"
      if wget -q -O /dev/null "$REDIS_EXPORTER_RELOAD_URL" 2>/dev/null; then
        exporter_has="$newest"
        echo "acl-sync: the exporter reloaded its password"
      elif [ "$exporter_warned" != "$newest" ]; then
        exporter_warned="$newest"
        echo "acl-sync: the exporter did not reload its password yet; retrying" >&2
      fi
    fi
  fi
  sleep "$interval"
done
