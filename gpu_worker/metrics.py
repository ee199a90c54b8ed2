"""Prometheus metrics of one worker app (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class WorkerMetrics:
    """Requests by status, latency, queue depth, batch sizes, tokens, S3 failures, the spool, GPU memory."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ocr_requests", "Chat-completion requests by status", ["status"], registry=self.registry
        )
        self.latency = Histogram(
            "ocr_request_seconds", "End-to-end request latency", registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 60, 100, 120),
        )  # fmt: skip
        self.queue_wait = Histogram(
            "ocr_queue_seconds", "Time spent queued before a batch", registry=self.registry
        )
        self.inference = Histogram("ocr_batch_seconds", "Engine time per batch", registry=self.registry)
        self.queue_depth = Gauge("ocr_queue_depth", "Requests waiting for a batch", registry=self.registry)
        self.batch_size = Histogram(
            "ocr_batch_size",
            "Requests per engine batch",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64),
        )
        self.tokens = Counter("ocr_tokens", "Tokens processed", ["kind"], registry=self.registry)
        self.s3_failures = Counter(
            "ocr_s3_failures", "Result writes to S3 that failed", registry=self.registry
        )
        self.spool_results = Gauge(
            "ocr_spool_results", "Results kept on local disk until S3 takes them", registry=self.registry
        )
        self.spool_bytes = Gauge("ocr_spool_bytes", "Bytes held by the result spool", registry=self.registry)
        self.spool_written = Counter(
            "ocr_spool_written", "Spooled results written to S3 later", registry=self.registry
        )
        self.spool_dropped = Gauge(
            "ocr_spool_dropped",
            "Spooled results pushed out (oldest first) by a full spool",
            registry=self.registry,
        )
        self.results_lost = Counter(
            "ocr_results_lost", "Results neither written to S3 nor kept in the spool", registry=self.registry
        )
        self.admission_rejected = Counter(
            "ocr_admission_rejected", "Requests refused early because the estimated wait was too long",
            registry=self.registry,
        )  # fmt: skip
        self.gpu_memory = Gauge(
            "ocr_gpu_memory_bytes", "GPU memory allocated by the engine", registry=self.registry
        )

    def render(self) -> bytes:
        """The exposition text, refreshing the GPU memory gauge when CUDA is in use."""
        import sys

        torch = sys.modules.get("torch")  # only look when the engine already imported it
        if torch is not None and torch.cuda.is_available():
            self.gpu_memory.set(torch.cuda.memory_allocated())
        return generate_latest(self.registry)
