"""Metrics, request ids and request logs at the HTTP edge, over in-memory adapters."""

import logging
import re
import uuid
from datetime import timedelta

import pytest

from config.logging import JsonFormatter, request_id_var
from tests.unit.conftest import ADMIN_KEY, NOW
from tests.unit.test_http_api import ACME, message

ADMIN = {"x-api-key": ADMIN_KEY}
SAMPLE = re.compile(r"^(memorymesh_\w+)(\{[^}]*\})? ")


async def scrape(client) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return (await response.get_data()).decode()


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples `name` whose labels include `labels`; fails when there is none."""
    found = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if (match := SAMPLE.match(line))
        and match.group(1) == name
        and all(f'{k}="{v}"' in (match.group(2) or "") for k, v in labels.items())
    ]
    assert found, f"no sample {name} {labels}"
    return sum(found)


def series(text: str) -> set[str]:
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if SAMPLE.match(line)}


async def test_requests_are_counted_by_route_template_method_and_status(client):
    stored = await (await client.post("/v1/messages?wait=true", json=message(), headers=ACME)).get_json()
    await client.get(f"/v1/messages/{stored['id']}?tenant_id=acme", headers=ACME)
    await client.get(f"/v1/messages/{uuid.uuid4()}?tenant_id=acme", headers=ACME)
    await client.get("/v1/memory/search?tenant_id=acme&query=tea", headers=ACME)
    await client.post("/v1/messages", json={"role": "nobody"}, headers=ACME)
    await client.get("/no/such/path")

    text = await scrape(client)

    one = "/v1/messages/<uuid:message_id>"
    assert value(text, "memorymesh_http_requests_total", route="/v1/messages", method="POST", status="201") == 1
    assert value(text, "memorymesh_http_requests_total", route="/v1/messages", method="POST", status="422") == 1
    assert value(text, "memorymesh_http_requests_total", route=one, method="GET", status="200") == 1
    assert value(text, "memorymesh_http_requests_total", route=one, method="GET", status="404") == 1
    assert value(text, "memorymesh_http_requests_total", route="unmatched", status="404") == 1
    assert value(text, "memorymesh_http_request_duration_seconds_count", route="/v1/memory/search") == 1
    assert value(text, "memorymesh_messages_stored_total", mode="async") == 1
    assert value(text, "memorymesh_search_duration_seconds_count", mode="hybrid") == 1
    assert value(text, "memorymesh_messages_embedded_total") == 1
    assert value(text, "memorymesh_embedding_batch_size_count") >= 1
    assert value(text, "memorymesh_queue_pending") == 0
    assert stored["id"] not in text and "acme" not in text  # no ids, no tenants


async def test_the_number_of_series_stays_flat_however_many_ids_and_tenants(client):
    async def traffic(round_: int) -> None:
        for i in range(30):
            tenant = f"tenant-{round_}-{i}"
            body = message(tenant_id=tenant, conversation_id=f"conv-{uuid.uuid4().hex}")
            stored = await (await client.post("/v1/messages", json=body, headers=ADMIN)).get_json()
            await client.get(f"/v1/messages/{stored['id']}?tenant_id={tenant}", headers=ADMIN)
            await client.get(f"/v1/messages/{uuid.uuid4()}?tenant_id={tenant}", headers=ADMIN)
            await client.get(f"/v1/conversations/conv-{i}/messages?tenant_id={tenant}", headers=ADMIN)
            await client.get(f"/v1/{uuid.uuid4().hex}", headers=ADMIN)

    await scrape(client)  # the scrape's own route joins the series once
    await traffic(1)
    first = series(await scrape(client))
    await traffic(2)
    second = series(await scrape(client))

    assert second == first
    assert len(first) < 300


async def test_retention_and_rate_limits_are_counted(client):
    await client.post(
        "/v1/messages?wait=true",
        json=message(content="ok", created_at=(NOW - timedelta(days=45)).isoformat()),
        headers=ACME,
    )
    await client.post("/v1/admin/retention/run", json={}, headers=ADMIN)
    text = await scrape(client)
    assert value(text, "memorymesh_retention_messages_total", action="archived") == 1
    assert value(text, "memorymesh_retention_messages_total", action="deleted") == 0


class TestWithATenantLimit:
    @pytest.fixture
    def settings(self, settings):
        return settings.model_copy(update={"tenant_rate_limit": "2/minute"})

    async def test_rate_limit_refusals_are_counted_by_scope(self, client):
        for _ in range(3):
            last = await client.get("/v1/memory/search?tenant_id=acme&query=tea", headers=ACME)
        assert last.status_code == 429
        assert value(await scrape(client), "memorymesh_rate_limit_refusals_total", scope="tenant") == 1


async def test_a_request_id_is_kept_or_made_and_sent_back(client):
    kept = await client.get("/v1/admin/health", headers={"X-Request-ID": "trace-me.42"})
    assert kept.headers["X-Request-ID"] == "trace-me.42"
    made = await client.get("/v1/admin/health", headers={"X-Request-ID": "not ok\u2028<script>"})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-ID"])
    assert re.fullmatch(r"[0-9a-f]{32}", (await client.get("/v1/admin/health")).headers["X-Request-ID"])


async def test_one_log_line_per_request_without_key_or_content(client, caplog):
    caplog.set_level(logging.INFO, logger="memorymesh.requests")
    secret = "my-secret-diary-entry-42"
    await client.post("/v1/messages", json=message(content=secret), headers={**ACME, "X-Request-ID": "req-1"})
    (record,) = [r for r in caplog.records if r.name == "memorymesh.requests"]
    assert (record.method, record.route, record.status, record.tenant) == ("POST", "/v1/messages", 202, "acme")
    assert record.duration_ms >= 0 and record.key_id
    line = JsonFormatter().format(record)
    assert secret not in line and ACME["x-api-key"] not in line


def test_log_lines_carry_the_request_id_of_the_request_being_served():
    token = request_id_var.set("req-7")
    try:
        line = JsonFormatter().format(logging.makeLogRecord({"msg": "inside", "levelname": "INFO"}))
    finally:
        request_id_var.reset(token)
    assert '"request_id": "req-7"' in line
    assert "request_id" not in JsonFormatter().format(logging.makeLogRecord({"msg": "outside"}))


async def test_every_metric_the_dashboard_and_alerts_may_name_is_exported_as_written_down(client):
    """tests/integration/test_deploy.py checks the dashboard and alerts against EXPORTED; this
    checks EXPORTED against what /metrics really serves: names, kinds and labels."""
    from tests.integration.test_deploy import EXPORTED

    await client.post("/v1/messages?wait=true", json=message(), headers=ACME)
    await client.get("/v1/memory/search?tenant_id=acme&query=tea", headers=ACME)
    await client.post("/v1/admin/retention/run", json={}, headers=ADMIN)
    text = await scrape(client)
    kinds = dict(re.findall(r"^# TYPE (memorymesh_\w+) (\w+)$", text, re.M))
    assert {name: m.kind for name, m in EXPORTED.items()} == kinds
    for name, metric in EXPORTED.items():
        samples = [line for line in text.splitlines() if line.startswith(name) and "{" in line]
        labels = {label for line in samples for label in re.findall(r'(\w+)="', line.split("{", 1)[1])} - {"le"}
        assert not samples or labels == metric.labels, name


@pytest.mark.parametrize(
    ("variables", "exporter"),
    [
        ({}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}, "OTLPSpanExporter"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "ConsoleSpanExporter"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, None),
    ],
)
def test_spans_go_where_the_otel_variables_say(monkeypatch, variables, exporter):
    from config.settings import Settings
    from config.tracing import span_exporter

    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER"):
        monkeypatch.delenv(name, raising=False)
    for name, text in variables.items():
        monkeypatch.setenv(name, text)
    chosen = span_exporter(Settings(_env_file=None))
    assert (None if chosen is None else type(chosen).__name__) == exporter
    if exporter == "OTLPSpanExporter":
        assert chosen._endpoint == "http://collector:4318/v1/traces"
