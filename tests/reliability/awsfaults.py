"""AWS faults through botocore's own event system, in front of moto (no hand-written fake of AWS).

`AwsFaults.fail(client, operation, code, times)` registers a `before-send` handler, first in line
before moto's stubber, that answers the next `times` calls of `operation` with the real error
response of that service's protocol; botocore then parses it into the real `ClientError` and its
retry handler decides, as it would against AWS. `unprocessed(client, times)` empties BatchGetItem
answers into `UnprocessedKeys` (an `after-call` hook). Retry sleeps are recorded, not slept.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import botocore.endpoint
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse

# DynamoDB (JSON 1.0), SNS (query/XML), SES v2 (REST-JSON): the error shapes each protocol answers with
_STATUS = {
    "ProvisionedThroughputExceededException": 400,
    "ThrottlingException": 400,
    "Throttling": 400,
    "TooManyRequestsException": 429,
    "InternalServerError": 500,
    "InternalError": 500,
    "InternalFailure": 500,
    "ServiceUnavailable": 503,
    "TransactionConflict": 400,
}


def error_response(service: str, code: str) -> AWSResponse:
    status = _STATUS.get(code, 400)
    headers: dict[str, str] = {"x-amzn-RequestId": "fault-injected"}
    if service == "dynamodb":
        if code == "TransactionConflict":
            body = {
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons "
                "[TransactionConflict]",
                "CancellationReasons": [{"Code": "TransactionConflict", "Message": "Transaction is ongoing"}],
            }
        else:
            body = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": f"injected {code}"}
        raw = json.dumps(body).encode()
        headers["Content-Type"] = "application/x-amz-json-1.0"
    elif service == "sns":
        kind = "Receiver" if status >= 500 else "Sender"
        raw = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>injected {code}</Message>"
            f"</Error><RequestId>fault-injected</RequestId></ErrorResponse>"
        ).encode()
        headers["Content-Type"] = "text/xml"
    else:  # REST-JSON (SES v2, and the like)
        raw = json.dumps({"message": f"injected {code}"}).encode()
        headers.update({"Content-Type": "application/json", "x-amzn-ErrorType": code})
    return AWSResponse("https://injected.example", status, headers, MockRawResponse(raw))


class AwsFaults:
    """Install with `with AwsFaults() as aws_faults:`; counts what it injected per (operation, code)."""

    def __init__(self) -> None:
        self.injected: Counter[str] = Counter()
        self.sleeps: list[float] = []
        self._handlers: list[tuple[Any, str, Any]] = []
        self._saved: dict[str, Any] = {}
        self._lock = threading.Lock()

    def fail(self, client: Any, operation: str, code: str, times: int, *, executed: bool = False) -> None:
        """The next `times` calls of `operation` answer `code`. With `executed` the request still reaches
        moto (the write happened, its answer was lost: a timeout after the commit); without, it does not
        (a throttled or failed request changes nothing, as on AWS)."""
        service = client.meta.service_model.service_name
        event = f"before-send.{client.meta.service_model.service_id.hyphenize()}.{operation}"
        left = {"n": times}

        def handler(request: Any = None, **kwargs: Any) -> AWSResponse | None:
            with self._lock:
                if left["n"] <= 0:
                    return None
                left["n"] -= 1
                self.injected[f"{operation}:{code}" + (":executed" if executed else "")] += 1
            if not executed and request is not None:
                request.emberwatch_rejected = True  # botocore still calls moto's stubber: it skips this one
            return error_response(service, code)

        client.meta.events.register_first(event, handler)
        self._handlers.append((client, event, handler))

    def unprocessed(self, client: Any, times: int) -> None:
        """The next `times` BatchGetItem answers return nothing and every key as unprocessed."""
        left = {"n": times}
        event = "after-call.dynamodb.BatchGetItem"

        def handler(http_response: Any, parsed: dict[str, Any], model: Any, **kwargs: Any) -> None:
            params = kwargs.get("context", {}).get("request_params") or {}
            if left["n"] <= 0 or not parsed.get("Responses"):
                return
            left["n"] -= 1
            self.injected["BatchGetItem:UnprocessedKeys"] += 1
            keys = {
                table: {"Keys": [_key(item) for item in items]}
                for table, items in parsed["Responses"].items()
            }
            parsed["Responses"] = {table: [] for table in parsed["Responses"]}
            parsed["UnprocessedKeys"] = keys or params

        client.meta.events.register(event, handler)
        self._handlers.append((client, event, handler))

    def clear(self) -> None:
        """The faults are over: remove every hook."""
        for client, event, handler in self._handlers:
            client.meta.events.unregister(event, handler)
        self._handlers.clear()

    @property
    def total(self) -> int:
        return sum(self.injected.values())

    def __enter__(self) -> AwsFaults:
        faults = self

        class _Time:
            """botocore.endpoint's view of `time`: retry delays are recorded, not slept."""

            def __getattr__(self, name: str) -> Any:
                import time

                return getattr(time, name)

            @staticmethod
            def sleep(seconds: float) -> None:
                faults.sleeps.append(seconds)

        self._saved["time"] = botocore.endpoint.time
        botocore.endpoint.time = _Time()  # type: ignore[assignment]
        # DynamoDB applies each request atomically; moto in-process does not lock: serialise its calls
        self._saved["stub"] = BotocoreStubber.__call__
        original, lock = BotocoreStubber.__call__, threading.RLock()

        def serialised(stub: Any, *args: Any, **kwargs: Any) -> Any:
            if getattr(kwargs.get("request"), "emberwatch_rejected", False):
                return None
            with lock:
                return original(stub, *args, **kwargs)

        BotocoreStubber.__call__ = serialised  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        self.clear()
        botocore.endpoint.time = self._saved["time"]  # type: ignore[assignment]
        BotocoreStubber.__call__ = self._saved["stub"]  # type: ignore[method-assign]


def _key(item: dict[str, Any]) -> dict[str, Any]:
    return {"pk": item["pk"], "sk": item["sk"]}
