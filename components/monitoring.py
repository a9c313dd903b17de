"""Monitoring component: Prometheus (scrape config generated from the stack, alert rules),
exporters for each datastore, and Grafana with a provisioned datasource and dashboard. Internal
only; Grafana is reachable through the Proxy when a path is set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import pulumi

from .cache import MONITOR_USER
from .ir import DataVolume, File, Kind, Later, Port, Probe, Role, SecretValue, Workload
from .renderers.monitoring import (
    ScrapeTarget,
    render_alert_rules,
    render_grafana_dashboard,
    render_grafana_dashboard_provider,
    render_grafana_datasource,
    render_prometheus_config,
)
from .spec import MonitoringSpec, Resources

EXPORTER_PORT = {"postgres": 9187, "redis": 9121, "mongodb": 9216}
SMALL = Resources(cpu="50m", memory="64Mi", cpu_limit="250m", memory_limit="128Mi")


@dataclass(frozen=True)
class Watched:
    """A datastore to export metrics from."""

    name: str
    kind: str  # postgres | redis | mongodb
    url: pulumi.Input[str]  # secret connection URL (postgres/mongodb) or the monitor user's password (redis)


@dataclass(frozen=True)
class MetricsApp:
    name: str
    port: int
    path: str = "/metrics"


def exporter_workload(spec: MonitoringSpec, w: Watched) -> Workload:
    port = EXPORTER_PORT[w.kind]
    if w.kind == "postgres":
        image, env = spec.postgres_exporter_image, {}
        secret = {"DATA_SOURCE_NAME": SecretValue(f"{w.name}-exporter-env", "DATA_SOURCE_NAME",
                                                  pulumi.Output.concat(w.url, "?sslmode=disable"))}
    elif w.kind == "redis":
        image, env = spec.redis_exporter_image, {"REDIS_ADDR": f"redis://{w.name}:6379", "REDIS_USER": MONITOR_USER}
        secret = {"REDIS_PASSWORD": SecretValue(f"{w.name}-exporter-env", "REDIS_PASSWORD", w.url)}
    else:
        image, env = spec.mongodb_exporter_image, {}
        secret = {"MONGODB_URI": SecretValue(f"{w.name}-exporter-env", "MONGODB_URI", w.url)}
    return Workload(
        name=f"{w.name}-exporter", role=Role.EXPORTER, image=image, env=env, secret_env=secret,
        ports=(Port("metrics", port),), tmpfs=(), resources=SMALL, user=65534, group=65534,
        # Over HTTP on both targets: the default images have a shell and wget (busybox; the redis
        # exporter's -alpine variant), which Docker's health check runs inside the container.
        health=Probe(path="/metrics", port=port, interval=30, timeout=5, retries=3, start_period=10),
        allow_from=("prometheus",),
    )


PUSHGATEWAY = "pushgateway"


def scrape_targets(apps: Sequence[MetricsApp], watched: Sequence[Watched], pushgateway: bool = False) -> list[ScrapeTarget]:
    out = [ScrapeTarget("prometheus", ("localhost:9090",), kind="prometheus")]
    if pushgateway:
        out.append(ScrapeTarget(PUSHGATEWAY, (f"{PUSHGATEWAY}:9091",), kind="backup", honor_labels=True))
    out += [ScrapeTarget(a.name, (f"{a.name}:{a.port}",), a.path, "app") for a in apps]
    out += [ScrapeTarget(f"{w.name}-exporter", (f"{w.name}-exporter:{EXPORTER_PORT[w.kind]}",), kind=w.kind) for w in watched]
    return out


def monitoring_workloads(
    spec: MonitoringSpec, stack: str, apps: Sequence[MetricsApp], watched: Sequence[Watched],
    grafana_password: pulumi.Input[str], backups: Sequence[tuple[str, int]] = (),
    grafana_url: Optional[str] = None, grafana_from: Sequence[str] = (),
    backup_clients: Sequence[str] = (),
) -> list[Workload]:
    """Prometheus, exporters, the Pushgateway (when there are backups) and Grafana (pure)."""
    targets = scrape_targets(apps, watched, pushgateway=bool(backups))
    out = [exporter_workload(spec, w) for w in sorted(watched, key=lambda w: w.name)]
    if backups:
        # Backup jobs are short-lived: they push their success time here (BackupTooOld alert).
        out.append(Workload(
            name=PUSHGATEWAY, role=Role.MONITORING, image=spec.pushgateway_image, kind=Kind.STATEFUL,
            # /pushgateway is the official image's working directory, owned by its user (65534).
            command=("--persistence.file=/pushgateway/pushgateway.db", "--persistence.interval=1m",
                     "--web.listen-address=:9091"),
            ports=(Port("http", 9091),),
            volumes=(DataVolume("pushgateway-data", "/pushgateway", "1Gi"),),
            tmpfs=("/tmp",),
            health=Probe(path="/-/healthy", port=9091, interval=15, timeout=5, retries=5, start_period=10),
            resources=SMALL, user=65534, group=65534, stateful_data=True,
            allow_from=tuple(sorted({"prometheus", *backup_clients})),
        ))
    out.append(Workload(
        name="prometheus", role=Role.MONITORING, image=spec.prometheus_image, kind=Kind.STATEFUL,
        command=(
            "--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
            f"--storage.tsdb.retention.time={spec.retention}", "--web.listen-address=:9090",
        ),
        ports=(Port("http", 9090),),
        volumes=(DataVolume("prometheus-data", "/prometheus", spec.storage),),
        files=(
            File("prometheus-config", "/etc/prometheus/prometheus.yml", render_prometheus_config(targets, stack)),
            File("alert-rules", "/etc/prometheus/alerts.yml", render_alert_rules(targets, backups)),
        ),
        tmpfs=("/tmp",),
        health=Probe(path="/-/healthy", port=9090, interval=15, timeout=5, retries=5, start_period=20),
        resources=Resources(cpu="100m", memory="256Mi", cpu_limit="1", memory_limit="1Gi"),
        user=65534, group=65534, allow_from=("grafana",), stateful_data=True,
    ))
    if spec.grafana:
        env = {
            "GF_SECURITY_ADMIN_USER": "admin",
            "GF_USERS_ALLOW_SIGN_UP": "false",
            "GF_AUTH_ANONYMOUS_ENABLED": "false",
            "GF_ANALYTICS_REPORTING_ENABLED": "false",
            "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
            "GF_PATHS_PROVISIONING": "/etc/grafana/provisioning",
            # Logs to the console only: the image's default also writes /var/log/grafana, which a
            # read-only root refuses (and `docker logs` / `kubectl logs` have them anyway).
            "GF_LOG_MODE": "console",
        }
        if grafana_url:
            env["GF_SERVER_ROOT_URL"] = grafana_url
            env["GF_SERVER_SERVE_FROM_SUB_PATH"] = "true"
        out.append(Workload(
            name="grafana", role=Role.MONITORING, image=spec.grafana_image, kind=Kind.STATEFUL,
            env=env,
            secret_env={"GF_SECURITY_ADMIN_PASSWORD": SecretValue("grafana-env", "GF_SECURITY_ADMIN_PASSWORD", grafana_password)},
            ports=(Port("http", 3000),),
            volumes=(DataVolume("grafana-data", "/var/lib/grafana", "1Gi"),),
            files=(
                File("grafana-datasource", "/etc/grafana/provisioning/datasources/prometheus.yml",
                     render_grafana_datasource("http://prometheus:9090")),
                File("grafana-dashboards", "/etc/grafana/provisioning/dashboards/berth.yml",
                     render_grafana_dashboard_provider()),
                File("grafana-dashboard", "/etc/grafana/dashboards/berth.json",
                     render_grafana_dashboard(stack, [a.name for a in apps])),
            ),
            tmpfs=("/tmp",),
            health=Probe(path="/api/health", port=3000, interval=15, timeout=5, retries=5, start_period=30),
            resources=Resources(cpu="100m", memory="128Mi", cpu_limit="500m", memory_limit="512Mi"),
            user=472, group=472, allow_from=tuple(sorted(grafana_from)), stateful_data=True,
        ))
    return out


@dataclass(frozen=True)
class MonitoringPlan:
    """Monitoring's share of the plan: its workloads and the Grafana password they are waiting for."""

    workloads: tuple[Workload, ...]
    grafana_password: Later


