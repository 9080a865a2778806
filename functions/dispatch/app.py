"""Enqueue the period's scan jobs, one per (brand, source, stream): EventBridge Scheduler, every 5 min."""

from emberwatch.dispatch import dispatch, queue_url_from_env
from emberwatch.events import ScheduledEvent
from emberwatch.observability import logger, metrics
from emberwatch.runtime import Runtime

runtime = Runtime.from_env()  # settings checked at cold start; clients built on first use
QUEUE_URL = queue_url_from_env()


@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict, context, runtime: Runtime = runtime) -> dict:
    return dispatch(runtime, ScheduledEvent.parse(event), QUEUE_URL)
