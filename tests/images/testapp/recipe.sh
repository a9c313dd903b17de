# localhost/berth-testapp:1 and :2 - the same small Python 3 app (stdlib ThreadingHTTPServer, Debian's
# python3-psycopg2 and python3-redis) standing in for a team's FastAPI app + Celery worker/beat.
#   env DATABASE_URL, DATABASE_REPLICA_URL (optional), REDIS_URL, PORT (8000), APP_VERSION (from tag)
#   /usr/local/bin/uvicorn MODULE:app --host H --port P   -> web server
#   /usr/local/bin/celery -A X worker|beat|inspect ping    -> job worker / 10 s beat / broker ping
#   /usr/local/bin/healthcheck [URL]                       -> exit 0 if GET URL (default /health) is 200
# uid 10001; writes nothing outside /tmp (read-only root filesystem works). See app/app/main.py.
PACKAGES=(python3 python3-psycopg2 python3-redis curl ca-certificates)
TAGS=(localhost/berth-testapp:1 localhost/berth-testapp:2)
USERS=("app 10001 10001 /app")
CHANGES=(
  'CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000"]'
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
  chmod 0755 "$root/usr/local/bin/uvicorn" "$root/usr/local/bin/celery" "$root/usr/local/bin/healthcheck"
  chroot "$root" python3 -m compileall -q /app >/dev/null
}
