"""The rubric applied to transcripts, scored by hand."""

from __future__ import annotations

from pathlib import Path

from handoff.reports.quality import rubric, score, total

R = rubric(Path(__file__).resolve().parents[2] / "config")


def agent(text: str, at: float) -> dict:
    return {"kind": "agent", "text": text, "at": at}


def customer(text: str, at: float) -> dict:
    return {"kind": "customer", "text": text, "at": at}


def test_a_good_chinese_conversation_keeps_every_point():
    entries = [customer("宽带掉线", 95), agent("您好，很高兴为您服务，请问是哪个地址？", 110),
               customer("海淀区", 120), agent("谢谢，已为您重置端口，请重启光猫试试", 150),
               agent("请问还有什么可以帮您？祝您生活愉快", 170)]  # fmt: skip
    assert score(entries, "resolved", 100, None, R) == []
    assert total(score(entries, "resolved", 100, 100, R)) == 100


def test_each_item_costs_its_points_with_the_line():
    # no greeting, a forbidden phrase, a 90 s gap, no closing, too few courtesy words, follow_up, survey 40
    entries = [customer("my bill is wrong", 100), agent("What is the number?", 120),
               customer("13800138000", 130), agent("That is not my problem, whatever", 220)]  # fmt: skip
    found = score(entries, "follow_up", 100, 40, R)
    by_item = {d["item"]: d for d in found}
    assert set(by_item) == {"greeting", "closing", "courtesy", "forbidden", "response_gap", "resolution", "survey"}
    assert by_item["greeting"]["line"] == "What is the number?" and by_item["greeting"]["points"] == 10
    assert by_item["forbidden"]["points"] == 20 and "not my problem" in by_item["forbidden"]["reason"]
    assert by_item["forbidden"]["reason_zh"].startswith("使用服务禁语")
    assert by_item["response_gap"]["points"] == 5 and "90 s" in by_item["response_gap"]["reason"]
    assert by_item["resolution"]["points"] == 10 and by_item["survey"]["points"] == 10
    assert by_item["courtesy"]["points"] == 10 and "0/2" in by_item["courtesy"]["reason"]
    # 100 − (10 + 10 + 10 + 20 + 5 + 10 + 10) = 25
    assert total(found) == 25


def test_waiting_in_the_queue_is_not_the_agents_gap_and_numbers_are_masked():
    entries = [
        customer("hi", 0),
        agent("Hello, thanks for waiting, my number is 13800138000. Anything else? please", 130),
    ]
    found = score(entries, "resolved", 100, None, R)  # picked up at 100: a 30 s answer
    assert found == []
    rude = [customer("hi", 0), agent("Hello, 13800138000 whatever. Anything else? please", 105)]
    (line,) = [d["line"] for d in score(rude, "resolved", 100, None, R)]
    assert "13800138000" not in line and "whatever" in line


def test_forbidden_phrases_stop_at_the_maximum():
    entries = [agent("您好，不知道", 1), agent("没办法", 2), agent("不归我管，请问还有什么可以帮您", 3)]
    forbidden = [d for d in score(entries, "resolved", 0, None, R) if d["item"] == "forbidden"]
    assert [d["points"] for d in forbidden] == [20, 20]  # 40 at most
