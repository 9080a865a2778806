"""The one place that builds Powertools Logger and Metrics.

Every metric carries the `service` and `stage` dimensions (dev and prod may share an account: their
alarms and dashboards must not see each other's data). Tracer is left out: it imports X-Ray and
botocore patching, about 250 ms of cold start, for traces of calls whose durations the logs and
metrics already show.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

STAGE = os.environ.get("STAGE") or "dev"

# Named "emberwatch" so every module logger (emberwatch.scan, emberwatch.sources.feed, ...)
# propagates into it and comes out as structured JSON with the run's keys.
logger = Logger(service="emberwatch")
metrics = Metrics(namespace="Emberwatch", service="emberwatch")
metrics.set_default_dimensions(stage=STAGE)


def separate_metrics() -> Any:
    """Metrics flushed as their own EMF document, with their own dimensions (and the stage)."""
    from aws_lambda_powertools.metrics import EphemeralMetrics

    own = EphemeralMetrics(namespace=metrics.namespace, service=metrics.service)
    own.set_default_dimensions(stage=STAGE)
    return own


def count_invalid_config(_error: Any = None) -> None:
    """One `ConfigInvalid` datapoint with the service and stage dimensions only, whatever the run added.

    Written at once (its own EMF line), so the ConfigInvalid alarm sees it even when the run fails.
    """
    from aws_lambda_powertools.metrics import single_metric

    with single_metric(
        name="ConfigInvalid",
        unit=MetricUnit.Count,
        value=1,
        namespace=metrics.namespace,
        default_dimensions={"service": metrics.service or "emberwatch", "stage": STAGE},
    ):
        pass


__all__ = ["STAGE", "MetricUnit", "count_invalid_config", "logger", "metrics", "separate_metrics"]
