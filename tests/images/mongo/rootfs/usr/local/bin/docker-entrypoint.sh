#!/usr/bin/env bash
# Entry point with the official mongo image's contract, as far as Berth and its tests use it, serving
# FerretDB (MongoDB wire protocol, SQLite backend) instead of mongod:
#   MONGO_INITDB_ROOT_USERNAME + MONGO_INITDB_ROOT_PASSWORD (or *_FILE): a root user in "admin",
#     created when /data/db holds no database yet; with them set, authentication is on (SCRAM-SHA-1/256,
#     FerretDB's --test-enable-new-auth), as the official image adds --auth. Without them: no auth.
#   MONGO_INITDB_DATABASE: accepted (the official image only runs init scripts against it).
#   CMD `mongod` [args]: run by /usr/local/bin/mongod (FerretDB; its options there).
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

if [ -d /docker-entrypoint-initdb.d ] && [ -n "$(ls -A /docker-entrypoint-initdb.d 2>/dev/null)" ]; then
  echo >&2 "error: /docker-entrypoint-initdb.d scripts are not supported by this FerretDB stand-in image"
  exit 2
fi

if [ "$(id -u)" = 0 ]; then
  mkdir -p /data/db
  find /data/db \! -user mongodb -exec chown mongodb:mongodb '{}' + 2>/dev/null || true
  exec setpriv --reuid=mongodb --regid=mongodb --init-groups "$0" mongod "$@"
fi

if [ -n "${MONGO_INITDB_ROOT_USERNAME:-}" ]; then
  if ! compgen -G "/data/db/*.sqlite" >/dev/null; then
    echo "berth-mongo: first start: creating root user ${MONGO_INITDB_ROOT_USERNAME} in admin"
  fi
  # FerretDB creates this user only when the admin database does not exist yet (first start), like the
  # official image's init. The password reaches it through the environment, never a command line.
  # With a root user, authentication is on, as the official image adds --auth (see mongod).
  export FERRETDB_SETUP_DATABASE=admin FERRETDB_SETUP_USERNAME="$MONGO_INITDB_ROOT_USERNAME"
  export FERRETDB_SETUP_PASSWORD="$MONGO_INITDB_ROOT_PASSWORD"
  set -- "$@" --auth
fi
exec mongod "$@"
