"""The review of an incident (seed ch. 7.2.2 总结), generated from its record: the timeline with the time spent in
each stage, what customers were told on which channel, queue protection, the complaints linked (by district and
channel), the follow-ups, the broadcasts' reach, and the supervisors' lessons (free text). As JSON, or as a
Markdown document in Chinese or English (``GET /api/incidents/{id}/review?format=md&lang=en``)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from handoff.incidents import room
from handoff.incidents.broadcast import Broadcasts
from handoff.incidents.model import CATEGORY_NAMES, SERVICE_NAMES, SEVERITY_NAMES, STAGE_NAMES, STAGES
from handoff.incidents.store import IncidentStore
from handoff.incidents.tasks import Tasks

COUNTERS = ("notices", "deflected", "insisted", "complaints", "linked", "followups")


async def review(store: IncidentStore, broadcasts: Broadcasts, incident_id: str, tasks: Tasks | None = None,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """The review's data; ``extra``: what the desk adds (``compensation``, ``satisfaction``)."""
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
    names = ("total", "queued", "opted_out", "duplicates", "sent", "failed")
    reach = {name: sum(b[name] for b in sent) for name in (*names, "invalid")}
    by_channel: dict[str, dict[str, int]] = {}
    for b in sent:
        for channel, progress in b["channels"].items():
            mine = by_channel.setdefault(channel, dict.fromkeys(names, 0))
            for name in names:
                mine[name] += progress[name]
    first_broadcast = min((b["created_at"] for b in sent), default=None)
    return {**(extra or {}),
        "districts": room.districts(incident.districts, stats, links, {}),
        "sentiment": room.sentiment(stats, links),
        "to_first_broadcast_seconds": round(first_broadcast - incident.created_at, 1) if first_broadcast else None,
        "broadcasts_by_channel": by_channel,
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
    "to_broadcast": ("上报到首次群发", "Reported to first broadcast"),
    "customers": ("客户服务", "Customers"), "notices": ("自动通知次数", "Notices given"),
    "deflected": ("劝阻转人工", "Handoffs deflected"), "insisted": ("坚持转人工", "Insisted on a person"),
    "complaints": ("网络投诉条数", "Network complaints"), "linked": ("关联投诉客户", "Customers linked"),
    "followups": ("恢复后回访", "Follow-ups at close"), "by_channel": ("按渠道的通知", "Notices by channel"),
    "by_district": ("按区域", "By district"), "district": ("区域", "District"),
    "district_notices": ("通知", "Notices"), "district_linked": ("关联投诉", "Linked complaints"),
    "broadcasts": ("主动群发", "Broadcasts"), "channel": ("渠道", "Channel"), "recipients": ("收件人", "Recipients"),
    "queued": ("已排队", "Queued"), "sent": ("已发送", "Sent"), "failed": ("失败", "Failed"),
    "opted_out": ("已退订", "Opted out"),
    "reach": ("共 {count} 次，{total} 位收件人：已排队 {queued}，已发送 {sent}，失败 {failed}，"
              "已退订 {opted_out}，无效 {invalid}",
              "{count} broadcast(s), {total} recipients: {queued} queued, {sent} sent, {failed} failed, "
              "{opted_out} opted out, {invalid} invalid"),
    "sentiment": ("客户情绪", "Sentiment"),
    "moods": ("收到通知的消息 {total} 条：平静 {calm}，不满 {annoyed}，愤怒 {angry}，"
              "升级（投诉到监管/媒体）{escalating}；"
              "负面占比 {negative_share:.0%}；关联投诉平均紧急度 {complaint_urgency}（0–3）",
              "{total} messages answered with the notice: {calm} calm, {annoyed} annoyed, {angry} angry, "
              "{escalating} escalating (regulator, media); {negative_share:.0%} negative; linked complaints' "
              "average urgency {complaint_urgency} (0–3)"),
    "compensation": ("补偿", "Goodwill offer"),
    "offer": ("{what}（{scope}），{by} 设置：{total} 位客户，已发放 {granted}，此前已发放 {already}，"
              "不符合条件 {refused}，待重试 {failed}；状态 {state}",
              "{what} ({scope}), set by {by}: {total} customers, {granted} granted, {already} granted before, "
              "{refused} refused, {failed} to retry; {state}"),
    "data": ("{amount:g} MB 流量", "{amount:g} MB of data"), "credit": ("{amount:.2f} 元话费", "¥{amount:.2f} credit"),
    "scope_linked": ("关联投诉的客户", "customers with linked complaints"),
    "scope_district": ("受影响区域的全部客户", "every customer in the districts"),
    "satisfaction": ("受影响客户满意度", "Satisfaction of affected customers"),
    "sat_line": ("{who}：{surveys} 份评价，平均 {mean}，满意占比 {share}",
                 "{who}: {surveys} surveys, mean {mean}, satisfied {share}"),
    "sat_affected": ("受影响客户", "Affected customers"), "sat_baseline": ("此前基线（全部客户）",
                                                                     "Baseline before (all customers)"),
    "sat_diff": ("差值：{d}", "Difference: {d}"),
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
              f"- {t('to_close')}: {_duration(data['to_close_seconds'], lang)}",
              f"- {t('to_broadcast')}: {_duration(data.get('to_first_broadcast_seconds'), lang)}"]  # fmt: skip
    lines += ["", f"## {t('customers')}", ""]
    lines += [f"- {t(name)}: {value}" for name, value in data["counters"].items()]
    lines += ["", f"### {t('by_channel')}", ""]
    lines += [f"- {c}: {n}" for c, n in data["notices_by_channel"].items()] or [t("none")]
    lines += _districts(data, t)
    lines += ["", f"### {t('sentiment')}", "", t("moods").format(**data["sentiment"])]
    lines += _satisfaction(data.get("satisfaction"), t)
    lines += ["", f"## {t('broadcasts')}", "", t("reach").format(**data["broadcasts"])]
    if data.get("broadcasts_by_channel"):
        lines += ["", f"| {t('channel')} | {t('recipients')} | {t('queued')} | {t('sent')} | {t('failed')} | "
                      f"{t('opted_out')} |", "|---|---|---|---|---|---|"]  # fmt: skip
        lines += [f"| {c} | {p['total']} | {p['queued']} | {p['sent']} | {p['failed']} | {p['opted_out']} |"
                  for c, p in data["broadcasts_by_channel"].items()]  # fmt: skip
    lines += _compensation(data.get("compensation"), t)
    lines += ["", f"## {t('tasks')}", ""]
    for task in data["tasks"]:
        state = t("open") if task["state"] == "open" else t("on_time")
        if task["late"]:
            state = f"{t('late')} {_duration(task['late_seconds'], lang)}"
        who = f" ({task['assignee']})" if task.get("assignee") else ""
        lines.append(f"- [{'x' if task['state'] == 'done' else ' '}] {task['department']}{who}: {task['title']} "
                     f"({state})")  # fmt: skip
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


