"""A reference server for the back-end contract (``openapi.yaml``), serving any ``BSS``.

Operators can compare their own back end with it; the tests run ``HttpBSS`` against it (with
the demo data behind it), so the adapter and the contract are checked over real HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bots.bss import codec
from bots.bss.base import BSS, NotFound, Rejected

BACKEND: web.AppKey[Any] = web.AppKey("bss_backend")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(codec.dump(data), status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except NotFound as exc:
        return web.json_response({"error": str(exc)}, status=404)
    except Rejected as exc:
        return web.json_response({"error": str(exc), "code": exc.code}, status=409)
    except (KeyError, ValueError, TypeError) as exc:
        return web.json_response({"error": f"bad request: {exc}"}, status=400)


async def _body(request: web.Request) -> dict[str, Any]:
    data = await request.json()
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data


def _key(request: web.Request) -> str:
    key = request.headers.get("Idempotency-Key", "")
    if not key:
        raise ValueError("the Idempotency-Key header is required on writes")
    return key


def create_bss_app(backend: BSS) -> web.Application:
    app = web.Application(middlewares=[_errors])
    app[BACKEND] = backend

    def bss(request: web.Request) -> BSS:
        return request.app[BACKEND]  # type: ignore[no-any-return]

    async def subscriber(r: web.Request) -> web.Response:
        return _json(await bss(r).subscriber(r.match_info["phone"]))

    async def balance(r: web.Request) -> web.Response:
        return _json(await bss(r).balance(r.match_info["phone"]))

    async def usage(r: web.Request) -> web.Response:
        return _json({"buckets": await bss(r).usage(r.match_info["phone"])})

    async def bill(r: web.Request) -> web.Response:
        return _json(await bss(r).bill(r.match_info["phone"], r.match_info["month"]))

    async def plans(r: web.Request) -> web.Response:
        return _json(await bss(r).plans())

    async def vas(r: web.Request) -> web.Response:
        return _json(await bss(r).vas(r.match_info["phone"]))

    async def puk(r: web.Request) -> web.Response:
        return _json({"puk": await bss(r).puk(r.match_info["phone"])})

    async def porting(r: web.Request) -> web.Response:
        return _json(await bss(r).porting_check(r.match_info["phone"]))

    async def windows(r: web.Request) -> web.Response:
        return _json(await bss(r).repair_windows(r.match_info["phone"]))

    async def outages(r: web.Request) -> web.Response:
        return _json(await bss(r).outages(r.query.get("district")))

    async def stores(r: web.Request) -> web.Response:
        return _json(await bss(r).stores(r.query.get("district")))

    async def countries(r: web.Request) -> web.Response:
        return _json(await bss(r).destinations())

    async def roaming(r: web.Request) -> web.Response:
        rate = await bss(r).roaming_rate(r.match_info["country"])
        if rate is None:
            raise NotFound(f"no roaming rates for {r.match_info['country']!r}")
        return _json(rate)

    async def change_plan(r: web.Request) -> web.Response:
        body = await _body(r)
        return _json(await bss(r).change_plan(r.match_info["phone"], str(body["plan_id"]), _key(r)))

    async def suspend(r: web.Request) -> web.Response:
        body = await _body(r)
        return _json(await bss(r).suspend(r.match_info["phone"], str(body["reason"]), _key(r)))

    async def repair(r: web.Request) -> web.Response:
        body = await _body(r)
        return _json(await bss(r).create_repair(r.match_info["phone"], str(body["window"]), _key(r)))

    async def cancel_vas(r: web.Request) -> web.Response:
        body = await _body(r)
        return _json(await bss(r).cancel_vas(r.match_info["phone"], str(body["vas_id"]), _key(r)))

    async def payment(r: web.Request) -> web.Response:
        body = await _body(r)
        return _json(await bss(r).payment_link(str(body["phone"]), float(body["amount"]), _key(r)))

    async def district(r: web.Request) -> web.Response:
        district = r.query.get("district", "")
        if not district:
            raise ValueError("the district query parameter is required")
        limit = min(max(int(r.query.get("limit") or 1000), 1), 10_000)
        phones, after = await bss(r).district_phones(district, r.query.get("after", ""), limit)
        return _json({"phones": phones, "next": after})

    async def goodwill(r: web.Request) -> web.Response:
        body = await _body(r)
        return _json(await bss(r).goodwill(r.match_info["phone"], str(body["kind"]), float(body["amount"]),
                                           str(body.get("reason", "")), _key(r)))  # fmt: skip

    p = "/subscribers/{phone}"
    app.add_routes([
        web.get(p, subscriber), web.get(f"{p}/balance", balance), web.get(f"{p}/usage", usage),
        web.get(f"{p}/bills/{{month}}", bill), web.get(f"{p}/vas", vas), web.get(f"{p}/puk", puk),
        web.get(f"{p}/porting-check", porting), web.get(f"{p}/repair-windows", windows),
        web.get("/plans", plans), web.get("/outages", outages), web.get("/stores", stores),
        web.get("/roaming-rates", countries), web.get("/roaming-rates/{country}", roaming),
        web.post(f"{p}/plan-change", change_plan), web.post(f"{p}/suspension", suspend),
        web.post(f"{p}/repair-orders", repair), web.post(f"{p}/vas-cancellations", cancel_vas),
        web.post("/payments", payment), web.get("/subscribers", district), web.post(f"{p}/goodwill", goodwill),
    ])  # fmt: skip
    return app
