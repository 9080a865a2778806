"""The one place that builds Powertools Logger and Metrics.

Tracer is left out: it imports X-Ray and botocore patching, about 250 ms of cold start.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

# Named "emberwatch" so every module logger (emberwatch.scan, emberwatch.sources.feed, ...)
# propagates into it and comes out as structured JSON with the run's keys.
logger = Logger(service="emberwatch")
metrics = Metrics(namespace="Emberwatch", service="emberwatch")

__all__ = ["MetricUnit", "logger", "metrics"]
