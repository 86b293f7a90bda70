"""
The health log benchmark (bench/health/run.sh runs it): a fresh twd with
the durable profile, one signed-in user, and tw-loadgen driving

  batch_create   BatchCreateHealthLogs, batches of 500 new entries (no
                 external ids, so every call stores 500 more), durable:
                 entries/s = OK calls/s x 500; one user with one call in
                 flight, then four users with one each
  summary_30d    GetDailySummary over 30 days once the user has 100,000
                 stored entries (spread over a year: ~8,200 in the 30 days)

after loading the 100,000 entries as an import would (batches of 500 with
Apple Health external ids, 4 clients), which is reported too. Prints one
JSON line per figure. twd is started and stopped by tests/e2e/twd_harness.py.

Settings (environment): TW_HEALTH_BENCH_ENTRIES (100000),
TW_HEALTH_BENCH_DURATION (10s), TW_HEALTH_BENCH_WARMUP (2s),
TW_HEALTH_BENCH_TIME_ZONE (the user's profile zone; unset: none, so UTC).
The entries carry no utc_offset, so a summary places each one by the
profile's zone: a zone with daylight saving time (America/New_York) shows
what time-zone conversions cost.
"""
import concurrent.futures
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.environ["TW_REPO"], "tests", "e2e"))

from google.protobuf import timestamp_pb2  # noqa: E402
from twd_harness import RPC_TIMEOUT_S, Twd  # noqa: E402
from tw.v1 import health_log_service_pb2 as hl  # noqa: E402
from tw.v1 import health_log_service_pb2_grpc as hl_grpc  # noqa: E402

BATCH = 500
ENTRIES = int(os.environ.get("TW_HEALTH_BENCH_ENTRIES", "100000"))
DURATION = os.environ.get("TW_HEALTH_BENCH_DURATION", "10s")
WARMUP = os.environ.get("TW_HEALTH_BENCH_WARMUP", "2s")
TIME_ZONE = os.environ.get("TW_HEALTH_BENCH_TIME_ZONE", "")
LOADGEN = os.environ["TW_LOADGEN"]
UTC = datetime.timezone.utc
# The stored entries end on this day; the summary covers its last 30 days.
LAST_DAY = datetime.datetime(2024, 12, 31, tzinfo=UTC)
YEAR = datetime.timedelta(days=365)
SERVER_ENV = {"TW_API_CALLS_PER_HOUR": "100000000", "TW_API_WRITE_CALLS_PER_HOUR": "100000000",
              "TW_DURABILITY": "durable"}


def ts(when):
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(when)
    return t


def entry(i, start, external_id=""):
    """Entry i: water, steps, mood, weight, exercise or sleep in turn."""
    kind = i % 6
    e = hl.HealthLog(start_time=ts(start), external_id=external_id,
                     source=hl.HEALTH_LOG_SOURCE_APPLE_HEALTH if external_id else 0)
    if kind == 0:
        e.water.volume_ml = 250
    elif kind == 1:
        e.end_time.CopyFrom(ts(start + datetime.timedelta(hours=1)))
        e.steps.count = 800 + i % 500
    elif kind == 2:
        e.mood.valence = (i % 21 - 10) / 10
        e.mood.labels.append("calm")
    elif kind == 3:
        e.weight.weight_kg = 70 + (i % 50) / 10
    elif kind == 4:
        e.end_time.CopyFrom(ts(start + datetime.timedelta(minutes=30)))
        e.exercise.activity = "running"
        e.exercise.distance_meters = 5000
    else:
        e.end_time.CopyFrom(ts(start + datetime.timedelta(hours=7)))
        e.sleep.SetInParent()
    return e


