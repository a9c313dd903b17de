# localhost/berth-testapp:1 and :2 - the same small Python 3 app (stdlib ThreadingHTTPServer, Debian's
# python3-psycopg2, python3-redis, python3-pymongo and python3-pika) standing in for a team's FastAPI app +
# Celery worker/beat + a queue consumer.
#   env DATABASE_URL, DATABASE_REPLICA_URL, REDIS_URL, MONGODB_URI, AMQP_URL (each optional), PORT (8000),
#   APP_VERSION (from tag)
#   CMD / uvicorn MODULE:app --host H [--port P]            -> web server (on $PORT without --port)
#   /usr/local/bin/celery -A X worker|beat|inspect ping    -> job worker / 10 s beat / broker ping
#   /usr/local/bin/consumer, python3 -m app.consumer       -> AMQP consumer (+ the HTTP endpoints on $PORT)
#   /usr/local/bin/healthcheck [URL]                       -> exit 0 if GET URL (default /health) is 200
# uid 10001; writes nothing outside /tmp (read-only root filesystem works). See app/app/main.py.
PACKAGES=(python3 python3-psycopg2 python3-redis python3-pymongo python3-pika curl ca-certificates)
TAGS=(localhost/berth-testapp:1 localhost/berth-testapp:2)
USERS=("app 10001 10001 /app")
CHANGES=(
  'CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0"]'
  'USER 10001:10001'
  'WORKDIR /app'
  'ENV PYTHONPATH=/app'
  'ENV PYTHONDONTWRITEBYTECODE=1'
  'ENV PYTHONUNBUFFERED=1'
  'ENV PORT=8000'
  'EXPOSE 8000'
)
tag_changes() {
  local version="${1##*:}"
  echo "LABEL version=$version"
  echo "ENV APP_VERSION=$version"
}
customize() {
  local root="$1"
  chown -R root:root "$root/app"
  chmod -R a+rX "$root/app"
  chmod 0755 "$root/usr/local/bin/uvicorn" "$root/usr/local/bin/celery" "$root/usr/local/bin/consumer" \
    "$root/usr/local/bin/healthcheck"
  chroot "$root" python3 -m compileall -q /app >/dev/null
}
