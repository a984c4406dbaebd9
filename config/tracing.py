"""OpenTelemetry traces, configured once by the entrypoint from the standard OTEL_* variables.

Off by default (the API's no-op tracer). OTEL_EXPORTER_OTLP_ENDPOINT set: spans go to that
collector over OTLP/HTTP (the exporter reads the other OTEL_EXPORTER_OTLP_* variables
itself); OTEL_TRACES_EXPORTER=console: to stderr, for a look without a collector.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from config.settings import Settings


def span_exporter(settings: Settings) -> SpanExporter | None:
    """Where spans go, by the OTEL_* settings; None: nowhere (no tracer provider is installed)."""
    if settings.otel_traces_exporter == "none":
        return None
    if settings.otel_traces_exporter == "console":
        return ConsoleSpanExporter()
    if settings.otel_exporter_otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # Given explicitly: the setting may come from .env, which the exporter does not read.
        return OTLPSpanExporter(endpoint=f"{settings.otel_exporter_otlp_endpoint.rstrip('/')}/v1/traces")
    return None


def configure_tracing(settings: Settings, service: str) -> TracerProvider | None:
    """Install a tracer provider when an exporter is configured; return it (to shut down), or None."""
    exporter = span_exporter(settings)
    if exporter is None:
        return None
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: settings.otel_service_name or service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider
