"""``python -m gateway`` as a newcomer runs it: embedded Redis, one start-up line, clean SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_start_chat_and_stop_cleanly(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--port", str(port), "--data-dir", str(tmp_path / "var")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = ""
        deadline = time.monotonic() + 90
        while "gateway ready" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "gateway exited during start-up"
        assert f"http://127.0.0.1:{port}/" in line and "embedded Redis" in line
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/webhooks/rest/webhook",
            data=json.dumps({"sender": "p1", "message": "你好"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert json.loads(resp.read())[0]["text"]
        redis_pid = (
            int((tmp_path / "var" / "redis" / "redis.pid").read_text())
            if (tmp_path / "var" / "redis" / "redis.pid").exists()
            else None
        )
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        assert time.monotonic() - started < 10
        assert proc.returncode == 0
        assert not (tmp_path / "var" / "redis" / "redis.sock").exists()  # embedded Redis shut down
        if redis_pid:
            with pytest.raises(ProcessLookupError):
                os.kill(redis_pid, 0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
