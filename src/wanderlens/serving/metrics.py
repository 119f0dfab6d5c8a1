"""Prometheus text metrics for the REST service: request counts, latency histograms, model version, reloads.

A small thread-safe implementation of the text exposition format (0.0.4), so serving needs no extra dependency.
"""

from __future__ import annotations

import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _labels(**kv: str) -> str:
    def esc(v: str) -> str:
        return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in kv.items()) + "}"


class ServiceMetrics:
    """Counters and histograms the app updates per request; `render()` gives the /metrics body."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self.latency_buckets: dict[tuple[str, str], list[int]] = {}
        self.latency_sum: dict[tuple[str, str], float] = defaultdict(float)
        self.latency_count: dict[tuple[str, str], int] = defaultdict(int)
        self.reloads = 0
        self.reload_failures = 0
        self.model_version: int | None = None
        self.in_flight = 0

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished request and its latency."""
        with self._lock:
            self.requests[(method, route, str(status))] += 1
            key = (method, route)
            buckets = self.latency_buckets.setdefault(key, [0] * len(LATENCY_BUCKETS))
            for i, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    buckets[i] += 1
            self.latency_sum[key] += seconds
            self.latency_count[key] += 1

    def add_in_flight(self, delta: int) -> None:
        with self._lock:
            self.in_flight += delta

    def render(self) -> str:
        """The Prometheus text exposition of every metric."""
        with self._lock:
            lines = ["# HELP wanderlens_requests_total HTTP requests by method, route and status.",
                     "# TYPE wanderlens_requests_total counter"]
            for (method, route, status), n in sorted(self.requests.items()):
                lines.append(f"wanderlens_requests_total{_labels(method=method, route=route, status=status)} {n}")
            lines += ["# HELP wanderlens_request_duration_seconds Request latency by method and route.",
                      "# TYPE wanderlens_request_duration_seconds histogram"]
            for (method, route), buckets in sorted(self.latency_buckets.items()):
                for bound, n in zip(LATENCY_BUCKETS, buckets, strict=True):
                    lab = _labels(method=method, route=route, le=repr(bound))
                    lines.append(f"wanderlens_request_duration_seconds_bucket{lab} {n}")
                count = self.latency_count[(method, route)]
                lab = _labels(method=method, route=route, le="+Inf")
                lines.append(f"wanderlens_request_duration_seconds_bucket{lab} {count}")
                lab = _labels(method=method, route=route)
                lines.append(f"wanderlens_request_duration_seconds_sum{lab} {self.latency_sum[(method, route)]:.6f}")
                lines.append(f"wanderlens_request_duration_seconds_count{lab} {count}")
            lines += ["# HELP wanderlens_model_version Registry version of the model being served.",
                      "# TYPE wanderlens_model_version gauge",
                      f"wanderlens_model_version {self.model_version if self.model_version is not None else 'NaN'}",
                      "# HELP wanderlens_model_reloads_total Successful model reloads after an alias change.",
                      "# TYPE wanderlens_model_reloads_total counter",
                      f"wanderlens_model_reloads_total {self.reloads}",
                      "# HELP wanderlens_model_reload_failures_total Reloads that failed (the old model stays).",
                      "# TYPE wanderlens_model_reload_failures_total counter",
                      f"wanderlens_model_reload_failures_total {self.reload_failures}",
                      "# HELP wanderlens_requests_in_flight Requests being handled now.",
                      "# TYPE wanderlens_requests_in_flight gauge",
                      f"wanderlens_requests_in_flight {self.in_flight}"]
            return "\n".join(lines) + "\n"
