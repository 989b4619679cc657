"""Cross-department coordination: tasks for the configured departments and their members with deadlines, done once,
lateness in the record and the review; reminders — an overdue task once to the supervisors' consoles, a silent
incident's status to its owner."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from handoff.incidents.web import DESK
from tests.incidents.conftest import open_incident, supervisor


async def test_tasks_deadlines_and_reminders(make_gateway, people, tmp_path: Path, monkeypatch: Any):
    (tmp_path / "incidents.yml").write_text(
        "tasks:\n  status_every: 1\n  departments:\n"
        "    network_ops: {zh: 网络运维部, en: Network operations, members: [王工, 李工]}\n"
        "    public_relations: {zh: 公共关系部, en: Public relations}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("INCIDENTS_CONFIG", str(tmp_path / "incidents.yml"))
    gw = await make_gateway()
    boss = await supervisor(people, gw.base)
    await boss.connect()
    departments = (await boss.call("GET", "/api/incidents"))["departments"]
    assert departments["public_relations"] == {"zh": "公共关系部", "en": "Public relations"}
    incident = await open_incident(boss, "acting", owner="agent1")
    owner = people("agent", gw.base, "agent1", "demo-agent1")
    await owner.login()
    await owner.connect()
    assert (await boss.call("GET", f"/api/incidents/{incident['id']}"))["members"]["network_ops"] == ["王工", "李工"]
    path = f"/api/incidents/{incident['id']}/tasks"
    status, body = await boss.raw("POST", path, {"department": "marketing", "title": "x", "deadline": time.time()})
    assert status == 400 and body["field"] == "department" and body["error_zh"]
    status, body = await boss.raw("POST", path, {"department": "network_ops", "title": "x", "deadline": time.time(),
                                                 "assignee": "张三"})  # fmt: skip
    assert status == 400 and body["field"] == "assignee" and "王工" in body["error"] and body["error_zh"]
    late = (await boss.call("POST", path, {"department": "network_ops", "title": "恢复37个基站", "assignee": "王工",
                                           "deadline": time.time() - 60}, status=201))["task"]  # fmt: skip
    assert late["assignee"] == "王工"
    later = (await boss.call("POST", path, {"department": "public_relations", "title": "发布媒体通稿",
                                            "deadline": time.time() + 3600}, status=201))["task"]  # fmt: skip
    await boss.call("POST", f"{path}/{later['id']}/done")
    assert (await boss.raw("POST", f"{path}/{later['id']}/done"))[0] == 409
    assert (await boss.raw("POST", f"{path}/Tnope/done"))[0] == 404
    tasks = {t["id"]: t for t in (await boss.call("GET", f"/api/incidents/{incident['id']}"))["tasks"]}
    assert tasks[late["id"]]["late"] and tasks[late["id"]]["state"] == "open"
    assert not tasks[later["id"]]["late"] and tasks[later["id"]]["state"] == "done"
    # the reminders: the overdue task once (whichever process looks), the silent incident
    desk = gw.app[DESK]
    await asyncio.sleep(1.1)
    first = await desk.remind()
    assert {e["type"] for e in first} == {"incident_task_overdue", "incident_status_due"}
    kept = (await boss.call("GET", "/api/incidents"))["reminders"]  # also for the incident room, which polls
    assert {e["type"] for e in kept} == {"incident_task_overdue", "incident_status_due"}
    overdue = await boss.expect(lambda f: f.get("type") == "incident_task_overdue")
    assert overdue["task"]["id"] == late["id"] and overdue["incident"] == incident["id"]
    status_due = await owner.expect(lambda f: f.get("type") == "incident_status_due")  # to its owner, an agent
    assert status_due["owner"] == "agent1" and status_due["incident"] == incident["id"]
    assert [e["type"] for e in await desk.remind()] == []  # each once (the status again after status_every)
    review = await boss.call("GET", f"/api/incidents/{incident['id']}/review")
    assert [t["title"] for t in review["tasks"]] == ["恢复37个基站", "发布媒体通稿"]
    async with boss.session.get(f"{boss.base}/api/incidents/{incident['id']}/review?format=md") as resp:
        text = await resp.text()
    assert "- [ ] network_ops (王工): 恢复37个基站 (逾期" in text
    assert "- [x] public_relations: 发布媒体通稿 (按时)" in text
