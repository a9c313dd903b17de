# localhost/berth-rabbitmq:3 - Debian's rabbitmq-server (3.10) with the management and Prometheus plugins
# enabled, standing in for the official rabbitmq:3.x-management image as Berth's Broker uses it:
# env RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS / RABBITMQ_DEFAULT_VHOST (read by RabbitMQ on the
# node's first boot), RABBITMQ_NODENAME, :5672 (AMQP), :15672 (management), :15692 (Prometheus), data and
# HOME (Erlang cookie) in /var/lib/rabbitmq, uid/gid 999, CMD rabbitmq-server, `rabbitmq-diagnostics`
# etc. on PATH. Logs go to the console only. Read-only root works with a tmpfs on /tmp
# (RABBITMQ_LOG_BASE, where an Erlang crash dump would go).
PACKAGES=(rabbitmq-server ca-certificates tzdata)
TAGS=(localhost/berth-rabbitmq:3)
USERS=("rabbitmq 999 999 /var/lib/rabbitmq /bin/sh")
CHANGES=(
  'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]'
  'CMD ["rabbitmq-server"]'
  'USER 999:999'
  'ENV PATH=/usr/lib/rabbitmq/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  'ENV HOME=/var/lib/rabbitmq'
  'ENV RABBITMQ_LOG_BASE=/tmp'
  'ENV LANG=C.UTF-8'
  'ENV LC_ALL=C.UTF-8'
  'WORKDIR /var/lib/rabbitmq'
  'VOLUME /var/lib/rabbitmq'
  'EXPOSE 5672'
  'EXPOSE 15672'
  'EXPOSE 15692'
)
customize() {
  local root="$1"
  chmod 0644 "$root/etc/rabbitmq/enabled_plugins" "$root/etc/rabbitmq/conf.d/10-defaults.conf"
  chmod 0755 "$root/usr/local/bin/docker-entrypoint.sh"
  # Nothing from the build in the data directory (a fresh volume is initialised from it).
  find "$root/var/lib/rabbitmq" -mindepth 1 -delete
  chown 999:999 "$root/var/lib/rabbitmq"
  chmod 0750 "$root/var/lib/rabbitmq"
}
