"""The real rasa-webchat widget against ``gateway --workers 2``: the kernel hands each TCP connection to either
worker (SO_REUSEPORT), so Engine.IO's polls and the upgrade often reach the process that did not make the
handshake; the relay (gateway/channels/socketio_relay.py) takes them to the one that did."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from playwright.async_api import expect

from tests.browser.test_rasa_webchat import _open, _send, site  # noqa: F401  (the operator's site fixture)
from tests.conftest import NLU_CACHE
from tests.gateway.test_server_process import free_port
from tests.gateway.test_workers import ROOT, read_until, stop_supervisor

pytestmark = [pytest.mark.browser, pytest.mark.slow]


async def test_the_widget_works_against_two_workers(browser, site, tmp_path):  # noqa: F811
    data = tmp_path / "var"
    data.mkdir()
    (data / "nlu").symlink_to(NLU_CACHE)  # the model the test session trained: no training here
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["GATEWAY_WEBCHAT_ALLOWED_ORIGINS"] = site
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--workers", "2", "--port", str(port), "--data-dir", str(data)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    gateway = f"http://127.0.0.1:{port}"
    try:
        await read_until(proc, "2 workers serving", 60)
        for i in range(4):  # new browser contexts: new TCP connections, spread by the kernel
            context = await browser.new_context(locale="zh-CN")
            page = await context.new_page()
            await page.route("**/fonts.googleapis.com/**", lambda route: route.abort())
            await _open(page, site, gateway)
            await _send(page, "你好")
            await expect(page.locator(".rw-replies .rw-reply").filter(has_text="查流量")).to_be_visible(timeout=15_000)
            await page.reload()
            await _open(page, site, gateway)
            await _send(page, f"查流量 {i}")
            await expect(page.locator(".rw-response")).to_have_count(2, timeout=15_000)
            await context.close()
        proc.terminate()
        assert proc.wait(timeout=15) == 0
        output = proc.stdout.read()  # type: ignore[union-attr]
        assert "Traceback" not in output and "Invalid session" not in output
    finally:
        stop_supervisor(proc, data)
