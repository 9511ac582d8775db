#!/bin/sh
# As the official image's entrypoint: options alone run redis-server; redis-server runs as the
# redis user in /data; without a config file, protected mode is off (the container's network
# is the boundary), since a published port reaches it from outside the container's loopback.
set -e
case "${1:-}" in -*) set -- redis-server "$@" ;; esac
if [ "${1:-}" = redis-server ]; then
  case " $* " in
    *" --protected-mode "*|*".conf "*) ;;
    *) set -- "$@" --protected-mode no ;;
  esac
  if [ "$(id -u)" = 0 ]; then
    chown -R redis:redis /data 2>/dev/null || true
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
  fi
fi
exec "$@"
