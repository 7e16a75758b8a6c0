"""Redis passwords that rotate without restarting Redis: ACL passwords applied live.

Redis's ACL lets one user hold several passwords (``ACL SETUSER default >new`` adds one,
``<old`` or ``resetpass`` drops them) and applying that does not disconnect clients already
authenticated. So a Redis password rotates in the same three steps as the gateway keys
(rotation.py), with no Redis restart:

1. the accepted list becomes ``new, old``: Redis accepts both;
2. clients get ``new`` (they read the password from a mounted file on every new connection,
   services/common/redis_auth.py);
3. the accepted list becomes ``new``: a new AUTH with ``old`` is refused.

``ACL_SYNC_SCRIPT`` is the in-pod half: a POSIX shell loop (the Redis image has a shell and
redis-cli, no Python) that keeps the default user's passwords equal to the lines of a mounted
file, newest first, and writes the list it applied to a status file. Passwords never appear
on a command line (``printf`` is a shell builtin, redis-cli reads the command from stdin and
the password from REDISCLI_AUTH). It authenticates with any listed password or the list it
applied last, so a kubelet update that skips step 1 (both edits within one sync period) still
applies; clients then fail until they read the new password, which is why the operator must
wait between the steps.

The redis exporter sidecar reads its password at start only; after a rotation retired that
password it would report the Redis down. With ``REDIS_EXPORTER_PASSWORD_FILE`` set, the
script also writes the newest applied password as the exporter's password file (JSON, its
own address -> password; 0600 in a memory volume the two share) and asks the exporter to
reload it (``/-/reload``, redis_exporter 1.50+; busybox wget), until the exporter answered.
The exporter keeps its start-time password from the environment until then, so a missing
file never stops it from starting.

Wired: every Redis pod runs this script as its ``acl-sync`` sidecar (builders/redis.py), the
operator's phases are redis_rotation.py. Tested against a real redis-server
(tests/services/test_redis_password_rotation.py, test_rendered_redis.py).
"""

from __future__ import annotations

from collections.abc import Sequence

PASSWORDS_FILE_ENV = "REDIS_PASSWORDS_FILE"
APPLIED_FILE_ENV = "REDIS_ACL_APPLIED_FILE"
EXPORTER_PASSWORD_FILE_ENV = "REDIS_EXPORTER_PASSWORD_FILE"
EXPORTER_ADDR_ENV = "REDIS_EXPORTER_ADDR"
EXPORTER_RELOAD_URL_ENV = "REDIS_EXPORTER_RELOAD_URL"

ACL_SYNC_SCRIPT = """\
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
      out="$(printf 'ACL SETUSER default on resetpass%s ~* &* +@all\\n' "$rules" \\
        | REDISCLI_AUTH="$auth" redis-cli -h 127.0.0.1 -p "$port" --no-auth-warning 2>&1)"
      if [ "$out" = "OK" ]; then done_ok=1; break; fi
    done
    if [ -n "$done_ok" ]; then
      applied="$wanted"
      count="$(printf '%s\\n' "$wanted" | wc -l | tr -d ' ')"
      echo "acl-sync: default user now accepts $count password(s)"
      if [ -n "${REDIS_ACL_APPLIED_FILE:-}" ]; then
        printf '%s\\n' "$wanted" > "$REDIS_ACL_APPLIED_FILE.tmp"
        mv "$REDIS_ACL_APPLIED_FILE.tmp" "$REDIS_ACL_APPLIED_FILE"
      fi
    else
      echo "acl-sync: no listed password authenticates; retrying" >&2
    fi
  fi
  if [ -n "${REDIS_EXPORTER_PASSWORD_FILE:-}" ] && [ -n "$applied" ]; then
    newest="$(printf '%s\n' "$applied" | head -n 1)"
    if [ "$newest" != "$exporter_has" ]; then
      (umask 077 && printf '{"%s":"%s"}\n' "$REDIS_EXPORTER_ADDR" "$newest" \
        > "$REDIS_EXPORTER_PASSWORD_FILE.tmp") \
        && mv "$REDIS_EXPORTER_PASSWORD_FILE.tmp" "$REDIS_EXPORTER_PASSWORD_FILE"
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
"""


def acl_user_line(passwords: Sequence[str]) -> str:
    """redis.conf line giving the default user every accepted password (newest first)."""
    if not passwords:
        raise ValueError("the default user needs at least one password")
    return "user default on " + " ".join(f">{p}" for p in passwords) + " ~* &* +@all\n"
