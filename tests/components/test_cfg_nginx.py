"""Table tests of the pure nginx.conf renderer (components/renderers/nginx.py)."""

from __future__ import annotations

import pytest

from cfgtools import parse_nginx, servers
from berth.components.renderers.nginx import (CERT_PATH, HTTP_PORT, HTTPS_PORT, KEY_PATH, ProxyRoute, Upstream,
                                        render_nginx_conf)

DOMAIN = "easyflow.localhost"
API = Upstream("api", "api", 8000)
# Seed B: /api/ 10 r/s burst 20, webhooks burst 100, the frontend at / without a limit.
SEED_B = [
    ProxyRoute("/api/webhooks/", "api", 10, 100),
    ProxyRoute("/api/", "api", 10, 20),
    ProxyRoute("/", "api"),
]


def render(routes=SEED_B, upstreams=(API,), **kw):
    return parse_nginx(render_nginx_conf(DOMAIN, list(upstreams), list(routes), **kw))


def proxied_locations(tls_server):
    return [b for b in tls_server.children("location") if b.get("proxy_pass")]


# ---------------------------------------------------------------- TLS and redirect


def test_tls_12_and_13_only():
    _, tls = servers(render())
    assert tls.one("ssl_protocols") == ["TLSv1.2", "TLSv1.3"]
    assert tls.one("listen") == [str(HTTPS_PORT), "ssl", "http2"]  # the form nginx 1.22 .. 1.27 all accept
    assert tls.one("ssl_certificate") == [CERT_PATH]
    assert tls.one("ssl_certificate_key") == [KEY_PATH]
    ciphers = tls.one("ssl_ciphers")[0].split(":")
    assert ciphers and all(c.startswith("ECDHE-") and ("GCM" in c or "CHACHA20" in c) for c in ciphers)
    assert tls.one("ssl_session_tickets") == ["off"]


@pytest.mark.parametrize("health_path", ["/health", "/healthz", "/-/ready"])
def test_http_redirects_to_https_with_308_except_health(health_path):
    plain, _ = servers(render(health_path=health_path))
    assert plain.one("listen") == [str(HTTP_PORT)]
    assert plain.location("/").get("return") == [["308", "https://$host$request_uri"]]
    health = plain.location("=", health_path)
    assert health.get("return") == [["200", "ok\\n"]]
    assert not health.get("proxy_pass")
    # Nothing else is served on plain HTTP.
    assert {tuple(b.args) for b in plain.children("location")} == {("/",), ("=", health_path)}


@pytest.mark.parametrize("health_path", ["/health", "/healthz"])
def test_health_has_no_access_log_on_both_servers(health_path):
    for server in servers(render(health_path=health_path)):
        assert server.location("=", health_path).get("access_log") == [["off"]]


def test_server_name_on_both_servers():
    for server in servers(render()):
        assert server.one("server_name") == [DOMAIN]


# ---------------------------------------------------------------- headers and gzip


SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


@pytest.mark.parametrize("header,value", sorted(SECURITY_HEADERS.items()))
def test_security_headers_on_https_server(header, value):
    _, tls = servers(render())
    assert [header, value, "always"] in tls.get("add_header")


@pytest.mark.parametrize("hsts", [True, False])
def test_hsts_toggle(hsts):
    conf = render(hsts=hsts)
    found = [a for b in conf.walk() for a in b.get("add_header") if a[0] == "Strict-Transport-Security"]
    assert bool(found) == hsts


def test_gzip():
    http = render().children("http")[0]
    assert http.one("gzip") == ["on"]
    assert http.one("gzip_vary") == ["on"]
    types = http.one("gzip_types")
    for t in ("text/css", "application/json", "application/javascript", "image/svg+xml"):
        assert t in types


def test_server_tokens_off_and_body_size():
    http = render().children("http")[0]
    assert http.one("server_tokens") == ["off"]
    assert http.one("client_max_body_size") == ["10m"]


# ---------------------------------------------------------------- rate limits


def zones(conf):
    """{zone name: rate} of the conf's limit_req_zone declarations (keyed by client address)."""
    out = {}
    for key, zone, rate in conf.children("http")[0].get("limit_req_zone"):
        assert key == "$binary_remote_addr"
        name, size = zone.removeprefix("zone=").split(":")
        assert size == "10m"
        out[name] = rate.removeprefix("rate=")
    return out


def limit_of(location):
    """(zone, rate, burst, nodelay) of a location's limit_req, or None."""
    (args,) = location.get("limit_req") or [None]
    if args is None:
        return None
    opts = dict(a.split("=", 1) if "=" in a else (a, True) for a in args)
    return opts["zone"], opts.get("burst"), opts.get("nodelay", False)


@pytest.mark.parametrize(
    "route,rate,burst",
    [
        (ProxyRoute("/api/", "api", 10, 20), "10r/s", "20"),             # seed B
        (ProxyRoute("/api/webhooks/", "api", 10, 100), "10r/s", "100"),  # seed B
        (ProxyRoute("/login", "api", 1, 0), "1r/s", None),                # no burst
        (ProxyRoute("/", "api", 50, 5), "50r/s", "5"),
    ],
    ids=["seed-b-api", "seed-b-webhooks", "no-burst", "root"],
)
def test_limit_req_per_route(route, rate, burst):
    conf = render([route])
    (zone, zone_rate), = zones(conf).items()
    assert zone_rate == rate
    assert conf.children("http")[0].one("limit_req_status") == ["429"]
    _, tls = servers(conf)
    assert limit_of(tls.location(route.path)) == (zone, burst, bool(burst))


