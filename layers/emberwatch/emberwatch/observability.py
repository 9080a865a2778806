"""The one place that builds Powertools Logger and Metrics.

Tracer is left out: it imports X-Ray and botocore patching, about 250 ms of cold start, for traces of
calls whose durations the logs and metrics already show.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

# Named "emberwatch" so every module logger (emberwatch.scan, emberwatch.sources.feed, ...)
# propagates into it and comes out as structured JSON with the run's keys.
logger = Logger(service="emberwatch")
metrics = Metrics(namespace="Emberwatch", service="emberwatch")


def count_invalid_config(_error: Any = None) -> None:
    """One `ConfigInvalid` datapoint, with the service dimension only, whatever the run has added.

    Written at once (its own EMF line), so the ConfigInvalid alarm sees it even when the run fails.
    """
    from aws_lambda_powertools.metrics import single_metric

    with single_metric(
        name="ConfigInvalid",
        unit=MetricUnit.Count,
        value=1,
        namespace=metrics.namespace,
        default_dimensions={"service": metrics.service or "emberwatch"},
    ):
        pass


__all__ = ["MetricUnit", "count_invalid_config", "logger", "metrics"]
