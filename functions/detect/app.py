"""Detect spikes for every brand and notify on-call: EventBridge Scheduler, every 5 minutes."""

from emberwatch.events import ScheduledEvent
from emberwatch.observability import logger, metrics
from emberwatch.runtime import Runtime

runtime = Runtime.from_env(require=("ALERT_TOPIC_ARN",))


@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict, context, runtime: Runtime = runtime) -> dict:
    return runtime.detect(ScheduledEvent.parse(event), context.get_remaining_time_in_millis())
