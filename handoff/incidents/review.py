"""The review of an incident (seed ch. 7.2.2 总结), generated from its record: the timeline with the time spent in
each stage, what customers were told on which channel, queue protection, the complaints linked (by district and
channel), the follow-ups, the broadcasts' reach, and the supervisors' lessons (free text). As JSON, or as a
Markdown document in Chinese or English (``GET /api/incidents/{id}/review?format=md&lang=en``)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

from handoff.incidents.broadcast import Broadcasts
from handoff.incidents.model import CATEGORY_NAMES, SERVICE_NAMES, SEVERITY_NAMES, STAGE_NAMES, STAGES
from handoff.incidents.store import IncidentStore
from handoff.incidents.tasks import Tasks

COUNTERS = ("notices", "deflected", "insisted", "complaints", "linked", "followups")


async def review(store: IncidentStore, broadcasts: Broadcasts, incident_id: str, tasks: Tasks | None = None
                 ) -> dict[str, Any]:  # fmt: skip
    incident = await store.get(incident_id)
    stats = await store.stats(incident_id)
    links = list((await store.links(incident_id)).values())
    times = incident.stage_times
    reached = [s for s in STAGES if s in times]
    stages = []
    for i, stage in enumerate(reached):  # a stage entered again (monitoring → acting) counts from its last entry
        following = [times[s] for s in reached[i + 1 :] if times[s] >= times[stage]]
        stages.append({"stage": stage, "at": times[stage], "seconds": round(min(following) - times[stage], 1)
                       if following else None})  # fmt: skip
    sent = await broadcasts.of(incident_id)
    reach = {name: sum(b[name] for b in sent) for name in ("total", "queued", "opted_out", "invalid", "duplicates")}
    return {
        "incident": incident.to_json(),
        "stages": stages,
        "to_assess_seconds": _between(times, "reported", "assessed"),
        "to_close_seconds": _between(times, "reported", "closed"),
        "counters": {name: stats.get(name, 0) for name in COUNTERS},
        "notices_by_channel": {k.split(":", 1)[1]: v for k, v in sorted(stats.items()) if k.startswith("notices:")},
        "linked_by_district": dict(Counter(link.get("district") or "" for link in links).most_common()),
        "linked_by_channel": dict(Counter(link["channel"] for link in links).most_common()),
        "complaints_per_customer": round(sum(int(link.get("count", 1)) for link in links) / len(links), 2)
        if links else 0.0,
        "broadcasts": {"count": len(sent), **reach},
        "tasks": await tasks.of(incident_id) if tasks is not None else [],
        "timeline": await store.timeline(incident_id),
        "lessons": incident.lessons,
    }  # fmt: skip


def _between(times: dict[str, float], start: str, end: str) -> float | None:
    return round(times[end] - times[start], 1) if start in times and end in times else None


def _duration(seconds: float | None, lang: str) -> str:
    if seconds is None:
        return "—"
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    if lang == "zh":
        return f"{hours}小时{minutes}分" if hours else f"{minutes}分钟"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


LABELS = {
    "title": ("事件总结报告", "Incident review"), "facts": ("基本情况", "Facts"), "category": ("类别", "Category"),
    "severity": ("级别", "Severity"), "districts": ("影响区域", "Districts"), "services": ("影响业务", "Services"),
    "owner": ("负责人", "Owner"), "source": ("来源", "Source"), "stages": ("处置阶段", "Stages"),
    "stage": ("阶段", "Stage"), "entered": ("进入时间", "Entered"), "spent": ("持续", "Time in stage"),
    "to_assess": ("上报到评估", "Reported to assessed"), "to_close": ("上报到关闭", "Reported to closed"),
    "customers": ("客户服务", "Customers"), "notices": ("自动通知次数", "Notices given"),
    "deflected": ("劝阻转人工", "Handoffs deflected"), "insisted": ("坚持转人工", "Insisted on a person"),
    "complaints": ("网络投诉条数", "Network complaints"), "linked": ("关联投诉客户", "Customers linked"),
    "followups": ("恢复后回访", "Follow-ups at close"), "by_channel": ("按渠道的通知", "Notices by channel"),
    "by_district": ("按区域的关联投诉", "Linked complaints by district"), "broadcasts": ("短信群发", "SMS broadcasts"),
    "reach": ("共 {count} 次，{total} 位收件人：已排队 {queued}，已退订 {opted_out}，无效 {invalid}",
              "{count} broadcast(s), {total} recipients: {queued} queued, {opted_out} opted out, {invalid} invalid"),
    "tasks": ("部门任务", "Department tasks"), "late": ("逾期", "late"), "on_time": ("按时", "on time"),
    "open": ("未完成", "open"), "timeline": ("时间线", "Timeline"), "lessons": ("经验教训", "Lessons"),
    "none": ("（无）", "(none)"),
}  # fmt: skip


def markdown(data: dict[str, Any], lang: str = "zh", timezone: str = "Asia/Shanghai") -> str:
    """The review as a Markdown document in ``lang`` (times in ``timezone``)."""
    k = 0 if lang == "zh" else 1
    tz = ZoneInfo(timezone)

    def t(key: str) -> str:
        return LABELS[key][k]

    def when(epoch: float) -> str:
        return dt.datetime.fromtimestamp(epoch, tz).strftime("%Y-%m-%d %H:%M:%S")

    i = data["incident"]
    sep = "、" if lang == "zh" else ", "
    lines = [f"# {t('title')}: {i['id']} {i['title']}", "", f"## {t('facts')}", "",
             f"- {t('category')}: {CATEGORY_NAMES[i['category']][k]}",
             f"- {t('severity')}: {i['severity']} {SEVERITY_NAMES[i['severity']][k]}",
             f"- {t('districts')}: {sep.join(i['districts'])}",
             f"- {t('services')}: {sep.join(SERVICE_NAMES[s][k] for s in i['services']) or t('none')}",
             f"- {t('owner')}: {i['owner'] or t('none')}", f"- {t('source')}: {i['source']}", "",
             f"## {t('stages')}", "", f"| {t('stage')} | {t('entered')} | {t('spent')} |", "|---|---|---|"]  # fmt: skip
    for s in data["stages"]:
        lines.append(f"| {STAGE_NAMES[s['stage']][k]} | {when(s['at'])} | {_duration(s['seconds'], lang)} |")
    lines += ["", f"- {t('to_assess')}: {_duration(data['to_assess_seconds'], lang)}",
              f"- {t('to_close')}: {_duration(data['to_close_seconds'], lang)}"]  # fmt: skip
    lines += ["", f"## {t('customers')}", ""]
    lines += [f"- {t(name)}: {value}" for name, value in data["counters"].items()]
    lines += ["", f"### {t('by_channel')}", ""]
    lines += [f"- {c}: {n}" for c, n in data["notices_by_channel"].items()] or [t("none")]
    lines += ["", f"### {t('by_district')}", ""]
    lines += [f"- {d or '?'}: {n}" for d, n in data["linked_by_district"].items()] or [t("none")]
    lines += ["", f"### {t('broadcasts')}", "", t("reach").format(**data["broadcasts"]), "", f"## {t('tasks')}", ""]
    for task in data["tasks"]:
        state = t("open") if task["state"] == "open" else t("on_time")
        if task["late"]:
            state = f"{t('late')} {_duration(task['late_seconds'], lang)}"
        lines.append(f"- [{'x' if task['state'] == 'done' else ' '}] {task['department']}: {task['title']} ({state})")
    if not data["tasks"]:
        lines.append(t("none"))
    lines += ["", f"## {t('timeline')}", ""]
    for e in data["timeline"]:
        what = e["event"]
        if what == "stage":
            what = f"{STAGE_NAMES[e['from']][k] + ' → ' if e['from'] else ''}{STAGE_NAMES[e['to']][k]}"
        elif what == "update":
            what = ", ".join(e.get("changes") or {})
        note = f" — {e['note']}" if e.get("note") else ""
        lines.append(f"- {when(e['at'])} {what}{note} ({e['by']})")
    lines += ["", f"## {t('lessons')}", "", data["lessons"] or t("none"), ""]
    return "\n".join(lines)
