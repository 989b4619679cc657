"""Bad requests to the cases API are 4xx JSON errors in English and Chinese, never a 5xx: no session, no CSRF
token, bodies that are not JSON or not the schema, odd tickets and query values."""

from __future__ import annotations

import aiohttp

from tests.cases.conftest import complain


async def test_bad_requests_are_4xx_json(make_gateway, people, quiet_config):
    gw = await make_gateway(quiet_config)
    agent = people("agent", gw.base, "agent1", "demo-agent1")
    await agent.login()
    customer = people("customer", gw.base)
    await customer.connect()
    ticket = await complain(customer, "投诉：网速太慢")
    url = f"{gw.base}/api/cases/{ticket}/transition"

    async with aiohttp.ClientSession() as anonymous:  # no session: 401
        for method, path in (
            ("GET", "/api/cases"),
            ("GET", f"/api/cases/{ticket}"),
            ("POST", f"/api/cases/{ticket}/notes"),
        ):
            async with anonymous.request(method, f"{gw.base}{path}", json={"text": "x"}) as resp:
                body = await resp.json()
                assert resp.status == 401 and body["error"] and body["error_zh"], (path, body)
    status, body = await agent.raw("POST", f"/api/cases/{ticket}/transition", {"to": "in_progress"}, csrf=False)
    assert status == 403 and body["field"] == "X-CSRF-Token"

    headers = {"X-CSRF-Token": agent.csrf}
    raw_bodies = (
        (b"{not json", "application/json"), (b"[1, 2]", "application/json"), (b'{"to": 5}', "application/json"),
        (b'{"to": "replied", "note": ' + b'"' + b"x" * 1200 + b'"}', "application/json"),
        (b'{"to": "in_progress", "assignee": 7}', "application/json"), (b"to=in_progress", "text/plain"),
        (b"\xff\xfe\x00", "application/json"), (b"", "application/json"),
    )  # fmt: skip
    for data, kind in raw_bodies:
        async with agent.session.post(url, data=data, headers={**headers, "Content-Type": kind}) as resp:
            body = await resp.json()
            assert 400 <= resp.status < 500 and body["error"] and body["error_zh"], (data[:40], resp.status, body)
    for path in ("/api/cases/%00", "/api/cases/%E6%8A%95%E8%AF%89", "/api/cases/" + "T" * 41, "/api/cases/a.b"):
        status, body = await agent.raw("GET", path)
        assert status in (400, 404) and body["error_zh"], (path, status, body)
    for query in ("status=%FF", "type=", "severity=urgent", "assignee=%00", "status=closed&type=x"):
        status, body = await agent.raw("GET", f"/api/cases?{query}")
        assert status in (200, 400, 403) and isinstance(body, dict), (query, status, body)
        assert status == 200 or body["error_zh"]
    status, body = await agent.raw("POST", f"/api/cases/{ticket}/notes", {"text": "   "})
    assert status == 400 and body["field"] == "text"
    status, body = await agent.raw("POST", "/api/cases", {"phone": "13800138000"})
    assert status == 400 and body["field"] == "text"
    case = await agent.call("GET", f"/api/cases/{ticket}")
    assert case["status"] == "dispatched" and case["notes"] == []  # nothing above changed the case
