#!/bin/bash
# The stand-in's entrypoint: what the official neo4j:4.4 image's entrypoint does for a container run as
# Berth runs it (as uid 7474, not root; no plugins, no mounted /conf):
#   - /logs and /data are Neo4j's logs and data (the image's home links to them);
#   - docker defaults appended to $NEO4J_HOME/conf/neo4j.conf unless already set (page cache 512M,
#     listen on 0.0.0.0), then every NEO4J_<setting> variable written there, replacing the setting
#     (name: drop NEO4J_, `_` → `.`, `__` → `_`), so the conf directory must be writable;
#   - NEO4J_AUTH=neo4j/<password>: `neo4j-admin set-initial-password <password>`, its failure ignored
#     (it counts only before the first start); `none` turns authentication off; anything else is refused;
#   - `neo4j` runs the server in the foreground; another command runs as given.
set -euo pipefail
cmd="${1:-neo4j}"
conf="$NEO4J_HOME/conf/neo4j.conf"

if [ -d /logs ]; then
  : "${NEO4J_dbms_directories_logs:=/logs}"
  export NEO4J_dbms_directories_logs
fi
for dir in /data /logs; do
  [ -w "$dir" ] || { echo >&2 "Folder $dir is not accessible for user: $(id -u) or group $(id -g)"; exit 1; }
done

add_default() { grep -q "^$1=" "$conf" || printf '\n%s=%s\n' "$1" "$2" >>"$conf"; }
set_setting() {
  sed --in-place "/^$1=.*/d" "$conf"
  echo "$1=$2" >>"$conf"
}

add_default dbms.memory.pagecache.size 512M
add_default dbms.default_listen_address 0.0.0.0

for var in $(compgen -e | grep '^NEO4J_' | sort -r); do
  case "$var" in
    NEO4J_AUTH|NEO4J_AUTH_PATH|NEO4J_HOME|NEO4J_EDITION|NEO4J_CONF|NEO4J_ACCEPT_LICENSE_AGREEMENT|*_FILE) continue ;;
  esac
  setting=$(echo "${var#NEO4J_}" | sed 's|_|.|g; s|\.\.|_|g')
  [ -n "${!var}" ] && set_setting "$setting" "${!var}"
done

if [ "$cmd" = neo4j ]; then
  auth="${NEO4J_AUTH:-}"
  if [ "$auth" = none ]; then
    set_setting dbms.security.auth_enabled false
  elif [[ "$auth" =~ ^([^/]+)/([^/]+)$ ]]; then
    [ "${BASH_REMATCH[1]}" = neo4j ] || { echo >&2 "Invalid admin username, it must be neo4j."; exit 1; }
    [ "${BASH_REMATCH[2]}" != neo4j ] || { echo >&2 "Invalid value for password. It cannot be 'neo4j'."; exit 1; }
    neo4j-admin set-initial-password "${BASH_REMATCH[2]}" >/dev/null 2>&1 || true
  elif [ -n "$auth" ]; then
    echo >&2 "Invalid value for NEO4J_AUTH: '$auth'"
    exit 1
  fi
  exec neo4j console
fi
exec "$@"
