"""The incident record over the API: create, stages with who and when, 409 with the allowed stages, updates on the
timeline, roles, bad bodies, and a monitoring system (bearer token, Prometheus Alertmanager's webhook body)."""

from __future__ import annotations

import aiohttp

from tests.incidents.conftest import CHAOYANG, TOKEN, supervisor


async def post_as_monitoring(base: str, body: dict, token: str | None = TOKEN) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with aiohttp.ClientSession() as session, session.post(f"{base}/api/incidents", json=body,
                                                                headers=headers) as resp:  # fmt: skip
        return resp.status, await resp.json()


async def test_stages_are_timestamped_attributed_and_checked(make_gateway, people):
    gw = await make_gateway()
    boss = await supervisor(people, gw.base)
    body = {"title": "光缆被挖断", "category": "accident", "severity": 3, "districts": [CHAOYANG, "海淀区", CHAOYANG],
            "services": ["broadband"], "owner": "super1"}  # fmt: skip
    made = await boss.call("POST", "/api/incidents", body, status=201)
    assert made["stage"] == "reported" and made["districts"] == [CHAOYANG, "海淀区"]
    assert made["allowed"] == ["assessed", "closed"] and made["id"].startswith("INC")
    # a jump over stages is refused with 409, both languages, and where it may go now
    status, refused = await boss.raw("POST", f"/api/incidents/{made['id']}/transition", {"to": "acting"})
    assert status == 409 and refused["allowed"] == ["assessed", "closed"] and refused["field"] == "to"
    assert "assessed" in refused["error"] and "已评估" in refused["error_zh"]
    for to in ("assessed", "plan", "acting", "monitoring", "acting", "monitoring", "closed", "reviewed"):
        moved = await boss.call("POST", f"/api/incidents/{made['id']}/transition", {"to": to, "note": f"→{to}"})
        assert moved["stage"] == to
    assert moved["allowed"] == []
    status, refused = await boss.raw("POST", f"/api/incidents/{made['id']}/transition", {"to": "closed"})
    assert status == 409 and refused["allowed"] == []
    detail = await boss.call("GET", f"/api/incidents/{made['id']}")
    stages = [(e["from"], e["to"], e["by"]) for e in detail["timeline"] if e["event"] == "stage"]
    assert stages[0] == ("", "reported", "super1") and stages[-1] == ("closed", "reviewed", "super1")
    assert len(stages) == 9 and all(e["at"] >= made["created_at"] for e in detail["timeline"])
    assert set(detail["incident"]["stage_times"]) == {"reported", "assessed", "plan", "acting", "monitoring",
                                                      "closed", "reviewed"}  # fmt: skip


async def test_updates_go_on_the_timeline_and_a_closed_record_stays(make_gateway, people):
    gw = await make_gateway()
    boss = await supervisor(people, gw.base)
    made = await boss.call("POST", "/api/incidents", {"title": "x", "category": "network_fault", "severity": 4,
                                                      "districts": [CHAOYANG]}, status=201)  # fmt: skip
    path = f"/api/incidents/{made['id']}"
    updated = await boss.call("POST", f"{path}/update", {"eta": 1893456000, "severity": 2, "notice_en": "Fixing."})
    assert updated["eta"] == 1893456000 and updated["severity"] == 2 and updated["notice"] == {"en": "Fixing."}
    cleared = await boss.call("POST", f"{path}/update", {"eta": None, "notice_en": ""})
    assert cleared["eta"] is None and cleared["notice"] == {}
    await boss.call("POST", f"{path}/notes", {"text": "网络部已到场"})
    pushed = await boss.call("POST", f"{path}/notes", {"text": "Engineers are on site.", "publish": "en"})
    assert pushed["incident"]["notice"] == {"en": "Engineers are on site."}
    await boss.call("POST", f"{path}/update", {"notice_en": ""})
    timeline = (await boss.call("GET", path))["timeline"]
    changes = [e["changes"] for e in timeline if e["event"] == "update"]
    assert changes[0]["severity"] == {"from": 4, "to": 2} and changes[1]["eta"] == {"from": 1893456000, "to": None}
    notes = [e["note"] for e in timeline if e["event"] == "note"]
    assert notes == ["网络部已到场"] and timeline[-2]["note"] == "published as the en notice"
    await boss.call("POST", f"{path}/transition", {"to": "closed"})
    status, body = await boss.raw("POST", f"{path}/update", {"severity": 1})
    assert status == 409 and body["error_zh"]


