#!/bin/sh
# Writes this pod's runtime config: the primary is whoever the sentinels name now; only when
# no sentinel answers is it ordinal 0 ($PRIMARY). Rendered by the IndexForge operator.
set -eu
role="$1"

ask() {  # prints "host port" of the primary from the first sentinel that answers
  for s in $(echo "$SENTINELS" | tr ',' ' '); do
    out="$(timeout 3 redis-cli --no-auth-warning -h "${s%:*}" -p "${s##*:}" \
      SENTINEL get-master-addr-by-name "$MASTER_NAME" 2>/dev/null | tr '\n' ' ' || true)"
    set -- $out
    if [ "$#" -eq 2 ]; then
      case "$2" in ''|*[!0-9]*) ;; *) echo "$1 $2"; return 0 ;; esac
    fi
  done
  return 1
}

if answer="$(ask)"; then
  set -- $answer
  host="$1"; port="$2"
  # Named the primary but not running: wait for the sentinels to promote a replica rather
  # than come back as a primary the replicas would copy (an empty one without persistence).
  i=0
  while [ "$role" = redis ] && [ "$host" = "$ANNOUNCE_HOST" ] && [ "$port" = "$REDIS_PORT" ] \
      && [ "$i" -lt "$PRIMARY_WAIT_SECONDS" ]; do
    sleep 1; i=$((i + 1))
    answer="$(ask)" || break
    set -- $answer
    host="$1"; port="$2"
  done
  echo "sentinels name $host:$port as the primary"
else
  host="${PRIMARY%:*}"; port="${PRIMARY##*:}"
  echo "no sentinel answered: $host:$port (ordinal 0) is the primary"
fi

if [ "$role" = sentinel ]; then
  sed -e "s/@PRIMARY_HOST@/$host/" -e "s/@PRIMARY_PORT@/$port/" "$CONF_IN" > "$CONF_OUT"
  {
    echo "sentinel myid $(printf '%s' "$POD_NAME" | sha1sum | cut -c1-40)"
    echo "sentinel announce-ip $ANNOUNCE_HOST"
    echo "requirepass $REDISCLI_AUTH"
    echo "sentinel auth-pass $MASTER_NAME $REDISCLI_AUTH"
    echo "sentinel sentinel-pass $REDISCLI_AUTH"
  } >> "$CONF_OUT"
else
  {
    echo "include $CONF_IN"
    echo "replica-announce-ip $ANNOUNCE_HOST"
    if [ "$host" != "$ANNOUNCE_HOST" ] || [ "$port" != "$REDIS_PORT" ]; then
      echo "replicaof $host $port"
    fi
  } > "$CONF_OUT"
fi
chmod 600 "$CONF_OUT"
