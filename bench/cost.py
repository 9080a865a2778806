"""Monthly AWS cost of Emberwatch (queue mode) at 1,000, 100,000 and 1,000,000 mentions a day.

Recomputes the table in docs/cost.md from measured figures and list prices:

- `--scale out/scale.json` (from `make scale`, i.e. `python -m sim.scale --json ...`): jobs per brand
  and period, SQS/DynamoDB requests and estimated capacity units per job and per mention, Lambda
  seconds per job, log bytes per job, mention item size;
- `--ingest "ingest ms_per_mention=... ddb_requests_per_1000=..."` (bench/ingest.py's last line, or
  `--run-ingest` to run it): CPU per mention, and DynamoDB requests per 1,000 mentions (cross-check).

Every formula is in `monthly_cost`; assumptions that were not measured are named in ASSUMPTIONS.
Last line: `cost 1k=<$> 100k=<$> 1M=<$>` (USD per month).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DAYS = 30
PERIODS_PER_DAY = 288  # the 5-minute dispatcher

# AWS list prices, us-east-1, USD, as published on the services' pricing pages (checked 2025; re-check
# before relying on them). Free tiers are left out: the figures are what a busy account pays.
PRICES = {
    "lambda_request": 0.20 / 1e6,  # per invocation
    "lambda_gb_s_arm": 0.0000133334,  # per GB-second, arm64
    "ddb_wru": 0.625 / 1e6,  # on-demand write request unit (price since Nov 2024)
    "ddb_rru": 0.125 / 1e6,  # on-demand read request unit
    "ddb_storage_gb": 0.25,  # per GB-month (table and index)
    "ddb_pitr_gb": 0.20,  # continuous backup, per GB-month
    "sqs_fifo_request": 0.50 / 1e6,  # per 64 KB request
    "ses_email": 0.10 / 1000,
    "sns_publish": 0.50 / 1e6,
    "sns_email": 2.00 / 1e5,
    "scheduler_invocation": 1.00 / 1e6,  # after 14 M free a month (counted here, see docs/cost.md)
    "logs_ingest_gb": 0.50,
    "logs_storage_gb": 0.03,  # per GB-month
    "metric": 0.30,  # custom metric per month (first 10,000)
    "alarm": 0.10,  # standard-resolution alarm per month
    "dashboard": 3.00,
    "secret": 0.40,
    "kms_key": 1.00,
}

# What the benchmarks do not measure; each is a named, overridable guess.
ASSUMPTIONS = {
    "api_latency_s": 0.3,  # a real source API answer; the local servers answer in milliseconds
    "ddb_latency_s": 0.006,  # a DynamoDB call from Lambda in the same region
    "worker_gb": 0.5,  # ScanWorkerFunction MemorySize 512
    "dispatch_gb": 0.25,
    "detect_s_base": 0.3,  # detect run: fixed part, plus per brand (reads a few counter partitions)
    "detect_s_per_brand": 0.02,
    "digest_s_per_recipient": 0.5,
    "recipients_per_brand": 2,  # one digest each a day
    "alerts_per_brand_day": 1,  # SNS publishes, each delivered to one email subscription
    "retention_days": 90,  # mention items (TTL)
    "gsi_copies": 1,  # gsi1 projects ALL: a second copy of each mention
    "log_retention_days": 30,
    "platform_log_bytes": 350,  # START/END/REPORT lines per invocation
    "idle_sqs_polls_per_day": 5 * 3 * 1440,  # Lambda's pollers long-poll (20 s) an empty queue
    "custom_metrics": 7 * 9 + 16,  # 7 per-source metrics x 9 sources + service-level ones
    "alarms": 16,  # AWS::CloudWatch::Alarm in infra/template.yaml
}

TIERS = {"1k": (1_000, 5), "100k": (100_000, 100), "1M": (1_000_000, 500)}  # mentions/day, brands


@dataclass(frozen=True)
class Measured:
    streams_per_brand: float  # jobs per brand per period, every source every 5 minutes
    due_fraction: float  # share of those jobs due per period with YouTube hourly, Stack Exchange 15-min
    records_per_invocation: float
    job_cpu_s: float  # CPU per job record in the local run (workers + moto + servers: an upper bound)
    job_wall_s: float  # wall per job record in the local run (8 threads on 2 shared cores: contention)
    ddb_calls_per_job: float
    http_per_job: float
    wru_per_job: float  # cursor, run record, tokens
    rru_per_job: float
    wru_per_mention: float  # the transaction that stores a page: mention, index, counters, tops, author
    mention_kb: float
    log_bytes_per_job: float
    dispatch_s_per_job: float
    ms_per_mention: float  # CPU: parse, match, enrich, store (bench/ingest.py)
    ddb_requests_per_1000: float


def measured(scale: dict[str, Any], ingest: dict[str, float]) -> Measured:
    """The per-job and per-mention figures from a scale run's summary and the ingest benchmark's line."""
    jobs, brands = scale["jobs"], scale["brands"]
    records = scale["scanned"] + scale["failed_attempts"]
    per_source = scale["jobs_per_source"]
    every = {"youtube": 12, "stackexchange": 3}  # template defaults: rate(1 hour), rate(15 minutes)
    due = sum(n / every.get(source, 1) for source, n in per_source.items()) / jobs
    units = scale["ddb_units_scan"]
    mentions = max(1, scale["mentions"])
    return Measured(
        streams_per_brand=jobs / brands,
        due_fraction=due,
        records_per_invocation=records / scale["invocations"],
        job_cpu_s=scale.get("scan_cpu_s", scale["lambda_billed_s"]) / records,
        job_wall_s=scale["lambda_billed_s"] / records,
        ddb_calls_per_job=sum(n for k, n in scale["aws_calls_scan"].items() if k.startswith("dynamodb."))
        / records,
        http_per_job=sum(scale["http_requests"].values()) / records,
        wru_per_job=units.get("wru", 0) / records,
        rru_per_job=units.get("rru", 0) / records,
        wru_per_mention=units.get("wru_mentions", 0) / mentions,
        mention_kb=units.get("mention_bytes", 1024 * mentions)
        / max(1, units.get("mention_items", mentions))
        / 1024,
        log_bytes_per_job=scale["log_bytes"] / records,
        dispatch_s_per_job=scale["dispatch_s"] / jobs,
        ms_per_mention=ingest["ms_per_mention"],
        ddb_requests_per_1000=ingest["ddb_requests_per_1000"],
    )


def monthly_cost(
    m: Measured, mentions_per_day: float, brands: int, a: dict[str, float] = ASSUMPTIONS
) -> dict:
    """USD per month by service, with the daily quantities they come from."""
    p = PRICES
    jobs = brands * m.streams_per_brand * m.due_fraction * PERIODS_PER_DAY  # per day
    invocations = jobs / m.records_per_invocation
    # a job's Lambda time: its CPU, plus waiting for the source API and DynamoDB
    job_s = m.job_cpu_s + m.http_per_job * a["api_latency_s"] + m.ddb_calls_per_job * a["ddb_latency_s"]
    worker_s = jobs * job_s + mentions_per_day * m.ms_per_mention / 1000
    dispatch_s = jobs * m.dispatch_s_per_job
    detect_s = PERIODS_PER_DAY * (a["detect_s_base"] + a["detect_s_per_brand"] * brands)
    recipients = brands * a["recipients_per_brand"]
    digest_s = recipients * a["digest_s_per_recipient"]
    gb_s = worker_s * a["worker_gb"] + dispatch_s * a["dispatch_gb"] + (detect_s + digest_s) * a["worker_gb"]
    lambda_requests = invocations + 2 * PERIODS_PER_DAY + 1
    wru = jobs * m.wru_per_job + mentions_per_day * m.wru_per_mention
    rru = jobs * m.rru_per_job + PERIODS_PER_DAY * brands * 4  # detect: window counters, incidents, care
    stored_gb = mentions_per_day * a["retention_days"] * m.mention_kb * (1 + a["gsi_copies"]) / 1024**2
    sqs_requests = jobs / 10 + invocations * 2 + a["idle_sqs_polls_per_day"]
    alerts = brands * a["alerts_per_brand_day"]
    log_gb = (jobs * m.log_bytes_per_job + lambda_requests * a["platform_log_bytes"]) / 1024**3
    scheduler = 2 * PERIODS_PER_DAY + 1
    cost = {
        "Lambda": DAYS * (lambda_requests * p["lambda_request"] + gb_s * p["lambda_gb_s_arm"]),
        "DynamoDB requests": DAYS * (wru * p["ddb_wru"] + rru * p["ddb_rru"]),
        "DynamoDB storage+PITR": stored_gb * (p["ddb_storage_gb"] + p["ddb_pitr_gb"]),
        "SQS": DAYS * sqs_requests * p["sqs_fifo_request"],
        "SES": DAYS * recipients * p["ses_email"],
        "SNS": DAYS * alerts * (p["sns_publish"] + p["sns_email"]),
        "Scheduler": DAYS * scheduler * p["scheduler_invocation"],
        "CloudWatch logs": DAYS * log_gb * p["logs_ingest_gb"]
        + log_gb * a["log_retention_days"] * p["logs_storage_gb"],
        "CloudWatch metrics+alarms+dashboard": a["custom_metrics"] * p["metric"]
        + a["alarms"] * p["alarm"]
        + p["dashboard"],
        "Secrets Manager+KMS": p["secret"] + p["kms_key"],
    }
    daily = {
        "jobs": jobs,
        "lambda_invocations": lambda_requests,
        "lambda_gb_s": gb_s,
        "wru": wru,
        "rru": rru,
        "stored_gb": stored_gb,
        "sqs_requests": sqs_requests,
        "log_gb": log_gb,
    }
    return {"cost": cost, "total": sum(cost.values()), "daily": daily}


def parse_ingest(line: str) -> dict[str, float]:
    """`ingest ms_per_mention=0.9 ddb_requests_per_1000=240.0` -> its numbers."""
    values = dict(re.findall(r"(\w+)=([0-9.]+)", line))
    missing = {"ms_per_mention", "ddb_requests_per_1000"} - set(values)
    if missing:
        raise SystemExit(f"error: --ingest needs {', '.join(sorted(missing))}: got {line!r}")
    return {k: float(v) for k, v in values.items()}


def table(rows: dict[str, dict[str, Any]]) -> str:
    names = list(next(iter(rows.values()))["cost"])
    out = ["| service | " + " | ".join(f"{t}/day" for t in rows) + " |", "|---" * (len(rows) + 1) + "|"]
    for name in names:
        out.append(f"| {name} | " + " | ".join(f"${r['cost'][name]:,.2f}" for r in rows.values()) + " |")
    out.append(
        "| **total per month** | " + " | ".join(f"**${r['total']:,.2f}**" for r in rows.values()) + " |"
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/cost.py", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--scale", type=Path, default=ROOT / "out" / "scale.json", help="sim.scale --json output"
    )
    parser.add_argument("--ingest", help="bench/ingest.py's last line")
    parser.add_argument("--run-ingest", action="store_true", help="run bench/ingest.py for it")
    parser.add_argument(
        "--brands", nargs=3, type=int, metavar=("B1K", "B100K", "B1M"), help="brands per tier"
    )
    args = parser.parse_args(argv)
    if not args.scale.is_file():
        print(f"error: {args.scale} is missing: run `make scale` (python -m sim.scale --json {args.scale})")
        return 2
    scale = json.loads(args.scale.read_text())
    if args.run_ingest:
        run = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "ingest.py")], capture_output=True, text=True
        )
        args.ingest = run.stdout.strip().splitlines()[-1]
    if not args.ingest:
        print("error: give --ingest '<bench/ingest.py last line>' or --run-ingest")
        return 2
    m = measured(scale, parse_ingest(args.ingest))
    tiers = dict(TIERS)
    if args.brands:
        tiers = {k: (v[0], b) for (k, v), b in zip(TIERS.items(), args.brands, strict=True)}
    rows = {name: monthly_cost(m, per_day, brands) for name, (per_day, brands) in tiers.items()}
    print("measured: " + ", ".join(f"{k}={v:.4g}" for k, v in vars(m).items()))
    for name, row in rows.items():
        per_day, brands = tiers[name]
        print(
            f"{name}: {per_day:,} mentions/day, {brands} brands: "
            + ", ".join(f"{k}={v:,.4g}" for k, v in row["daily"].items())
        )
    print()
    print(table(rows))
    print()
    print("cost " + " ".join(f"{name}={row['total']:.2f}" for name, row in rows.items()))
    assert all(math.isfinite(r["total"]) for r in rows.values())
    return 0


if __name__ == "__main__":
    sys.exit(main())
