"""Rasa as the NLU back end (``nlu/remote.py``) with answers recorded from a real Rasa 3.6.21 server
(tests/data/rasa-bot/parse-recorded.json, the fixture model of test_rasa_real.py, which checks them live):
Rasa's own ``nlu_fallback`` is kept in the ranking and is the project's fallback; ``complaint/<type>`` is the
complaint type."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from nlu import FALLBACK_INTENT, NLU, NLUConfig
from nlu.remote import RasaBackend, read_parse

RECORDED: dict[str, Any] = json.loads((Path(__file__).parents[1] / "data" / "rasa-bot" / "parse-recorded.json")
                                      .read_text(encoding="utf-8"))  # fmt: skip


class Recorded(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        text = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["text"]
        body = json.dumps(RECORDED[text]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def rasa_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorded)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(10)


def remote(engine: NLU, url: str) -> NLU:
    config = NLUConfig.from_dict({"backend": {"kind": "rasa", "url": url, "timeout": 5}}, "test")
    return NLU(engine._intents, engine._types, config)


def test_read_parse_keeps_nlu_fallback_and_reads_the_retrieval_intent():
    fell = read_parse(RECORDED["？？？"])
    assert fell.ranking[0] == (FALLBACK_INTENT, 0.5) and fell.complaint_type is None
    network = read_parse(RECORDED["网速太慢我要投诉"])
    assert network.ranking[0][0] == "complaint" and network.complaint_type == "network"
    assert network.complaint_type_confidence == pytest.approx(0.9998, abs=1e-3)  # the response selector's
    assert read_parse(RECORDED["查话费"]).complaint_type is None  # the selector answers every text: not a complaint
    flat = read_parse({"intent": {"name": "complaint/service", "confidence": 0.8},
                       "intent_ranking": [{"name": "complaint/service", "confidence": 0.8},
                                          {"name": "complaint/other", "confidence": 0.1}]})  # fmt: skip
    assert flat.ranking == [("complaint", 0.8)] and flat.complaint_type == "service"


def test_the_engine_maps_rasas_fallback_and_complaint_types(nlu_engine, rasa_url):
    engine = remote(nlu_engine, rasa_url)
    fell = engine.parse("？？？")
    assert fell.intent == FALLBACK_INTENT and fell.intent_ranking[0].name == FALLBACK_INTENT
    assert fell.top_intent == "greet"  # the best real intent, past Rasa's nlu_fallback
    assert fell.to_rasa()["intent_ranking"][0]["name"] == FALLBACK_INTENT  # as Rasa ranks it
    business = engine.parse("you overcharged me")
    assert business.intent == "complaint" and business.complaint_type == "business"
    assert business.complaint_type_confidence == pytest.approx(RECORDED["you overcharged me"]["response_selector"][
        "complaint"]["response"]["confidence"])  # fmt: skip
    assert engine.parse("查话费").intent == "query_balance"
    assert RasaBackend(rasa_url, 5).ranking("查话费")[0][0] == "query_balance"
