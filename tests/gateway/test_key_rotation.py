"""Encryption at rest: `gateway keys rotate` while customers keep writing — no failed turn, every value re-sealed
under the new key (the running gateway follows the key file), and what was written before still reads the same;
a production gateway without keys refuses to start with a clear message."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer

from gateway import audit, rekey
from gateway.app import create_app
from gateway.keys import REDIS, RKEYS
from gateway.rkeys import deployment_keys
from gateway.vault import KeyringError, deployment_keyring, load_keyring, new_key_file

ROOT = Path(__file__).resolve().parents[2]


async def turn(session: aiohttp.ClientSession, base: str, sender: str, text: str, mid: str) -> list[dict[str, Any]]:
    body = {"sender": sender, "message": text, "message_id": mid}
    async with session.post(f"{base}/webhooks/rest/webhook", json=body) as resp:
        assert resp.status == 200, (resp.status, await resp.text())
        return await resp.json()


async def test_rotation_under_load_fails_no_turn_and_reseals_everything(make_settings, nlu_engine, key_prefix,
                                                                         redis_url, tmp_path, monkeypatch):  # fmt: skip
    key_file = tmp_path / "keys" / "gateway-keys"
    monkeypatch.setenv("GATEWAY_KEY_FILE", str(key_file))  # this test's own keys: the rotation touches only them
    settings = make_settings()
    app = create_app(settings, nlu=nlu_engine)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    base = f"http://127.0.0.1:{server.port}"
    first = load_keyring(key_file).active
    failures: list[str] = []
    answered = 0
    stop = asyncio.Event()
    try:
        async with aiohttp.ClientSession() as session:
            before = await turn(session, base, "early", "你好", "e1")

            async def customer(n: int) -> None:
                nonlocal answered
                i = 0
                while not stop.is_set():
                    i += 1
                    try:
                        replies = await turn(session, base, f"load-{n}", f"查一下流量 {i}", f"m{i}")
                        assert replies and replies[0]["text"]
                        answered += 1
                    except (AssertionError, aiohttp.ClientError) as exc:
                        failures.append(repr(exc))

            load = [asyncio.create_task(customer(n)) for n in range(4)]
            await asyncio.sleep(1.0)
            config = tmp_path / "gateway.yml"
            config.write_text(yaml.safe_dump({"redis": {"key_prefix": key_prefix}}))
            env = {**os.environ, "REDIS_URL": redis_url, "GATEWAY_KEY_FILE": str(key_file)}
            cli = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", "keys", "--config", str(config), "--data-dir", str(tmp_path / "var"),
                "rotate", cwd=ROOT, env=env,
                stdout=(tmp_path / "cli.txt").open("w"), stderr=subprocess.STDOUT,
            )  # fmt: skip
            try:
                await asyncio.wait_for(cli.wait(), timeout=50)
            finally:
                out = (tmp_path / "cli.txt").read_bytes()
                print(out.decode())
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.gather(*load)
            text = out.decode()
            assert cli.returncode == 0, text
            assert "no value left under an old key" in text, text
            # the running gateway took the new key, and what it wrote before still reads the same
            ring = load_keyring(key_file)
            assert ring.active != first and first in ring.key_ids
            assert app[RKEYS].vault.active == ring.active
            again = await turn(session, base, "early", "你好", "e1")  # a duplicate: kept replies
            assert again == before
        assert not failures, failures[:5]
        assert answered > 20, answered
        keys = deployment_keys(key_prefix)
        counts = await rekey.census(app[REDIS], keys)
        assert counts and set(counts) == {ring.active}, counts
        (entry,) = await audit.collect(app[REDIS], keys, audit.Query(what="key_rotation"))
        assert entry["who"].startswith("cli:") and entry["details"]["new_key"] == ring.active, entry
    finally:
        stop.set()
        await server.close()


def test_a_production_gateway_without_keys_refuses_to_start(tmp_path):
    missing = tmp_path / "nowhere" / "keys"
    with pytest.raises(KeyringError, match="gateway keys new"):
        deployment_keyring(str(missing), tmp_path / "var", production=True, env={})
    assert not missing.exists()  # never made silently in production
    config = tmp_path / "gateway.yml"
    config.write_text(yaml.safe_dump({"server": {"production": True}, "sms": {"enabled": False}}))
    env = {k: v for k, v in os.environ.items() if k not in ("GATEWAY_DATA_KEYS", "GATEWAY_INDEX_KEY")}
    env.update(GATEWAY_KEY_FILE=str(missing), WEBCHAT_JWT_SECRET="x" * 32)
    run = subprocess.run([sys.executable, "-m", "gateway", "--port", "0", "--data-dir", str(tmp_path / "var"),
                          "--config", str(config)], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=50)  # fmt: skip
    assert run.returncode == 2 and "gateway keys new" in run.stderr, (run.returncode, run.stderr[-2000:])
    assert not missing.exists()
    # a key file inside the data dir, or one others may read, is refused too
    inside = tmp_path / "var" / "keys"
    new_key_file(inside)
    with pytest.raises(KeyringError, match="inside the data directory"):
        load_keyring(inside, tmp_path / "var")
    loose = tmp_path / "loose-keys"
    new_key_file(loose)
    loose.chmod(0o644)
    with pytest.raises(KeyringError, match="chmod 600"):
        load_keyring(loose)
