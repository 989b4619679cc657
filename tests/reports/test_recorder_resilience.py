"""A report is never worth a failed chat: with Redis away the hooks log and go on, and the pipeline's turn counts
wait in the process until Redis answers again."""

from __future__ import annotations

import logging

import redis.asyncio as aioredis
from reports_helpers import ChatRecord, at

from handoff.reports import counters, recorder
from handoff.reports.recorder import TurnStats


async def test_hooks_survive_redis_being_away(rc, keys, caplog):
    away = aioredis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.5)
    chat = ChatRecord("c1", "webchat", keys.conversation_log("webchat", "u", "c1"), "agent1", at(2, 10))
    with caplog.at_level(logging.WARNING):
        assert await counters.add(away, keys, at(2, 10), [("hq", 1)]) is False
        await recorder.handoff_queued(away, keys, chat, at(2, 10))
        await recorder.chat_closed(away, keys, chat, "resolved", at(2, 10, 5))
        await recorder.survey(away, keys, {"conversation": "c1", "score": 80, "at": at(2, 10, 6)})
    assert "reports: an event was not counted" in caplog.text

    stats = TurnStats(away, keys)
    stats.record("sms", at(2, 10), 0.5, True, True, False)
    await stats.flush()
    assert sum(c["conv"] for c in stats.pending.values()) == 1  # kept for the next flush
    stats.redis = rc  # Redis is back
    stats.record("sms", at(2, 10, 1), 0.5, True, True, False)
    await stats.close()
    assert stats.pending == {}
    day = {k.decode(): int(v) for k, v in (await rc.hgetall(keys.report_day("20261102"))).items()}
    assert (day["conv"], day["conv|sms"], day["bot"], day["bot_ok"]) == (2, 2, 2, 2)
    await away.aclose()
