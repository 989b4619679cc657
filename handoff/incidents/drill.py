"""Drill mode (seed ch. 7.3.3 应急演练): play an incident from a scenario file against a running gateway — the
demo back end, simulated customers on the REST channel — so teams rehearse with the real console, bots and
counters. The incident is opened marked as a drill ("[演练]"), moved through the scenario's steps (stages,
recovery time, notice text) while the traffic runs, given the scenario's lessons, and its review is printed.

    python -m handoff.incidents.drill --scenario config/drills/typhoon.yml --url http://127.0.0.1:8080 \\
        [--speed 60] [--user super1 --password demo-super1] [--lang zh]

Scenario: ``name``, ``incident`` (the record's fields, ``eta_minutes`` from the start), ``steps`` (``at`` seconds of
drill time; ``stage``, ``note``, ``eta_minutes``, ``notice_zh``/``notice_en``, ``task`` {department, title,
assignee?, due_minutes}, ``broadcast`` {channels, lang?} — refused channels are reported, not fatal — and
``compensation`` {kind, amount, scope?}), ``traffic`` (``from``, ``to``, ``per_minute``, ``texts``), ``lessons``.
``--speed`` divides every time. Also ``gateway demo incident --scenario …``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import yaml


class DrillError(RuntimeError):
    pass


def load(path: Path | str) -> dict[str, Any]:
    scenario = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(scenario, dict) or not isinstance(scenario.get("incident"), dict):
        raise DrillError(f"{path}: a scenario needs an 'incident' mapping")
    for step in scenario.get("steps") or []:
        if "at" not in step:
            raise DrillError(f"{path}: every step needs 'at' (seconds after the start)")
    return scenario


async def run(url: str, scenario: dict[str, Any], speed: float = 60.0, user: str = "super1",
              password: str = "demo-super1", lang: str = "zh") -> dict[str, Any]:  # fmt: skip
    """Play the scenario; returns the incident id, the messages sent (and errors), the incident's counters (notices
    given, complaints linked …) and the review (Markdown)."""
    url = url.rstrip("/")
    started = time.monotonic()  # again once the incident is open

    def at(seconds: float) -> float:
        return started + seconds / speed

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.post(f"{url}/api/agent/login", json={"name": user, "password": password}) as resp:
            body = await resp.json()
            if resp.status != 200:
                raise DrillError(f"sign-in refused: {body.get('error')}")
        headers = {"X-CSRF-Token": body["csrf"]}

        async def call(path: str, payload: dict[str, Any]) -> dict[str, Any]:
            async with session.post(f"{url}{path}", json=payload, headers=headers) as resp:
                answer = await resp.json()
                if resp.status >= 400:
                    raise DrillError(f"{path}: {resp.status} {answer.get('error')}")
                return answer

        spec = dict(scenario["incident"])
        eta = spec.pop("eta_minutes", None)
        spec["title"] = f"[演练 drill] {spec.get('title') or scenario.get('name', '')}"
        spec["note"] = f"drill: {scenario.get('name', '')}"
        if eta is not None:
            spec["eta"] = time.time() + eta * 60 / speed
        incident = await call("/api/incidents", spec)
        path = f"/api/incidents/{incident['id']}"
        results: dict[str, Any] = {"messages": 0, "errors": 0, "broadcasts": []}
        steps = sorted(scenario.get("steps") or [], key=lambda s: s["at"])
        for step in [s for s in steps if s["at"] <= 0]:  # what the scenario starts with, before any customer
            await _step(call, path, step, speed, results)
        started = time.monotonic()
        traffic = [asyncio.create_task(_traffic(session, url, t, at, results)) for t in scenario.get("traffic") or []]
        for step in [s for s in steps if s["at"] > 0]:
            await asyncio.sleep(max(0.0, at(step["at"]) - time.monotonic()))
            await _step(call, path, step, speed, results)
        await asyncio.gather(*traffic)
        if scenario.get("lessons"):
            await call(f"{path}/lessons", {"text": scenario["lessons"]})
        async with session.get(f"{url}{path}/review?format=md&lang={lang}") as resp:
            review = await resp.text()
        async with session.get(f"{url}{path}") as resp:
            counters = (await resp.json())["incident"]["stats"]
    return {"incident": incident["id"], **results, "counters": counters, "review": review}


async def _step(call: Any, path: str, step: dict[str, Any], speed: float, results: dict[str, Any]) -> None:
    changes = {k: step[k] for k in ("notice_zh", "notice_en") if k in step}
    if "eta_minutes" in step:
        changes["eta"] = time.time() + step["eta_minutes"] * 60 / speed
    if changes:
        await call(f"{path}/update", {**changes, "note": step.get("note", "")})
    if "task" in step:  # {department, title, assignee?, due_minutes}
        task = dict(step["task"])
        task["deadline"] = time.time() + float(task.pop("due_minutes", 60)) * 60 / speed
        await call(f"{path}/tasks", task)
    if "compensation" in step:  # {kind, amount, scope?}: granted when the drill's incident closes
        await call(f"{path}/compensation", step["compensation"])
    if "broadcast" in step:  # {channels, lang?}: a channel the drill's gateway has not enabled is reported, not fatal
        try:
            made = await call(f"{path}/broadcasts", step["broadcast"])
            results["broadcasts"].append({k: made["broadcast"][k] for k in ("id", "state", "total")})
        except DrillError as exc:
            results["broadcasts"].append({"refused": str(exc)})
    if "stage" in step:
        await call(f"{path}/transition", {"to": step["stage"], "note": step.get("note", "")})
    elif step.get("note") and not changes:
        await call(f"{path}/notes", {"text": step["note"]})


async def _traffic(session: aiohttp.ClientSession, url: str, spec: dict[str, Any], at: Any,
                   results: dict[str, int]) -> None:  # fmt: skip
    texts = list(spec.get("texts") or [])
    per_minute = float(spec.get("per_minute", 0))
    if not texts or per_minute <= 0:
        return
    start, end = float(spec.get("from", 0)), float(spec.get("to", 0))
    count = int((end - start) / 60 * per_minute)
    run = uuid.uuid4().hex[:6]
    for i in range(count):
        await asyncio.sleep(max(0.0, at(start + i * 60 / per_minute) - time.monotonic()))
        body = {"sender": f"drill-{run}-{i}", "message": texts[i % len(texts)]}
        try:
            async with session.post(f"{url}/webhooks/rest/webhook", json=body) as resp:
                await resp.json()
                results["messages" if resp.status == 200 else "errors"] += 1
        except (aiohttp.ClientError, json.JSONDecodeError):
            results["errors"] += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway demo incident", description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--speed", type=float, default=60.0, help="drill seconds per real second")
    parser.add_argument("--user", default="super1")
    parser.add_argument("--password", default="demo-super1")
    parser.add_argument("--lang", choices=("zh", "en"), default="zh")
    args = parser.parse_args(argv)
    try:
        result = asyncio.run(run(args.url, load(args.scenario), args.speed, args.user, args.password, args.lang))
    except (DrillError, OSError, aiohttp.ClientError) as exc:
        print(f"drill failed: {exc}", file=sys.stderr)
        return 1
    print(result.pop("review"))
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
