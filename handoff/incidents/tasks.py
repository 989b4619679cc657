"""Cross-department coordination (seed ch. 7.3): the departments of config/incidents.yml, an incident's tasks for
them with deadlines, and the reminders — an overdue task once, and a status reminder when an active incident's
timeline has been silent for ``status_every`` seconds (then again after as long). Reminders go to supervisors on
the agents' live channel, each sent by one process (a Redis ``SET NX`` per reminder)."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from gateway.errors import BadRequest, Conflict, NotFound
from gateway.rkeys import Keys

DEFAULT_DEPARTMENTS = {
    "network_ops": {"zh": "网络运维部", "en": "Network operations"},
    "customer_service": {"zh": "客户服务部", "en": "Customer service"},
    "public_relations": {"zh": "公共关系部", "en": "Public relations"},
    "billing": {"zh": "计费结算部", "en": "Billing"},
}


@dataclass(frozen=True, slots=True)
class TasksConfig:
    departments: dict[str, dict[str, Any]] = field(default_factory=lambda: dict(DEFAULT_DEPARTMENTS))
    status_every: int = 1800  # seconds of silence on an active incident's timeline before a status reminder

    @property
    def members(self) -> dict[str, list[str]]:
        """Department → the names of its members (``members`` of each department; none: anyone)."""
        return {d: [str(m) for m in (v.get("members") or [])] for d, v in self.departments.items()}


class Tasks:
    def __init__(self, redis: aioredis.Redis, keys: Keys, config: TasksConfig) -> None:
        self.redis = redis
        self.keys = keys
        self.config = config

    async def of(self, incident_id: str, now: float | None = None) -> list[dict[str, Any]]:
        now = time.time() if now is None else now
        raw = await self.redis.hgetall(self.keys.incident_tasks(incident_id))
        tasks = sorted((json.loads(v) for v in raw.values()), key=lambda t: (t["deadline"], t["created_at"]))
        for task in tasks:
            finished = task.get("done_at") or now
            task["late"] = finished > task["deadline"]
            task["late_seconds"] = round(max(0.0, finished - task["deadline"]), 1)
        return tasks

    async def add(self, incident_id: str, department: str, title: str, deadline: float, by: str,
                  assignee: str = "") -> dict[str, Any]:  # fmt: skip
        """A task for a department, and for one of its members when ``assignee`` names one."""
        if department not in self.config.departments:
            raise BadRequest(f"'department' must be one of {', '.join(self.config.departments)}",
                             zh="部门无效", field="department")  # fmt: skip
        members = self.config.members[department]
        if assignee and assignee not in members:
            raise BadRequest(f"'assignee' must be a member of {department}: {', '.join(members) or 'none listed'}",
                             zh="负责人不是该部门成员", field="assignee")  # fmt: skip
        task = {"id": f"T{secrets.token_hex(4)}", "incident": incident_id, "department": department, "title": title,
                "deadline": deadline, "state": "open", "created_by": by, "created_at": time.time(),
                "assignee": assignee}  # fmt: skip
        await self.redis.hset(self.keys.incident_tasks(incident_id), task["id"], json.dumps(task, ensure_ascii=False))
        return task

    async def done(self, incident_id: str, task_id: str, by: str) -> dict[str, Any]:
        key = self.keys.incident_tasks(incident_id)
        raw = await self.redis.hget(key, task_id)
        if raw is None:
            raise NotFound(f"no task {task_id!r} in incident {incident_id}", zh="没有该任务", field="task")
        task = json.loads(raw)
        if task["state"] == "done":
            raise Conflict("this task is done already", zh="该任务已完成", field="task")
        task.update(state="done", done_by=by, done_at=time.time())
        await self.redis.hset(key, task_id, json.dumps(task, ensure_ascii=False))
        return task

    async def reminders(self, open_incidents: list[Any], last_entry: dict[str, float], now: float | None = None
                        ) -> list[dict[str, Any]]:  # fmt: skip
        """The reminders due now, each claimed once across processes: overdue tasks of open incidents, and
        incidents (acting or monitoring) whose timeline has been silent for ``status_every`` seconds."""
        now = time.time() if now is None else now
        due: list[dict[str, Any]] = []
        for incident in open_incidents:
            for task in await self.of(incident.id, now):
                if task["state"] == "open" and task["late"]:
                    claim = self.keys.incident_reminder(f"task:{incident.id}:{task['id']}")
                    if await self.redis.set(claim, "1", nx=True):
                        due.append({"type": "incident_task_overdue", "incident": incident.id, "task": task})
            quiet_since = last_entry.get(incident.id, incident.updated_at)
            if incident.stage in ("acting", "monitoring") and now - quiet_since >= self.config.status_every:
                claim = self.keys.incident_reminder(f"status:{incident.id}")
                if await self.redis.set(claim, "1", nx=True, ex=max(self.config.status_every, 1)):
                    due.append({"type": "incident_status_due", "incident": incident.id,
                                "silent_seconds": round(now - quiet_since)})  # fmt: skip
        return due
