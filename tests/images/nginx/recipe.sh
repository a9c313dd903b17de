# localhost/berth-nginx:1 - Debian's nginx 1.22 (ssl, http2, gzip, limit_req, realip, headers, stub_status
# are built in) + curl. CMD nginx -g 'daemon off;' reading /etc/nginx/nginx.conf. Works as uid 101 with a
# read-only root filesystem when the conf keeps pid and *_temp_path under /tmp and listens on 8080/8443
# (the default conf shipped here does). Logs go to stdout/stderr. `nginx -t -c FILE` works.
PACKAGES=(nginx curl ca-certificates)
TAGS=(localhost/berth-nginx:1)
USERS=("nginx 101 101 /var/cache/nginx")
CHANGES=(
  'CMD ["nginx", "-g", "daemon off;"]'
  'USER 101:101'
  'STOPSIGNAL SIGQUIT'
  'EXPOSE 8080'
  'EXPOSE 8443'
)
customize() {
  local root="$1"
  rm -f "$root/etc/nginx/sites-enabled/default"
  mkdir -p "$root/var/log/nginx" "$root/var/cache/nginx" "$root/etc/nginx/certs"
  ln -sf /dev/stdout "$root/var/log/nginx/access.log"
  ln -sf /dev/stderr "$root/var/log/nginx/error.log"
  chown -R 101:101 "$root/var/cache/nginx"
  # Debian builds nginx with /var/lib/nginx/* temp paths; keep them usable if a conf forgets /tmp.
  mkdir -p "$root/var/lib/nginx"
  chown -R 101:101 "$root/var/lib/nginx"
  chmod 0644 "$root/etc/nginx/nginx.conf" "$root/usr/share/nginx/html/index.html"
}
