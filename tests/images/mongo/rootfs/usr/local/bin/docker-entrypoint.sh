#!/usr/bin/env bash
# Entry point with the official mongo image's contract, as far as Berth and its tests use it, serving
# FerretDB (MongoDB wire protocol, SQLite backend) instead of mongod:
#   MONGO_INITDB_ROOT_USERNAME + MONGO_INITDB_ROOT_PASSWORD (or *_FILE): a root user in "admin",
#     created when /data/db holds no database yet; with them set, authentication is on (SCRAM-SHA-1/256,
#     FerretDB's --test-enable-new-auth), as the official image adds --auth. Without them: no auth.
#   MONGO_INITDB_DATABASE: accepted (the official image only runs init scripts against it).
#   CMD `mongod` [args]: --port, --bind_ip, --bind_ip_all, --dbpath, --auth are honoured; a few tuning
#     options are ignored with a note; any other option is refused (exit 2) rather than silently dropped.
#   First argument an option (-...): `mongod` is prepended. Any other command runs as is.
#   Run as root: /data/db is given to uid 999 and the server runs as 999 (as gosu does).
# Not supported (exit 2): files in /docker-entrypoint-initdb.d (the official image runs them with mongosh).
set -Eeo pipefail

file_env() { # VAR: VAR or the content of VAR_FILE
  local var="$1" fileVar="${1}_FILE"
  if [ "${!var:-}" ] && [ "${!fileVar:-}" ]; then
    echo >&2 "error: both $var and $fileVar are set (but are exclusive)"; exit 1
  fi
  if [ "${!fileVar:-}" ]; then export "$var"="$(<"${!fileVar}")"; fi
  unset "$fileVar"
}

if [ "${1#-}" != "$1" ]; then set -- mongod "$@"; fi
if [ "$1" != mongod ]; then exec "$@"; fi
shift

file_env MONGO_INITDB_ROOT_USERNAME
file_env MONGO_INITDB_ROOT_PASSWORD
if { [ -n "${MONGO_INITDB_ROOT_USERNAME:-}" ] && [ -z "${MONGO_INITDB_ROOT_PASSWORD:-}" ]; } ||
   { [ -z "${MONGO_INITDB_ROOT_USERNAME:-}" ] && [ -n "${MONGO_INITDB_ROOT_PASSWORD:-}" ]; }; then
  cat >&2 <<-'EOE'
	error: missing 'MONGO_INITDB_ROOT_USERNAME' or 'MONGO_INITDB_ROOT_PASSWORD'
	       both must be specified for a user to be created
	EOE
  exit 1
fi

host=0.0.0.0 port=27017 dbpath=/data/db auth=
while [ $# -gt 0 ]; do
  opt="$1" val=
  case "$opt" in --*=*) val="${opt#*=}"; opt="${opt%%=*}" ;; esac
  shift_extra=0
  case "$opt" in
    --port|--bind_ip|--dbpath|--wiredTigerCacheSizeGB|--oplogSize|--setParameter|--logpath|--replSet)
      if [ -z "$val" ]; then
        [ $# -ge 2 ] || { echo >&2 "mongod (FerretDB stand-in): $opt needs a value"; exit 2; }
        val="$2"; shift_extra=1
      fi ;;
  esac
  case "$opt" in
    --port) port="$val" ;;
    --bind_ip) host="${val%%,*}"; [ "$host" != localhost ] || host=127.0.0.1 ;;
    --bind_ip_all) host=0.0.0.0 ;;
    --dbpath) dbpath="$val" ;;
    --auth) auth=1 ;;
    --noauth) auth= ;;
    --quiet|--wiredTigerCacheSizeGB|--oplogSize|--setParameter|--logpath|--logappend|--nounixsocket|--ipv6)
      echo >&2 "mongod (FerretDB stand-in): ignoring $opt${val:+ $val}" ;;
    *)
      echo >&2 "mongod (FerretDB stand-in): option $opt is not supported by this test image"; exit 2 ;;
  esac
  shift $((1 + shift_extra))
done

if [ -d /docker-entrypoint-initdb.d ] && [ -n "$(ls -A /docker-entrypoint-initdb.d 2>/dev/null)" ]; then
  echo >&2 "error: /docker-entrypoint-initdb.d scripts are not supported by this FerretDB stand-in image"
  exit 2
fi

mkdir -p "$dbpath"
if [ "$(id -u)" = 0 ]; then
  find "$dbpath" \! -user mongodb -exec chown mongodb:mongodb '{}' + 2>/dev/null || true
  exec setpriv --reuid=mongodb --regid=mongodb --init-groups "$0" mongod --port "$port" --bind_ip "$host" \
    --dbpath "$dbpath" ${auth:+--auth}
fi

if [ -n "${MONGO_INITDB_ROOT_USERNAME:-}" ]; then
  auth=1
  if ! compgen -G "$dbpath/*.sqlite" >/dev/null; then
    echo "berth-mongo: first start: creating root user ${MONGO_INITDB_ROOT_USERNAME} in admin"
  fi
  # FerretDB creates this user only when the admin database does not exist yet (first start), like the
  # official image's init. The password reaches it through the environment, never a command line.
  export FERRETDB_SETUP_DATABASE=admin FERRETDB_SETUP_USERNAME="$MONGO_INITDB_ROOT_USERNAME"
  export FERRETDB_SETUP_PASSWORD="$MONGO_INITDB_ROOT_PASSWORD"
fi
if [ -n "$auth" ]; then export FERRETDB_TEST_ENABLE_NEW_AUTH=true; fi

umask 0077
exec ferretdb --handler=sqlite --sqlite-url="file:${dbpath%/}/" --listen-addr="$host:$port" \
  --state-dir=- --telemetry=disable --debug-addr=-