async def test_roles_bad_bodies_and_unknown_ids(make_gateway, people):
    gw = await make_gateway()
    agent = people("agent", gw.base, "agent1", "demo-agent1")
    await agent.login()
    status, body = await agent.raw("GET", "/api/incidents")
    assert status == 403 and "supervisors" in body["error"] and body["error_zh"]
    status, body = await agent.raw("POST", "/api/incidents", {"title": "x", "category": "accident", "severity": 1,
                                                              "districts": [CHAOYANG]})  # fmt: skip
    assert status == 403
    boss = await supervisor(people, gw.base)
    for bad, field in (
        ({"title": "x", "category": "flood", "severity": 1, "districts": ["a"]}, "category"),
        ({"title": "x", "category": "accident", "severity": 5, "districts": ["a"]}, "severity"),
        ({"title": "x", "category": "accident", "severity": 1, "districts": []}, "districts"),
        ({"title": "x", "category": "accident", "severity": 1, "districts": [" "]}, "districts"),
        ({"title": "x", "category": "accident", "severity": 1, "districts": ["a"], "x": 1}, "x"),
    ):
        status, body = await boss.raw("POST", "/api/incidents", bad)
        assert status == 400 and field in (body.get("field") or body["error"]) and body["error_zh"], (bad, body)
    assert (await boss.raw("GET", "/api/incidents/INC000"))[0] == 404
    assert (await boss.raw("GET", "/api/incidents/bad$id"))[0] == 400
    assert (await boss.raw("POST", "/api/incidents/INC000/transition", {"to": "assessed"}))[0] == 404
    assert (await boss.raw("POST", "/api/incidents/proposals/nope/accept"))[0] == 404
    status, _ = await boss.raw("POST", "/api/incidents", {"title": "x", "category": "accident", "severity": 1,
                                                          "districts": ["a"]}, csrf=False)  # fmt: skip
    assert status == 403  # a session without the CSRF token


async def test_a_monitoring_system_opens_one_with_its_token(make_gateway, people, monkeypatch):
    gw = await make_gateway()
    body = {"title": "核心网 CPU 告警", "category": "social_security", "severity": 1, "districts": ["海淀区"]}
    assert (await post_as_monitoring(gw.base, body))[0] == 401  # no token configured: refused
    monkeypatch.setenv("INCIDENTS_TOKEN", TOKEN)
    assert (await post_as_monitoring(gw.base, body, token="wrong"))[0] == 401
    assert (await post_as_monitoring(gw.base, body, token=None))[0] == 401  # neither token nor session
    status, made = await post_as_monitoring(gw.base, body)
    assert status == 201 and made["source"] == "monitoring" and made["stage"] == "reported"
    boss = await supervisor(people, gw.base)
    listed = await boss.call("GET", "/api/incidents")
    assert [i["id"] for i in listed["incidents"]] == [made["id"]]
    timeline = (await boss.call("GET", f"/api/incidents/{made['id']}"))["timeline"]
    assert timeline[0]["by"] == "monitoring"


def alertmanager(status: str, *alerts: dict) -> dict:
    """Alertmanager's webhook body (version 4), as its ``webhook_configs`` posts it."""
    extra = {"startsAt": "2026-12-06T03:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "f1",
             "generatorURL": "http://prometheus:9090/graph"}  # fmt: skip
    return {"version": "4", "groupKey": '{}:{alertname="BaseStationDown"}', "status": status, "receiver": "gateway",
            "groupLabels": {"alertname": "BaseStationDown"}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093", "truncatedAlerts": 0,
            "alerts": [{"status": status, **extra, **a} for a in alerts]}  # fmt: skip


async def test_alertmanager_webhook_opens_one_incident_per_group(make_gateway, people, monkeypatch):
    monkeypatch.setenv("INCIDENTS_TOKEN", TOKEN)
    gw = await make_gateway()
    firing = alertmanager("firing", {"labels": {"alertname": "BaseStationDown", "district": "朝阳区, 海淀区",
                                                "service": "mobile", "severity": "critical"},
                                     "annotations": {"summary": "12 base stations down"}},
                          {"labels": {"alertname": "BaseStationDown", "district": "丰台区", "service": "data",
                                      "severity": "warning"}})  # fmt: skip
    status, made = await post_as_monitoring(gw.base, firing)
    assert status == 201 and made["title"] == "12 base stations down" and made["severity"] == 1
    assert made["districts"] == [CHAOYANG, "海淀区", "丰台区"] and made["services"] == ["mobile", "data"]
    status, again = await post_as_monitoring(gw.base, firing)  # Alertmanager repeats a group's notification
    assert status == 200 and again["deduplicated"] and again["id"] == made["id"]
    ok = alertmanager("resolved", {"labels": {"district": "丰台区"}, "annotations": {"summary": "ok"}})
    status, resolved = await post_as_monitoring(gw.base, ok)
    assert status == 200 and resolved["id"] == made["id"]
    boss = await supervisor(people, gw.base)
    assert len((await boss.call("GET", "/api/incidents"))["incidents"]) == 1
    notes = [e["note"] for e in (await boss.call("GET", f"/api/incidents/{made['id']}"))["timeline"]
             if e["event"] == "note"]  # fmt: skip
    assert notes[-1].startswith("[resolved]")
    status, body = await post_as_monitoring(
        gw.base, alertmanager("firing", {"labels": {"alertname": "X"}}) | {"groupKey": "other"}
    )  # no district
    assert status == 400 and body["field"] == "districts"
