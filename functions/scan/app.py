"""Scan one source for every brand (EventBridge Scheduler, every 5 minutes per source), or, in queue
mode, the scan jobs of an SQS batch (`queue_handler`, one stream each)."""

from emberwatch.events import ScheduledEvent
from emberwatch.observability import logger, metrics
from emberwatch.runtime import Runtime

runtime = Runtime.from_env()  # settings checked at cold start; clients built on first use


@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict, context, runtime: Runtime = runtime) -> dict:
    return runtime.scan(ScheduledEvent.parse(event), context.get_remaining_time_in_millis())


@logger.inject_lambda_context(clear_state=True)
def queue_handler(event: dict, context, runtime: Runtime = runtime) -> dict:
    from emberwatch.dispatch import scan_batch

    return scan_batch(runtime, event, context)
