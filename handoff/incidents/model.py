"""What a major incident is: its categories, severities, services, stages and the moves between them.

Stages (seed ch. 7.2.2): ``reported → assessed → plan → acting → monitoring → closed → reviewed``. Any open stage may
close (a false alarm, or fixed early); ``monitoring`` may fall back to ``acting`` (the fault came back). Customers are
told of an incident (its notice) in the stages named ``answer_stages`` in config/incidents.yml.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import Conflict

CATEGORIES = ("natural_disaster", "accident", "public_health", "social_security", "network_fault")
CATEGORY_NAMES = {
    "natural_disaster": ("自然灾害", "natural disaster"),
    "accident": ("事故灾难", "accident or disaster"),
    "public_health": ("公共卫生事件", "public health event"),
    "social_security": ("社会安全事件（含网络攻击）", "social security event (incl. network attack)"),
    "network_fault": ("网络故障", "network fault"),
}
SERVICES = ("mobile", "broadband", "voice", "sms", "data", "iptv")
SERVICE_NAMES = {
    "mobile": ("移动网络", "mobile network"), "broadband": ("宽带", "broadband"), "voice": ("语音通话", "voice calls"),
    "sms": ("短信", "SMS"), "data": ("上网", "mobile data"), "iptv": ("电视", "IPTV"),
}  # fmt: skip
SEVERITIES = (1, 2, 3, 4)  # 1 = 特别重大 (most severe) … 4 = 一般
SEVERITY_NAMES = {1: ("特别重大", "critical"), 2: ("重大", "major"), 3: ("较大", "serious"), 4: ("一般", "minor")}
STAGES = ("reported", "assessed", "plan", "acting", "monitoring", "closed", "reviewed")
STAGE_NAMES = {
    "reported": ("已上报", "reported"), "assessed": ("已评估", "assessed"), "plan": ("已制定方案", "plan"),
    "acting": ("处置中", "acting"), "monitoring": ("观察中", "monitoring"), "closed": ("已关闭", "closed"),
    "reviewed": ("已总结", "reviewed"),
}  # fmt: skip
MOVES: dict[str, tuple[str, ...]] = {
    "reported": ("assessed", "closed"),
    "assessed": ("plan", "closed"),
    "plan": ("acting", "closed"),
    "acting": ("monitoring", "closed"),
    "monitoring": ("closed", "acting"),
    "closed": ("reviewed",),
    "reviewed": (),
}
OPEN = frozenset(STAGES[:5])


class TransitionRefused(Conflict):
    """409: the incident cannot move to ``to`` from its stage; ``allowed`` lists where it can go now."""

    def __init__(self, incident_id: str, stage: str, to: str) -> None:
        self.allowed = MOVES.get(stage, ())
        ok = ", ".join(self.allowed) or "nothing (the incident is reviewed)"
        ok_zh = "、".join(STAGE_NAMES[s][0] for s in self.allowed) or "无（事件已总结）"
        super().__init__(
            f"incident {incident_id} is '{stage}' and cannot move to '{to}'; allowed now: {ok}",
            zh=f"事件 {incident_id} 当前为“{STAGE_NAMES[stage][0]}”，不能变为“{STAGE_NAMES.get(to, (to,))[0]}”；"
            f"当前可变为：{ok_zh}",
            field="to",
        )


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    title: str
    category: str
    severity: int
    districts: tuple[str, ...]
    services: tuple[str, ...]
    stage: str
    owner: str
    created_at: float
    updated_at: float
    eta: float | None = None  # estimated recovery (epoch seconds)
    notice: dict[str, str] = field(default_factory=dict)  # lang → the supervisors' own notice text (else templated)
    stage_times: dict[str, float] = field(default_factory=dict)
    source: str = "console"  # console | monitoring | detector
    proposal: str = ""
    lessons: str = ""  # the supervisors' lessons, for the review

    @property
    def is_open(self) -> bool:
        return self.stage in OPEN

    def affects(self, district: str, service: str | None = None) -> bool:
        return district in self.districts and (service is None or not self.services or service in self.services)

    def to_redis(self) -> dict[str, str]:
        return {
            "id": self.id, "title": self.title, "category": self.category, "severity": str(self.severity),
            "districts": json.dumps(self.districts, ensure_ascii=False), "services": json.dumps(self.services),
            "stage": self.stage, "owner": self.owner, "created_at": repr(self.created_at),
            "updated_at": repr(self.updated_at), "eta": "" if self.eta is None else repr(self.eta),
            "notice": json.dumps(self.notice, ensure_ascii=False), "stage_times": json.dumps(self.stage_times),
            "source": self.source, "proposal": self.proposal, "lessons": self.lessons,
        }  # fmt: skip

    @classmethod
    def from_redis(cls, raw: dict[bytes, bytes]) -> Incident:
        g = {k.decode(): v.decode() for k, v in raw.items()}
        return cls(
            id=g["id"], title=g.get("title", ""), category=g["category"], severity=int(g["severity"]),
            districts=tuple(json.loads(g["districts"])), services=tuple(json.loads(g["services"])), stage=g["stage"],
            owner=g.get("owner", ""), created_at=float(g["created_at"]), updated_at=float(g["updated_at"]),
            eta=float(g["eta"]) if g.get("eta") else None, notice=json.loads(g.get("notice") or "{}"),
            stage_times=json.loads(g.get("stage_times") or "{}"), source=g.get("source", "console"),
            proposal=g.get("proposal", ""), lessons=g.get("lessons", ""),
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "category": self.category, "severity": self.severity,
            "districts": list(self.districts), "services": list(self.services), "stage": self.stage,
            "owner": self.owner, "created_at": self.created_at, "updated_at": self.updated_at, "eta": self.eta,
            "notice": self.notice, "stage_times": self.stage_times, "source": self.source, "proposal": self.proposal,
            "lessons": self.lessons, "allowed": list(MOVES.get(self.stage, ())),
        }  # fmt: skip


def check_move(incident: Incident, to: str) -> None:
    if to not in MOVES.get(incident.stage, ()):
        raise TransitionRefused(incident.id, incident.stage, to)
