"""What the agent console shows: the queue and an agent's chats (with their SLA clocks), one chat with its
transcript and the customer's profile, canned replies, callback tasks, and the supervisors' overview of agents
and breaches. Reads only: every change goes through the chat store and the parts that own it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import jinja2

from gateway.errors import Forbidden
from gateway.privacy import mask_phone
from handoff.agents import Agent, AgentStore
from handoff.config import HandoffConfig
from handoff.ports import ProfileOf
from handoff.sla import Clocks
from handoff.store import Chat, ChatStore

TRANSCRIPT_KINDS = ("customer", "bot", "agent", "system", "note", "event")
ENTRY_FIELDS = ("kind", "text", "display", "at", "agent", "nlu", "event", "disposition", "reason", "score",
                "clock", "to", "skills", "complaint_type", "whisper")  # fmt: skip
NAMED = ("agent", "to")  # an event's agents: shown by their display names, never their sign-in names
EVENT_DETAILS = ("agent", "to", "clock", "disposition", "reason", "score")
OVERVIEW_DELAY = 0.2  # supervisors' overview: the changes of 200 ms make one update


def can_read(agent: Agent, chat: Chat) -> bool:
    """A chat's transcript, notes and canned replies: its agent's (now or when it closed) and supervisors'."""
    return agent.supervises or (chat.agent == agent.name and chat.state in ("assigned", "closed"))


