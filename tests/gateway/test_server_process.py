"""``python -m gateway`` as a newcomer runs it: embedded Redis, one start-up line, clean SIGTERM."""

from __future__ import annotations

import contextlib
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


@pytest.mark.slow
def test_stopped_while_its_redis_starts_it_leaves_no_redis_behind(tmp_path):
    """SIGTERM the moment the embedded Redis is being started (its config just written): the gateway exits and its
    redis-server with it — the start-up's clean-up did not stop a Redis whose start it interrupted, and the
    redis-server (in its own session) ran on, orphaned."""
    data = tmp_path / "var"
    (data / "nlu").parent.mkdir(parents=True)
    (data / "nlu").symlink_to(ROOT / "var" / "test-nlu")  # the model the test session trained: no training here
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "--port", str(free_port()), "--data-dir", str(data)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)  # fmt: skip
    pid_file = data / "redis" / "redis.pid"
    try:
        deadline = time.monotonic() + 60
        while not (data / "redis" / "redis.conf").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the gateway never started its Redis"
            time.sleep(0.002)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        for _ in range(50):  # the pid file is written by the server once it runs, removed when it stops
            if not pid_file.exists():
                break
            time.sleep(0.1)
        assert not pid_file.exists(), "the embedded redis-server is still running"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