def load(twd, account):
    """Imports ENTRIES entries spread over the year before LAST_DAY, as 4
    clients sending batches of 500 with external ids; returns the figure."""
    stub = twd.stub(hl_grpc.HealthLogServiceStub)
    step = YEAR / ENTRIES

    def batch(b):
        entries = [entry(i, LAST_DAY - YEAR + i * step, f"HK-{i:07d}")
                   for i in range(b * BATCH, min((b + 1) * BATCH, ENTRIES))]
        reply = stub.BatchCreateHealthLogs(hl.BatchCreateHealthLogsRequest(entries=entries),
                                           metadata=account.metadata, timeout=60)
        return len(reply.results)

    began = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        stored = sum(pool.map(batch, range((ENTRIES + BATCH - 1) // BATCH)))
    seconds = time.monotonic() - began
    return {"figure": "import_load", "entries": stored, "batch": BATCH, "clients": 4,
            "seconds": round(seconds, 2), "entries_per_s": round(stored / seconds, 1)}


def loadgen_command(twd, account, method, path, concurrency):
    return [LOADGEN, "-c", str(concurrency), "-m", str(min(concurrency, 4)), "-d", DURATION,
            "--warmup", WARMUP, "--deadline", "60s", "-H",
            f"authorization: Bearer {account.access_token}", "--data-file", path, twd.address,
            method]


def write_request(work, name, request):
    path = os.path.join(work, name + ".bin")
    with open(path, "wb") as f:
        f.write(request.SerializeToString())
    return path


def loadgen(twd, accounts, method, path, concurrency):
    """tw-loadgen for each account at once (concurrency calls each); their
    JSON results."""
    runs = [subprocess.Popen(loadgen_command(twd, a, method, path, concurrency),
                             stdout=subprocess.PIPE, text=True) for a in accounts]
    results = []
    for run in runs:
        out, _ = run.communicate(timeout=600)
        if run.returncode != 0:
            raise RuntimeError(f"tw-loadgen exited with {run.returncode}")
        results.append(json.loads(out))
    return results


def main():
    with Twd(env=SERVER_ENV) as twd, tempfile.TemporaryDirectory(prefix="tw-health-bench-") as work:
        account = twd.sign_up(time_zone=TIME_ZONE) if TIME_ZONE else twd.sign_up()
        stub = twd.stub(hl_grpc.HealthLogServiceStub)
        print(json.dumps(load(twd, account)), flush=True)

        summary = hl.GetDailySummaryRequest(
            start_date=(LAST_DAY - datetime.timedelta(days=29)).date().isoformat(),
            end_date=LAST_DAY.date().isoformat())
        reply = stub.GetDailySummary(summary, metadata=account.metadata, timeout=RPC_TIMEOUT_S)
        counted = sum(d.entry_count for d in reply.days)
        [result] = loadgen(twd, [account], "/tw.v1.HealthLogService/GetDailySummary",
                           write_request(work, "summary", summary), 8)
        print(json.dumps({"figure": "summary_30d", "stored_entries": ENTRIES,
                          "entries_in_30_days": counted, "time_zone": reply.time_zone,
                          "concurrency": 8,
                          "calls_per_s": result["calls_per_s"],
                          "latency_ms": result["latency_ms"], "status": result["status"]}),
              flush=True)

        # New entries (no external ids) in 2023, away from the summary's days:
        # every call stores 500 more. One user importing, then four users at
        # once (one user's writes take turns on its change log; different
        # users' commits share fsyncs).
        fresh = write_request(work, "batch", hl.BatchCreateHealthLogsRequest(entries=[
            entry(i, datetime.datetime(2023, 1, 1, tzinfo=UTC) + i * datetime.timedelta(
                minutes=7)) for i in range(BATCH)]))
        others = [account] + [twd.sign_up() for _ in range(3)]
        for users in ([account], others):
            results = loadgen(twd, users, "/tw.v1.HealthLogService/BatchCreateHealthLogs",
                              fresh, 1)
            ok = sum(r["status"].get("OK", 0) for r in results)
            seconds = results[0]["duration_s"]
            status = {}
            for r in results:
                for code, n in r["status"].items():
                    status[code] = status.get(code, 0) + n
            print(json.dumps({"figure": "batch_create", "durability": "durable",
                              "batch": BATCH, "users": len(users), "calls_in_flight": len(users),
                              "calls_per_s": round(ok / seconds, 1),
                              "entries_per_s": round(ok * BATCH / seconds, 1),
                              "latency_ms_p50": [r["latency_ms"]["p50"] for r in results],
                              "latency_ms_p99": [r["latency_ms"]["p99"] for r in results],
                              "status": status}),
                  flush=True)


if __name__ == "__main__":
    main()