def visible(agent: Agent, chats: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The queue's summaries an agent sees: the chats they have the skills for (all, for supervisors)."""
    return [c for c in chats if agent.supervises or agent.serves(c["skills"])]


def by_skill(queued: list[Chat], now: float) -> list[dict[str, Any]]:
    """Per skill of the queued chats: how many wait and the longest wait (seconds), the longest first."""
    out: dict[str, dict[str, Any]] = {}
    for chat in queued:
        for skill in chat.skills or ("",):
            row = out.setdefault(skill, {"skill": skill, "waiting": 0, "longest": 0.0, "oldest": chat.id})
            row["waiting"] += 1
            wait = max(now - chat.enqueued_at, 0.0)
            if wait >= row["longest"]:
                row["longest"], row["oldest"] = round(wait, 1), chat.id
    return sorted(out.values(), key=lambda r: (-r["longest"], r["skill"]))


def callback_view(task: dict[str, Any]) -> dict[str, Any]:
    """A callback task for the console: the customer shown masked, never the raw sender id."""
    sender = str(task.get("sender") or "")
    customer = task.get("phone") or (mask_phone(sender) if sender.lstrip("+").isdigit() and len(sender) >= 7
                                     else f"{sender[:6]}…" if len(sender) > 8 else sender)  # fmt: skip
    return {"id": task["id"], "channel": task.get("channel"), "customer": customer, "lang": task.get("lang"),
            "reason": task.get("reason"), "status": task.get("status"), "text": task.get("text"),
            "messages": task.get("messages", []), "at": task.get("at"), "handled": task.get("handled")}  # fmt: skip


class ConsoleViews:
    def __init__(self, store: ChatStore, clocks: Clocks, agents: AgentStore, config: HandoffConfig,
                 profile_of: ProfileOf | None = None) -> None:  # fmt: skip
        self.store = store
        self.clocks = clocks
        self.agents = agents
        self.config = config
        self.profile_of = profile_of
        self._canned_env = jinja2.Environment(autoescape=False, undefined=jinja2.ChainableUndefined)
        self._overview_due = False

    # ---- lists -------------------------------------------------------------------------------------
    async def chats(self, chats: list[Chat]) -> list[dict[str, Any]]:
        clocks = await self.clocks.clocks([c.id for c in chats])
        return [c.summary(clocks.get(c.id)) for c in chats]

    async def queue(self) -> list[dict[str, Any]]:
        return await self.chats(await self.store.queued())

    async def mine(self, agent: Agent) -> list[dict[str, Any]]:
        return await self.chats(await self.store.mine(agent.name))

    # ---- one chat -----------------------------------------------------------------------------------
    async def readable(self, agent: Agent, chat_id: str) -> Chat:
        """The chat when ``agent`` may read it (``can_read``), else 403 (404 when there is none)."""
        chat = await self.store.get(chat_id)
        if not can_read(agent, chat):
            raise Forbidden("this chat is not yours", zh="这不是您的会话")
        return chat

    async def detail(self, chat: Chat) -> dict[str, Any]:
        """The chat's summary, transcript (with notes) and the customer's profile from the operator back end."""
        view = (await self.chats([chat]))[0]
        profile: dict[str, Any] = {"phone": view["customer"] if chat.phone else None, "tier": chat.tier, "plan": None,
                                   "district": None, "name": None}  # fmt: skip
        if chat.phone and self.profile_of:
            with contextlib.suppress(Exception):  # the back end away: the console still opens the chat
                profile.update(await self.profile_of(chat.phone, chat.lang))
        return {**view, "transcript": await self.transcript(chat), "profile": profile}

    async def transcript(self, chat: Chat, with_notes: bool = True) -> list[dict[str, Any]]:
        return await self.entries(await self.store.log(chat), with_notes)

    async def entries(self, log: list[dict[str, Any]], with_notes: bool = True) -> list[dict[str, Any]]:
        """Log entries as the console shows them: the transcript's kinds, events in words, agents by name."""
        out = []
        names: dict[str, str] | None = None
        for entry in log:
            kind = entry.get("kind")
            if kind not in TRANSCRIPT_KINDS or (kind == "note" and not with_notes):
                continue
            item = {k: v for k, v in entry.items() if k in ENTRY_FIELDS}
            if kind == "event" and not item.get("text"):  # a readable line for the console
                details = [str(entry[k]) for k in EVENT_DETAILS if entry.get(k) not in (None, "")]
                item["text"] = " · ".join([str(entry.get("event", "")), *details])
            if kind == "event" and any(item.get(k) for k in NAMED):
                if names is None:
                    names = {a.name: a.display_name for a in await self.agents.all()}
                for k in NAMED:
                    if item.get(k) in names:
                        item[k] = names[item[k]]
            out.append(item)
        return out

    def canned(self, chat: Chat, agent: Agent) -> list[dict[str, str]]:
        """The canned replies of ``config/canned.yml`` in the chat's language, filled in for this chat."""
        out = []
        for key, entry in self.config.canned.items():
            text = self._canned_env.from_string(entry.get(chat.lang) or entry["zh"]).render(
                agent=agent.display(chat.lang), ticket=chat.ticket or "",
                customer=mask_phone(chat.phone) if chat.phone else "")  # fmt: skip
            out.append({"id": key, "title": entry["title"].get(chat.lang, key), "text": text})
        return out

    async def sla(self, chat_id: str) -> list[dict[str, Any]]:
        """The chat's running clocks as its summary lists them (``[]`` when none runs)."""
        timers = (await self.clocks.clocks([chat_id]))[chat_id]
        return [{"clock": c, "warn_at": w, "due_at": d, "breached": b} for c, (w, d, b) in timers.items()]

    async def transfer_targets(self, agent: Agent) -> dict[str, Any]:
        """Whom ``agent`` may transfer a chat to: the other agents online now (with their load, those at
        capacity marked) and the skill groups, never an agent who is away or offline."""
        loads = await self.agent_loads()
        online = [{"name": a["name"], "display_name": a["display_name"], "load": a["load"], "capacity": a["capacity"],
                   "full": a["load"] >= a["capacity"]}
                  for a in loads if a["status"] == "online" and a["name"] != agent.name]  # fmt: skip
        skills = sorted({s for a in loads for s in a["skills"]})
        return {"agents": online, "skills": skills}

    # ---- supervisors' overview ------------------------------------------------------------------------
    async def agent_loads(self) -> list[dict[str, Any]]:
        agents = await self.agents.all()
        names = [a.name for a in agents]
        presences = await self.agents.presences(names)
        loads = await self.store.loads(names)
        now = time.time()
        out = []
        for agent, (status, seen) in zip(agents, presences, strict=True):
            if status != "offline" and now - seen >= self.config.heartbeat_timeout:
                status = "offline"
            out.append({**agent.to_json(), "status": status, "load": loads[agent.name]})
        return out

    async def breaches(self) -> list[dict[str, Any]]:
        return await self.clocks.breaches()

    async def overview(self) -> dict[str, Any]:
        """The supervisors' view beyond the agents: the queue by skill (count, longest wait) and system outages."""
        return {"by_skill": by_skill(await self.store.queued(), time.time()), "outages": await self.clocks.outages(20)}

    async def publish_agents(self) -> None:
        """Supervisors' overview of agents and breaches; changes within 200 ms make one update."""
        if self._overview_due:
            return
        self._overview_due = True
        await asyncio.sleep(OVERVIEW_DELAY)
        self._overview_due = False
        await self.store.publish({"type": "agents", "agents": await self.agent_loads(),
                                  "breaches": await self.breaches()}, to="supervisors")  # fmt: skip