def plan_monitoring(
    spec: MonitoringSpec, stack: str, apps: Sequence[MetricsApp], watched: Sequence[Watched],
    backups: Sequence[tuple[str, int]] = (), grafana_url: Optional[str] = None, grafana_from: Sequence[str] = (),
    backup_clients: Sequence[str] = (),
) -> MonitoringPlan:
    """The workloads, with the Grafana admin password to come (pure)."""
    password = Later("grafana-admin-password")
    workloads = monitoring_workloads(spec, stack, apps, watched, password.output, backups, grafana_url, grafana_from,
                                     backup_clients)
    return MonitoringPlan(tuple(workloads), password)


class Monitoring(pulumi.ComponentResource):
    """Prometheus + exporters + Grafana. Outputs: ``grafana_admin_password`` (secret)."""

    def __init__(self, name: str, spec: MonitoringSpec, stack: str, target, apps: Sequence[MetricsApp] = (),
                 watched: Sequence[Watched] = (), depends_on: Optional[Mapping[str, Sequence[pulumi.Resource]]] = None,
                 backups: Sequence[tuple[str, int]] = (), grafana_url: Optional[str] = None,
                 grafana_from: Sequence[str] = (), backup_clients: Sequence[str] = (),
                 opts: Optional[pulumi.ResourceOptions] = None, plan: Optional[MonitoringPlan] = None):
        """``plan``: its share of the stack's plan (``apps`` to ``backup_clients`` went into it);
        without one, monitoring plans itself. ``depends_on``: what each exporter waits for, by the
        name of the datastore it watches."""
        super().__init__("berth:index:Monitoring", name, None, opts)
        import pulumi_random as random

        depends_on = depends_on or {}
        plan = plan or plan_monitoring(spec, stack, apps, watched, backups, grafana_url, grafana_from, backup_clients)
        self.grafana_password = random.RandomPassword(
            "grafana-admin-password", length=32, special=False, opts=pulumi.ResourceOptions(parent=self)
        ).result
        plan.grafana_password.resolve(self.grafana_password)
        self.workloads = list(plan.workloads)
        self.ready: list[pulumi.Resource] = []
        for w in self.workloads:
            src = w.name.removesuffix("-exporter")
            created = target.deploy(w, parent=self, depends_on=list(depends_on.get(src, [])))
            if w.name == "grafana":
                self.ready = created
        self.register_outputs({"grafana_admin_password": pulumi.Output.secret(self.grafana_password)})
