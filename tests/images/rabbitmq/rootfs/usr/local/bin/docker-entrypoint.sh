#!/bin/sh
# As the official rabbitmq image's entry point (the parts Berth uses): CMD rabbitmq-server; a first
# argument that is an option gets rabbitmq-server prepended; run as root, the data directory is given to
# rabbitmq (999) and the server runs as that user. Any other command runs as is.
set -e
if [ "${1#-}" != "$1" ]; then set -- rabbitmq-server "$@"; fi
if [ "$1" = rabbitmq-server ] && [ "$(id -u)" = 0 ]; then
  find /var/lib/rabbitmq \! -user rabbitmq -exec chown rabbitmq:rabbitmq '{}' + 2>/dev/null || true
  exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups "$0" "$@"
fi
exec "$@"
