"""Optional remote back end: a Rasa server's ``POST /model/parse``.

Used for the intent ranking, Rasa's own ``nlu_fallback`` (its FallbackClassifier) and — when Rasa was trained with
complaint types as the retrieval intent ``complaint/<type>`` (a ResponseSelector, as ``nlu/data`` trains in Rasa
unchanged) — the complaint type; entities and urgency still come from this package, and so does the complaint type
when Rasa gives none. Any error or timeout returns ``None`` and the embedded model answers instead.

What Rasa 3.6 answers (checked against a real server, tests/bots/test_rasa_real.py)::

    {"text": …, "intent": {"name": "complaint", "confidence": 0.99, "full_retrieval_intent_name": "complaint/network"},
     "intent_ranking": [{"name": "complaint", "confidence": 0.99}, …],
     "response_selector": {"all_retrieval_intents": ["complaint"],
                           "complaint": {"response": {"intent_response_key": "complaint/network", "confidence": 0.99,
                                                      …}, "ranking": […]}}, …}
    {"intent": {"name": "nlu_fallback", "confidence": 0.5}, "intent_ranking": [{"name": "nlu_fallback", …}, …]}
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

RETRIEVAL_INTENT = "complaint"  # complaint/<type> in the training data


@dataclass(frozen=True, slots=True)
class RemoteParse:
    """Rasa's answer as this package reads it: the ranking in Rasa's order (``nlu_fallback`` kept where Rasa put
    it; ``complaint/<type>`` names folded into ``complaint``) and the complaint type, if Rasa chose one."""

    ranking: list[tuple[str, float]]
    complaint_type: str | None = None
    complaint_type_confidence: float | None = None


class RasaBackend:
    def __init__(self, url: str, timeout: float) -> None:
        self.endpoint = url.rstrip("/") + "/model/parse"
        self.timeout = timeout

    def parse(self, text: str) -> RemoteParse | None:
        body = json.dumps({"text": text}).encode()
        request = urllib.request.Request(
            self.endpoint, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = json.loads(response.read())
            return read_parse(payload)
        except (urllib.error.URLError, TimeoutError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("rasa back end unavailable (%s); using the embedded model", type(exc).__name__)
            return None

    def ranking(self, text: str) -> list[tuple[str, float]] | None:
        parsed = self.parse(text)
        return parsed.ranking if parsed else None


def read_parse(payload: dict[str, Any]) -> RemoteParse:
    """Rasa's ``/model/parse`` answer (``KeyError``/``TypeError``/``ValueError`` when it is not one)."""
    top = payload["intent"]
    ranking: dict[str, float] = {}
    for r in payload.get("intent_ranking") or [top]:
        name, confidence = str(r["name"]), float(r["confidence"])
        base = name.partition("/")[0] if name.startswith(RETRIEVAL_INTENT + "/") else name
        ranking[base] = max(confidence, ranking.get(base, 0.0))
    ctype, cconf = _complaint_type(payload)
    return RemoteParse(list(ranking.items()), ctype, cconf)


def _complaint_type(payload: dict[str, Any]) -> tuple[str | None, float | None]:
    """``complaint/<type>`` when Rasa's intent is the complaint (its response selector answers every text, so only
    then): the intent's full retrieval name, else the selector's choice; the selector's confidence when it agrees."""
    top = payload.get("intent") or {}
    name = str(top.get("name") or "")
    if name.partition("/")[0] != RETRIEVAL_INTENT:
        return None, None
    selector = (payload.get("response_selector") or {}).get(RETRIEVAL_INTENT) or {}
    response = selector.get("response") or {}
    key = str(top.get("full_retrieval_intent_name") or (name if "/" in name else "") or
              response.get("intent_response_key") or "")  # fmt: skip
    kind = key.partition("/")[2]
    if not kind:
        return None, None
    confidence = response.get("confidence") if response.get("intent_response_key") == key else top.get("confidence")
    return kind, float(confidence) if confidence is not None else None
