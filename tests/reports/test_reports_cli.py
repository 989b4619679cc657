"""``gateway demo seed`` and ``gateway report`` as a newcomer runs them (real processes, the test's key prefix)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys


def gateway(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "gateway", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def test_seed_then_the_monthly_report(redis_url, key_prefix):
    env = {**os.environ, "REDIS_URL": redis_url, "GATEWAY_REDIS_KEY_PREFIX": key_prefix}
    seeded = gateway("demo", "seed", "--days", "10", "--per-day", "300", env=env)
    assert seeded.returncode == 0, seeded.stderr
    assert seeded.stdout.startswith("seeded 10 days: ") and " conversations" in seeded.stdout

    out = gateway("report", "--format", "json", env=env)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert set(body) == {"satisfaction", "service_levels", "quality", "staffing"}
    levels = body["service_levels"]["total"]
    assert 2000 < levels["conversations"] < 3400  # ten days of about 300 (weekends fewer)
    assert 0.8 < levels["containment"] < 0.92 and 0 < levels["pickup_within_target"] <= 1
    assert body["satisfaction"]["total"]["surveys"] > 100 and 20 <= body["satisfaction"]["total"]["average"] <= 100
    assert body["quality"]["agents"] and len(body["staffing"]["hours"]) == 24

    monthly = gateway("report", "--format", "csv", "--report", "satisfaction", "--group-by", "channel", env=env)
    assert monthly.returncode == 0, monthly.stderr
    head, _, table = monthly.stdout.lstrip("\ufeff").partition("\n")  # (text mode: \r\n read as \n)
    assert head == "# satisfaction/groups"
    rows = list(csv.DictReader(io.StringIO(table)))
    assert {r["group"] for r in rows} >= {"webchat", "wechat", "sms"}
    assert sum(int(r["surveys"]) for r in rows) == body["satisfaction"]["total"]["surveys"]

    bad = gateway("report", "--from", "2026-02-30", env=env)
    assert bad.returncode == 2 and "'from' must be a date" in bad.stderr
    worse = gateway("demo", "seed", "--days", "0", env=env)
    assert worse.returncode == 2