def _districts(data: dict[str, Any], t: Any) -> list[str]:
    rows = data.get("districts") or []
    if not rows:
        return []
    lines = ["", f"### {t('by_district')}", "", f"| {t('district')} | {t('district_notices')} | "
             f"{t('district_linked')} |", "|---|---|---|"]  # fmt: skip
    return lines + [f"| {r['district']} | {r['notices']} | {r['linked']} |" for r in rows]


def _satisfaction(found: dict[str, Any] | None, t: Any) -> list[str]:
    if not found:
        return []
    lines = ["", f"### {t('satisfaction')}", ""]
    for who in ("affected", "baseline"):
        s = found[who]
        share = f"{s['satisfied_share']:.0%}" if s["satisfied_share"] is not None else "—"
        lines.append(
            "- "
            + t("sat_line").format(
                who=t(f"sat_{who}"), surveys=s["surveys"], mean=s["mean"] if s["mean"] is not None else "—", share=share
            )
        )
    d = found.get("difference")
    lines.append("- " + t("sat_diff").format(d="—" if d is None else f"{d:+g}"))
    return lines


def _compensation(offer: dict[str, Any] | None, t: Any) -> list[str]:
    if not offer:
        return []
    what = t(offer["kind"]).format(amount=offer["amount"])
    text = t("offer").format(
        what=what, scope=t(f"scope_{offer['scope']}"), **{k: v for k, v in offer.items() if k not in ("scope",)}
    )
    return ["", f"## {t('compensation')}", "", text]


def html(markdown_text: str, lang: str = "zh") -> str:
    """The review's Markdown as a standalone HTML page (the few constructs ``markdown`` writes: headings, lists,
    task boxes, tables, paragraphs), every text escaped."""
    body: list[str] = []
    in_list = in_table = False
    for line in markdown_text.split("\n"):
        if in_list and not line.startswith("- "):
            body.append("</ul>")
            in_list = False
        if in_table and not line.startswith("|"):
            body.append("</tbody></table>")
            in_table = False
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")), 4)
            body.append(f"<h{level}>{escape(line[level:].strip())}</h{level}>")
        elif line.startswith("- "):
            if not in_list:
                body.append("<ul>")
                in_list = True
            body.append(f"<li>{escape(line[2:])}</li>")
        elif line.startswith("|---"):
            continue
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not in_table:
                body.append("<table><thead><tr>" + "".join(f"<th>{escape(c)}</th>" for c in cells) + "</tr></thead>"
                            "<tbody>")  # fmt: skip
                in_table = True
            else:
                body.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
        elif line.strip():
            body.append(f"<p>{escape(line)}</p>")
    body.append("</ul>" if in_list else "")
    body.append("</tbody></table>" if in_table else "")
    title = escape(markdown_text.split("\n", 1)[0].lstrip("# "))
    style = (
        "body{font-family:system-ui,'PingFang SC','Microsoft YaHei',sans-serif;max-width:60rem;"
        "margin:2rem auto;padding:0 1rem;color:#222}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.25rem .5rem}th{background:#f3f3f3}"
    )
    return (
        f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{style}</style></head><body>{''.join(body)}</body></html>"
    )