def test_seed_b_limits_apply_to_their_own_location_only():
    conf = render()
    declared = zones(conf)
    _, tls = servers(conf)
    api, webhooks = limit_of(tls.location("/api/")), limit_of(tls.location("/api/webhooks/"))
    assert api[1:] == ("20", True) and webhooks[1:] == ("100", True)
    assert api[0] != webhooks[0]
    assert declared == {api[0]: "10r/s", webhooks[0]: "10r/s"}
    assert limit_of(tls.location("/")) is None


def test_no_limit_zones_without_limits():
    http = render([ProxyRoute("/", "api")]).children("http")[0]
    assert http.get("limit_req_zone") == [] and http.get("limit_req_status") == []


@pytest.mark.parametrize(
    "paths",
    [("/a-b/", "/a/b/"), ("/api", "/api/")],
    ids=["dash-vs-slash", "with-and-without-slash"],
)
def test_each_limited_route_gets_its_own_zone(paths):
    """Two routes must never share one limit_req zone: nginx 1.22 accepts the redeclared zone
    silently (``nginx -t`` passes), so both routes draw from one bucket at one of the two rates."""
    routes = [ProxyRoute(p, "api", 5 + i, 10) for i, p in enumerate(paths)]
    conf = render(routes)
    declared = zones(conf)
    assert len(declared) == len(paths), declared
    _, tls = servers(conf)
    used = [limit_of(tls.location(p))[0] for p in paths]
    assert len(set(used)) == len(paths) and set(used) == set(declared)


# ---------------------------------------------------------------- upstreams and proxying


@pytest.mark.parametrize("resolver", ["127.0.0.11", None])
def test_upstreams_keepalive_and_resolve(resolver):
    conf = render(upstreams=[API, Upstream("grafana", "grafana", 3000)],
                  routes=[*SEED_B, ProxyRoute("/grafana/", "grafana")], resolver=resolver)
    http = conf.children("http")[0]
    ups = {u.args[0]: u for u in http.children("upstream")}
    assert sorted(ups) == ["api", "grafana"]
    for name, port in (("api", 8000), ("grafana", 3000)):
        u = ups[name]
        assert u.one("keepalive") == ["16"]
        server = u.one("server")
        assert server[0] == f"{name}:{port}"
        assert ("resolve" in server) == bool(resolver)
        assert bool(u.get("zone")) == bool(resolver)  # `resolve` needs a shared zone
    if resolver:
        assert http.one("resolver")[0] == resolver
    else:
        assert http.get("resolver") == []


def test_every_proxied_location_has_timeouts_and_keepalive_headers():
    _, tls = servers(render())
    locs = proxied_locations(tls)
    assert {tuple(l.args) for l in locs} == {("/api/webhooks/",), ("/api/",), ("/",)}
    for loc in locs:
        assert loc.one("proxy_pass") == ["http://api"]
        # Upstream keepalive needs HTTP/1.1 and a cleared Connection header (the map gives '').
        assert loc.one("proxy_http_version") == ["1.1"]
        assert ["Connection", "$connection_upgrade"] in loc.get("proxy_set_header")
        assert ["X-Forwarded-Proto", "$scheme"] in loc.get("proxy_set_header")
        assert loc.one("proxy_connect_timeout") == ["5s"]
        assert loc.one("proxy_send_timeout") == ["60s"]
        assert loc.one("proxy_read_timeout") == ["60s"]


def test_locations_longest_prefix_first():
    _, tls = servers(render(list(reversed(SEED_B))))
    assert [l.args[0] for l in proxied_locations(tls)] == ["/api/webhooks/", "/api/", "/"]


@pytest.mark.parametrize("access_log", [True, False])
def test_route_access_log_switch(access_log):
    _, tls = servers(render([ProxyRoute("/", "api", access_log=access_log)]))
    assert (tls.location("/").get("access_log") == [["off"]]) == (not access_log)


# ---------------------------------------------------------------- static cache


@pytest.mark.parametrize("cache_static", [True, False])
def test_static_cache_one_year(cache_static):
    _, tls = servers(render([ProxyRoute("/static/", "api", cache_static=cache_static), ProxyRoute("/", "api")]))
    loc = tls.location("/static/")
    assert (loc.get("expires") == [["1y"]]) == cache_static
    assert tls.location("/").get("expires") == []
    if cache_static:
        assert ["Cache-Control", "public, immutable"] in loc.get("add_header")  # not on error responses


@pytest.mark.parametrize("hsts", [True, False])
def test_static_cache_location_keeps_the_servers_security_headers(hsts):
    """nginx drops every inherited ``add_header`` in a location that has its own, so a cache_static
    location must repeat exactly the server's security headers (no more, no fewer)."""
    _, tls = servers(render([ProxyRoute("/static/", "api", cache_static=True)], hsts=hsts))
    server_headers = {a[0] for a in tls.get("add_header")}
    loc_headers = {a[0] for a in tls.location("/static/").get("add_header")} - {"Cache-Control"}
    assert loc_headers == server_headers
