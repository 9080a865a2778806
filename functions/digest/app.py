"""Send the managers' digests: EventBridge Scheduler, daily at the configured local hour."""

from emberwatch.events import ScheduledEvent
from emberwatch.observability import logger, metrics
from emberwatch.runtime import Runtime

runtime = Runtime.from_env(require=("SENDER_EMAIL",))


@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict, context, runtime: Runtime = runtime) -> dict:
    return runtime.digest(ScheduledEvent.parse(event))
