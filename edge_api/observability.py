"""Powertools Logger and Metrics for the edge. Metrics go out as EMF in Lambda; locally they are off."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

NAMESPACE = "DeepSeekOCR"
SERVICE = "edge-api"


def make_logger() -> Logger:
    """A JSON logger; POWERTOOLS_SERVICE_NAME and POWERTOOLS_LOG_LEVEL override the defaults."""
    return Logger(service=SERVICE)


def make_metrics() -> Metrics:
    """The per-invocation metrics object (flushed by the handler's decorator)."""
    return Metrics(namespace=NAMESPACE, service=SERVICE)


class EdgeMetrics:
    """Requests, errors by type, latency; pages and tokens per API key id (EMF)."""

    def __init__(self, metrics: Metrics | None, enabled: bool) -> None:
        self.metrics = metrics
        self.enabled = enabled and metrics is not None

    def request(self, route: str, status: int, latency_ms: float, error_type: str | None) -> None:
        """One finished request."""
        if not self.enabled or self.metrics is None:
            return
        self.metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
        self.metrics.add_metric(name="LatencyMs", unit=MetricUnit.Milliseconds, value=latency_ms)
        self.metrics.add_metadata(key="route", value=route)
        if status >= 400:
            with single_metric(name="Errors", unit=MetricUnit.Count, value=1, namespace=NAMESPACE) as metric:
                metric.add_dimension(name="error_type", value=error_type or str(status))

    def usage(self, key_id: str, usage: dict[str, Any] | None) -> None:
        """Pages and tokens of one OCR call, by API key id."""
        if not self.enabled:
            return
        tokens = int((usage or {}).get("total_tokens") or 0)
        for name, value in (("Pages", 1), ("Tokens", tokens)):
            with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=NAMESPACE) as metric:
                metric.add_dimension(name="api_key_id", value=key_id)

    def job_event(self, name: str, key_id: str, value: int = 1) -> None:
        """A jobs event (JobsCreated, JobsCancelled), by API key id; pages are counted by the workers."""
        if not self.enabled:
            return
        with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=NAMESPACE) as metric:
            metric.add_dimension(name="api_key_id", value=key_id)
