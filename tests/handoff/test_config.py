"""``--config`` names the configuration folder: routing.yml, sla.yml and canned.yml are read from beside the
gateway.yml it names (or from the folder it names), each file the folder lacks from the packaged config/."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from gateway.settings import load_settings
from handoff.config import CONFIG, load_handoff_config

ROOT = Path(__file__).resolve().parents[2]
NLU_CACHE = ROOT / "var" / "test-nlu"


def operator_folder(tmp_path: Path, key_prefix: str, drop: tuple[str, ...] = ()) -> Path:
    """A copy of config/ whose routing.yml renames the demo agent1 and gives it capacity 7."""
    folder = tmp_path / "conf"
    shutil.copytree(CONFIG, folder)
    for name in drop:
        (folder / name).unlink()
    routing = yaml.safe_load((folder / "routing.yml").read_text(encoding="utf-8"))
    for agent in routing["demo_agents"]:
        if agent["name"] == "agent1":
            agent.update(display_name="配置测试员", capacity=7)
    (folder / "routing.yml").write_text(yaml.safe_dump(routing, allow_unicode=True), encoding="utf-8")
    gateway = yaml.safe_load((folder / "gateway.yml").read_text(encoding="utf-8"))
    gateway["redis"]["key_prefix"] = key_prefix
    (folder / "gateway.yml").write_text(yaml.safe_dump(gateway, allow_unicode=True), encoding="utf-8")
    return folder


def test_the_folder_of_the_settings_is_read_and_missing_files_come_from_the_package(tmp_path, key_prefix):
    folder = operator_folder(tmp_path, key_prefix, drop=("sla.yml", "canned.yml"))
    packaged = load_handoff_config()
    for source in (folder / "gateway.yml", folder, str(folder / "gateway.yml")):
        config = load_handoff_config(source)
        agent1 = next(a for a in config.demo_agents if a.name == "agent1")
        assert (agent1.display_name, agent1.capacity) == ("配置测试员", 7)
        assert config.clocks == packaged.clocks and config.canned == packaged.canned  # the packaged files
    assert next(a for a in packaged.demo_agents if a.name == "agent1").display_name == "王小明"
    (folder / "sla.yml").write_text(
        (CONFIG / "sla.yml").read_text(encoding="utf-8").replace("complaint_solution:", "complaint_solution: 7200 #"),
        encoding="utf-8",
    )
    assert load_handoff_config(folder).complaint_solution == 7200  # once the folder has it, the folder's
    assert load_settings(folder).source == str(folder / "gateway.yml")  # --config may name the folder itself


def test_a_gateway_started_with_config_uses_that_folders_routing(tmp_path, key_prefix, redis_url, nlu_engine):
    folder = operator_folder(tmp_path, key_prefix)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "nlu").symlink_to(NLU_CACHE)  # the model the tests trained: no training at start-up
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "REDIS_URL": redis_url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--config", str(folder / "gateway.yml"), "--port", str(port),
         "--data-dir", str(tmp_path / "var")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        line, deadline = "", time.monotonic() + 25
        while "gateway ready" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            assert line or proc.poll() is None, "gateway exited during start-up"
        assert "gateway ready" in line
        base = f"http://127.0.0.1:{port}"
        login = urllib.request.Request(f"{base}/api/agent/login", method="POST", headers={
            "Content-Type": "application/json", "Origin": base},
            data=json.dumps({"name": "agent1", "password": "demo-agent1"}).encode())  # fmt: skip
        with urllib.request.urlopen(login, timeout=10) as resp:
            agent = json.loads(resp.read())["agent"]
        assert (agent["display_name"], agent["capacity"]) == ("配置测试员", 7)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_restart_grace_outage_and_supervisor_push_read_with_defaults_for_older_files(tmp_path, key_prefix):
    folder = operator_folder(tmp_path, key_prefix)
    packaged = load_handoff_config(folder)
    assert (packaged.restart_grace, packaged.outage_after, packaged.supervisors_push) == (60, 5, False)
    agent1 = next(a for a in packaged.demo_agents if a.name == "agent1")
    assert agent1.display_name == "配置测试员" and agent1.names == {}  # one name for every language
    boss = next(a for a in packaged.demo_agents if a.name == "super1")
    assert boss.display_name == "李主管" and boss.names == {"zh": "李主管", "en": "Supervisor Li"}
    routing = yaml.safe_load((folder / "routing.yml").read_text(encoding="utf-8"))
    del routing["presence"]["restart_grace"], routing["assignment"]["supervisors_push"]  # a file from before
    (folder / "routing.yml").write_text(yaml.safe_dump(routing, allow_unicode=True), encoding="utf-8")
    sla = (folder / "sla.yml").read_text(encoding="utf-8")
    (folder / "sla.yml").write_text(sla[: sla.index("outage_after")], encoding="utf-8")
    older = load_handoff_config(folder)
    assert (older.restart_grace, older.outage_after, older.supervisors_push) == (60, 5, False)
    routing["presence"]["restart_grace"], routing["assignment"]["supervisors_push"] = 15, True
    (folder / "routing.yml").write_text(yaml.safe_dump(routing, allow_unicode=True), encoding="utf-8")
    assert (load_handoff_config(folder).restart_grace, load_handoff_config(folder).supervisors_push) == (15, True)
