"""The mergeable histograms' percentiles and what one event adds, by hand."""

from __future__ import annotations

from handoff.reports import buckets
from handoff.reports.buckets import WAIT_BOUNDS, Targets, percentile


def test_percentile_interpolates_inside_the_bucket():
    # waits 3, 4 (bucket ≤5), 12, 13, 14 (≤15), 50 (≤60): 6 values
    counts = [0] * (len(WAIT_BOUNDS) + 1)
    for wait in (3, 4, 12, 13, 14, 50):
        counts[buckets.bucket(WAIT_BOUNDS, wait)] += 1
    assert counts[0] == 2 and counts[2] == 3 and counts[6] == 1
    # p50: rank 3 → the first of three in (10, 15]: 10 + 5·(3−2)/3 = 11.67
    assert round(percentile(WAIT_BOUNDS, counts, 0.5), 2) == 11.67
    # p90: rank 5.4 → the only one in (45, 60]: 45 + 15·0.4 = 51
    assert round(percentile(WAIT_BOUNDS, counts, 0.9), 2) == 51.0
    assert percentile(WAIT_BOUNDS, [0] * 16, 0.5) is None
    over = [0] * 15 + [4]  # every value above the last bound: the last bound
    assert percentile(WAIT_BOUNDS, over, 0.9) == 3600.0


def test_histograms_merge_by_adding():
    a = [1, 0, 2] + [0] * 13
    b = [0, 3, 1] + [0] * 13
    merged = [x + y for x, y in zip(a, b, strict=True)]
    assert percentile(WAIT_BOUNDS, merged, 0.5) == 5 + 5 * (3.5 - 1) / 3


def test_one_event_each():
    t = Targets()
    assert buckets.turn("sms", 0.8, True, True, False, t) == [("conv", 1), ("conv|sms", 1), ("bot", 1), ("bot_ok", 1),
                                                              ("bl|2", 1)]  # fmt: skip
    assert ("bot_ok", 0) in buckets.turn("sms", 0.8, False, True, True, t)  # past the deadline: a miss
    assert buckets.picked_up("a|b", 16, t) == [("hp", 1), ("hp_ok", 0), ("w|3", 1), ("wsum", 16), ("ag|a/b", 1)]
    pairs = dict(buckets.survey(80, {"channel": ["wechat"], "skill": ["network", "network"]}))
    assert pairs == {"s|all||n": 1, "s|all||sum": 80, "s|all||l4": 1, "s|channel|wechat|n": 1,
                     "s|channel|wechat|sum": 80, "s|channel|wechat|l4": 1, "s|skill|network|n": 1,
                     "s|skill|network|sum": 80, "s|skill|network|l4": 1}  # fmt: skip
