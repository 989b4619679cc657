"""Optional remote back end: a Rasa server's ``POST /model/parse``.

Used for the intent ranking only; complaint type, entities and urgency still come from this
package. Any error or timeout returns ``None`` and the embedded model answers instead.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

log = logging.getLogger(__name__)


class RasaBackend:
    def __init__(self, url: str, timeout: float) -> None:
        self.endpoint = url.rstrip("/") + "/model/parse"
        self.timeout = timeout

    def ranking(self, text: str) -> list[tuple[str, float]] | None:
        body = json.dumps({"text": text}).encode()
        request = urllib.request.Request(
            self.endpoint, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = json.loads(response.read())
            ranking = payload.get("intent_ranking") or [payload["intent"]]
            return [(str(r["name"]), float(r["confidence"])) for r in ranking]
        except (urllib.error.URLError, TimeoutError, OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("rasa back end unavailable (%s); using the embedded model", type(exc).__name__)
            return None
