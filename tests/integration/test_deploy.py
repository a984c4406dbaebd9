"""The deployment files: docker-compose.yml resolves, and Prometheus and Grafana use only metrics memorymesh exports.

There is no Docker engine here: Debian's docker-compose (v1) validates and resolves the compose file,
nothing is built or started. `make test` and `.ci/run` install it when it is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROMETHEUS_CONFIG = ROOT / "deploy/prometheus/prometheus.yml"
ALERTS = ROOT / "deploy/prometheus/alerts.yml"
DASHBOARDS = ROOT / "deploy/grafana/dashboards"
DASHBOARD = DASHBOARDS / "memorymesh.json"
DATASOURCES = ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml"
DASHBOARD_PROVIDERS = ROOT / "deploy/grafana/provisioning/dashboards/memorymesh.yml"

ADMIN_KEY = "admin-key-0123456789abcdef"
SERVICES = {"api", "worker", "postgres", "redis", "qdrant", "prometheus", "grafana"}


class Metric(NamedTuple):
    kind: str  # counter, gauge or histogram
    labels: frozenset[str]


def metric(kind: str, *labels: str) -> Metric:
    return Metric(kind, frozenset(labels))


# What memorymesh exports: tests/unit/test_observability.py checks this against a live /metrics.
EXPORTED: dict[str, Metric] = {
    "memorymesh_http_requests_total": metric("counter", "route", "method", "status"),
    "memorymesh_http_request_duration_seconds": metric("histogram", "route", "method", "status"),
    "memorymesh_http_requests_in_flight": metric("gauge"),
    "memorymesh_http_shed_total": metric("counter"),
    "memorymesh_http_deadline_exceeded_total": metric("counter"),
    "memorymesh_messages_stored_total": metric("counter", "mode"),
    "memorymesh_search_duration_seconds": metric("histogram", "mode"),
    "memorymesh_embedding_batch_size": metric("histogram"),
    "memorymesh_embedding_batch_duration_seconds": metric("histogram"),
    "memorymesh_messages_embedded_total": metric("counter"),
    "memorymesh_embedding_failures_total": metric("counter"),
    "memorymesh_queue_pending": metric("gauge"),
    "memorymesh_queue_claimed": metric("gauge"),
    "memorymesh_queue_failed": metric("gauge"),
    "memorymesh_queue_oldest_pending_age_seconds": metric("gauge"),
    "memorymesh_retention_messages_total": metric("counter", "action"),
    "memorymesh_retention_tenant_failures_total": metric("counter"),
    "memorymesh_rate_limit_refusals_total": metric("counter", "scope"),
    "memorymesh_rate_limiter_unavailable_total": metric("counter", "failure_mode"),
    "memorymesh_query_cache_lookups_total": metric("counter", "result"),
    "memorymesh_embedding_truncated_total": metric("counter", "kind"),
    "memorymesh_db_pool_connections": metric("gauge", "state"),
    "memorymesh_queue_read_failures_total": metric("counter"),
}
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")
TARGET_LABELS = {"job", "instance"}  # added by Prometheus to every series it scrapes


# --- docker-compose --------------------------------------------------------------------


@pytest.fixture(scope="module")
def docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        pytest.fail(
            "docker-compose is not installed: `make test` and `.ci/run` install it "
            "(apt-get install -y --no-install-recommends docker-compose)"
        )
    return path


@pytest.fixture
def compose(docker_compose: str, tmp_path: Path) -> Compose:
    return Compose(docker_compose, tmp_path)


class Compose:
    """Runs docker-compose on docker-compose.yml with only the variables a test gives it."""

    def __init__(self, executable: str, tmp_path: Path) -> None:
        self.executable = executable
        # An empty env file: a developer's .env (memorymesh's own settings file) stays out.
        self.env_file = tmp_path / "compose.env"
        self.env_file.write_text("")
        interpolated = set(re.findall(r"\$\{(\w+)", COMPOSE_FILE.read_text()))
        self.base_env = {
            name: value
            for name, value in os.environ.items()
            if name not in interpolated and not name.startswith("COMPOSE_")
        }

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        command = [self.executable, "-f", str(COMPOSE_FILE), "--env-file", str(self.env_file), *args]
        return subprocess.run(
            command, env=self.base_env | env, capture_output=True, text=True, timeout=120, check=False
        )

    def resolved(self, **env: str) -> dict[str, Any]:
        """The compose file as docker-compose resolves it, every profile on."""
        result = self.run("--profile", "qdrant", "config", MEMORY_ADMIN_API_KEYS=ADMIN_KEY, **env)
        assert result.returncode == 0, result.stderr
        config: dict[str, Any] = yaml.safe_load(result.stdout)
        return config


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(entry.partition("=")[::2] for entry in env)
    return {name: str(value) for name, value in env.items()}


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (a host path, or a named volume)."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume["source"], volume["target"]
        found[target] = source
    return found


def published_targets(service: dict[str, Any]) -> set[int]:
    targets = set()
    for port in service.get("ports", []):
        targets.add(int(port["target"]) if isinstance(port, dict) else int(str(port).rsplit(":", 1)[-1]))
    return targets


def test_the_compose_file_is_valid(compose: Compose) -> None:
    for profile in ([], ["--profile", "qdrant"]):
        result = compose.run(*profile, "config", "-q", MEMORY_ADMIN_API_KEYS=ADMIN_KEY)
        assert result.returncode == 0, result.stderr


def test_the_compose_file_refuses_to_run_without_an_admin_key(compose: Compose) -> None:
    result = compose.run("config", "-q")

    assert result.returncode != 0
    assert "MEMORY_ADMIN_API_KEYS" in result.stderr


def test_every_service_is_defined_and_qdrant_only_with_its_profile(compose: Compose) -> None:
    services = compose.resolved()["services"]

    assert set(services) >= SERVICES
    assert services["qdrant"].get("profiles") == ["qdrant"]
    assert [name for name in SERVICES - {"qdrant"} if services[name].get("profiles")] == []


def test_the_api_and_the_worker_run_one_image_on_postgres_and_redis(compose: Compose) -> None:
    services = compose.resolved()["services"]
    api, worker = services["api"], services["worker"]

    assert api["image"] == worker["image"]
    assert Path(api["build"]["context"]) == Path(worker["build"]["context"]) == ROOT
    assert worker["command"] == ["memorymesh", "worker"]
    assert "command" not in api  # the image's own: memorymesh serve
    for service in (api, worker):
        env = environment(service)
        assert env["MEMORY_ADMIN_API_KEYS"] == ADMIN_KEY
        assert env["MEMORY_DATABASE_URL"].startswith("postgresql://memorymesh:")
        assert "@postgres:5432/" in env["MEMORY_DATABASE_URL"]
        assert env["MEMORY_QUEUE"] == "arq"
        assert env["MEMORY_REDIS_URL"] == "redis://redis:6379/0"
        assert env["MEMORY_VECTOR_STORE"] == "pgvector"
        assert set(service["depends_on"]) == {"postgres", "redis"}
    assert environment(api)["OTEL_SERVICE_NAME"] == "memorymesh-api"
    assert environment(worker)["OTEL_SERVICE_NAME"] == "memorymesh-worker"
    assert 8000 in published_targets(api)


def test_one_variable_moves_the_vectors_to_qdrant(compose: Compose) -> None:
    services = compose.resolved(MEMORY_VECTOR_STORE="qdrant")["services"]

    for name in ("api", "worker"):
        env = environment(services[name])
        assert env["MEMORY_VECTOR_STORE"] == "qdrant"
        assert env["MEMORY_QDRANT_URL"] == "http://qdrant:6333"


def test_prometheus_scrapes_the_ports_the_api_and_worker_serve_metrics_on(compose: Compose) -> None:
    services = compose.resolved()["services"]
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    scraped = {
        (name, sd["port"])
        for job in config["scrape_configs"]
        if job.get("metrics_path", "/metrics") == "/metrics"
        for sd in job.get("dns_sd_configs", [])
        for name in sd["names"]
    }
    worker_port = int(environment(services["worker"])["MEMORY_WORKER_METRICS_PORT"])

    assert ("api", 8000) in scraped
    assert ("worker", worker_port) in scraped
    assert str(worker_port) in [str(port) for port in services["worker"].get("expose", [])]


def test_the_deploy_files_are_mounted_where_prometheus_and_grafana_look(compose: Compose) -> None:
    services = compose.resolved()["services"]
    prometheus, grafana = mounts(services["prometheus"]), mounts(services["grafana"])
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    providers = yaml.safe_load(DASHBOARD_PROVIDERS.read_text())["providers"]

    for service in services.values():  # every bind mount names a file of this repository
        for source in mounts(service).values():
            if source.startswith(("/", ".")):
                assert (ROOT / source).exists(), source
    assert Path(prometheus["/etc/prometheus/prometheus.yml"]) == PROMETHEUS_CONFIG
    for rule_file in config["rule_files"]:
        in_container = str(Path("/etc/prometheus") / rule_file)
        assert Path(prometheus[in_container]) == PROMETHEUS_CONFIG.parent / rule_file
    assert Path(grafana["/etc/grafana/provisioning"]) == DATASOURCES.parents[1]
    assert [Path(grafana[p["options"]["path"]]) for p in providers] == [DASHBOARDS]


# --- Prometheus and Grafana: only metrics that exist --------------------------------------


def dashboard_exprs() -> list[str]:
    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))  # a collapsed row holds its panels

    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in panels(dashboard["panels"]) for t in p.get("targets", []) if t.get("expr")]


def alert_exprs() -> list[str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [str(rule["expr"]) for group in groups for rule in group["rules"]]


def without_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def series_names(expr: str) -> set[str]:
    return set(re.findall(r"\bmemorymesh_\w+", without_strings(expr)))


def base_name(series: str) -> str:
    for suffix in HISTOGRAM_SERIES:
        if series.endswith(suffix):
            return series.removesuffix(suffix)
    return series


def metric_names_in_deploy() -> set[str]:
    """Every memorymesh metric the Grafana dashboard and the alert rules name (histograms by their base name)."""
    return {base_name(series) for expr in dashboard_exprs() + alert_exprs() for series in series_names(expr)}


def label_names(expr: str) -> set[str]:
    """Labels an expression matches on or groups by."""
    expr = without_strings(expr)
    names = set()
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        names |= set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))
    for grouping in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", expr):
        names |= {name.strip() for name in grouping.split(",") if name.strip()}
    return names


def test_the_dashboard_and_alerts_name_only_exported_metrics() -> None:
    named = metric_names_in_deploy()

    assert named, "no memorymesh metric found in the dashboard or the alerts"
    assert named - EXPORTED.keys() == set()


def test_bucket_sum_and_count_series_are_asked_only_of_histograms() -> None:
    for expr in dashboard_exprs() + alert_exprs():
        for series in series_names(expr):
            if base_name(series) != series:
                kind = EXPORTED[base_name(series)].kind if base_name(series) in EXPORTED else None
                assert kind == "histogram", f"{series} in {expr}"


def test_the_dashboard_and_alerts_use_only_labels_their_metrics_have() -> None:
    for expr in dashboard_exprs() + alert_exprs():
        metrics = [EXPORTED[name] for name in map(base_name, series_names(expr)) if name in EXPORTED]
        known = TARGET_LABELS.union(*(m.labels for m in metrics))
        if any(m.kind == "histogram" for m in metrics):
            known.add("le")
        assert label_names(expr) <= known, expr


def test_the_dashboard_charts_what_an_operator_watches() -> None:
    charted = {base_name(s) for expr in dashboard_exprs() for s in series_names(expr)}

    assert charted >= {
        "memorymesh_http_requests_total",  # request rate and errors
        "memorymesh_http_request_duration_seconds",  # latency percentiles
        "memorymesh_queue_oldest_pending_age_seconds",  # queue lag
        "memorymesh_messages_embedded_total",  # embedding throughput
        "memorymesh_rate_limit_refusals_total",  # rate-limit refusals
    }


def test_the_dashboard_loads_and_every_panel_queries_the_provisioned_prometheus() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    (datasource,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    panels = dashboard["panels"]

    assert dashboard["uid"] and dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    assert panels
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["type"] in {"timeseries", "stat", "gauge", "bargauge", "table"}, panel["title"]
        assert [t for t in panel.get("targets", []) if t.get("expr", "").strip()], panel["title"]
        for source in [panel["datasource"], *(t.get("datasource", panel["datasource"]) for t in panel["targets"])]:
            assert source == {"type": "prometheus", "uid": datasource["uid"]}, panel["title"]


def test_grafana_reads_the_prometheus_of_the_compose_file(compose: Compose) -> None:
    (datasource,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    services = compose.resolved()["services"]

    assert datasource["type"] == "prometheus"
    assert datasource["uid"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    assert 9090 in published_targets(services["prometheus"])
