"""Erlang C against published values, and the staffing advice from hand-made buckets."""

from __future__ import annotations

import datetime as dt

import pytest

from handoff.reports.config import load
from handoff.reports.staffing import advice, erlang_c, servers_needed, service_level


@pytest.mark.parametrize(("servers", "waiting"), [(11, 0.6821), (12, 0.4494), (13, 0.2853), (14, 0.1741)])
def test_erlang_c_matches_the_published_table_for_10_erlangs(servers, waiting):
    # the classic call-centre example (100 calls per half hour, 3 minutes each = 10 erlangs): P(wait) per agents
    assert erlang_c(servers, 10.0) == pytest.approx(waiting, abs=5e-5)


def test_the_published_staffing_answers():
    # 10 erlangs, 180 s per call, 80 % within 20 s: 13 agents give 79.6 %, 14 give 88.8 % → 14 needed
    assert service_level(13, 10.0, 180, 20) == pytest.approx(0.7956, abs=5e-4)
    assert service_level(14, 10.0, 180, 20) == pytest.approx(0.8884, abs=5e-4)
    assert servers_needed(10.0, 180, 0.8, 20, 100) == 14
    # 120 customers an hour, 3 minutes each (6 erlangs), 10 servers: "the probability of waiting is about 0.10"
    assert erlang_c(10, 6.0) == pytest.approx(0.1013, abs=5e-4)
    # 30 calls an hour, 5 minutes each: the fewest staff for 90 % not delayed is 5 (1 − C(5, 2.5) = 0.8696 < 0.9)…
    assert 1 - erlang_c(5, 2.5) == pytest.approx(0.8696, abs=5e-4) and 1 - erlang_c(6, 2.5) > 0.9


def test_hand_computed_erlang_c_for_two_servers():
    # C(2, 1) by the formula: (1²/2! · 2/(2−1)) / (1 + 1 + 1) = 1/3; SL(20 s, AHT 60 s) = 1 − ⅓·e^(−1·20/60)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert service_level(2, 1.0, 60, 20) == pytest.approx(1 - (1 / 3) * 2.718281828 ** (-1 / 3))


def test_overload_and_idle_are_explicit():
    assert erlang_c(5, 5.0) == 1.0 and service_level(5, 6.0, 100, 15) == 0.0
    assert erlang_c(3, 0.0) == 0.0 and servers_needed(0.0, 300, 0.8, 15, 10) == 0
    assert servers_needed(50.0, 300, 0.8, 15, 20) is None  # more than the most allowed


def test_advice_from_measured_arrivals_and_handling():
    config = load(None)  # 80 % within 15 s, concurrency 3
    # two days: at 10:00, 36 and 36 arrivals (36 an hour), handled in 300 s on average → 3 erlangs
    day = {"hq@10": 36, "hc@10": 36, "tsum@10": 36 * 300, "hc": 36, "tsum": 36 * 300}
    rows = [(dt.date(2026, 11, 1), dict(day)), (dt.date(2026, 11, 2), dict(day))]
    today = [{} for _ in range(24)]
    today[10] = {"ag|agent1": 4, "ag|agent2": 2}  # two agents picked chats up at 10:00 today
    out = advice(rows, today, config, hours_past=24)
    ten = out["hours"][10]
    assert ten["arrivals_per_hour"] == 36 and ten["handle_seconds"] == 300 and ten["traffic_erlangs"] == 3.0
    # by hand: C(5, 3) = 0.2362 → SL = 1 − 0.2362·e^(−2·15/300) = 78.6 % < 80 %; C(6, 3) = 0.0991 → 91.5 %
    assert erlang_c(5, 3.0) == pytest.approx(0.2362, abs=5e-4) and service_level(5, 3.0, 300, 15) < 0.8
    assert servers_needed(3.0, 300, 0.8, 15, 1500) == 6 and ten["agents_needed"] == 2  # ⌈6 servers / 3 per agent⌉
    assert ten["agents_today"] == 2 and ten["service_level_today"] == round(service_level(6, 3.0, 300, 15), 4)
    assert out["hours"][3]["agents_needed"] == 0 and out["hours"][3]["service_level_today"] is None
    later = advice(rows, today, config, hours_past=10)["hours"][10]  # 10:00 today has not begun
    assert later["agents_today"] is None and later["gap"] is None
    assert advice(rows, today, config, on_duty=1)["hours"][10]["service_level_today"] == round(
        service_level(3, 3.0, 300, 15), 4
    )
