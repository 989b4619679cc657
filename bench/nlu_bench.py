"""NLU speed and memory, with scikit-learn's own ``predict_proba`` on the same model as baseline.

    python bench/nlu_bench.py [--rounds 300]

Prints single-message latency (p50/p99, one core) for: the full parse (normalise, classify,
complaint type, entities, urgency); the classification alone; and scikit-learn's
``TfidfVectorizer.transform`` + ``LogisticRegression.predict_proba`` on the same weights. Also
model load time and the resident memory of a fresh process holding the model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MESSAGES = [
    "我的话费还剩多少", "查一下流量", "上个月账单多少钱", "我想换个便宜点的套餐", "帮我充50块话费", "余额", "TD",
    "你好", "谢谢", "转人工", "朝阳区是不是断网了，一直没信号", "宽带坏了，光猫红灯一直闪，麻烦派个师傅",
    "你们乱扣费！莫名其妙开通了视频会员，我要投诉到工信部！！！", "营业厅几点关门", "去日本旅游怎么开通国际漫游",
    "手机丢了，帮我挂失停机", "携号转网需要什么条件", "我的投诉处理到哪一步了", "今天天气怎么样",
    "我的手机号是138 0013 8000，帮我查下这个月还剩多少流量", "信號太差了，打電話老是掉線", "客服态度太差了，排队两个小时",
    "what's my balance", "how much data do I have left", "show me last month's bill", "I want to upgrade my plan",
    "top up 50 yuan", "is there an outage in Pudong?", "where is the nearest store and when does it open",
    "how do I enable roaming in Japan", "I lost my phone, please suspend my number", "I want to port my number",
    "my broadband is down again, this is the third time this month!!!", "cancel my ringback tone subscription",
    "any update on my complaint?", "tell me a joke", "talk to a human", "thanks a lot", "bye", "yes please",
]  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(fn, texts: list[str], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        for text in texts:
            t0 = time.perf_counter_ns()
            fn(text)
            samples.append((time.perf_counter_ns() - t0) / 1000)
    return samples


def child_load_and_rss(folder: str) -> dict[str, float]:
    code = (
        "import time,json,resource,sys; t=time.perf_counter(); sys.path.insert(0, %r)\n"
        "from nlu import NLU\n"
        "nlu = NLU.from_dir(__import__('pathlib').Path(%r)); load = time.perf_counter() - t\n"
        "[nlu.parse(m) for m in %r * 50]\n"
        "rss = int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) / 1024\n"
        "print(json.dumps({'load_s': load, 'rss_mb': rss}))"
    ) % (str(ROOT), folder, MESSAGES)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core

    from nlu import NLU
    from nlu.config import NLUConfig
    from nlu.data import data_files
    from nlu.engine import artifact_key, default_cache_dir
    from nlu.features import features
    from nlu.normalize import normalise

    t0 = time.perf_counter()
    nlu = NLU.load(show_progress=True)
    print(f"model ready (cached or trained) in {time.perf_counter() - t0:.2f} s")
    folder = default_cache_dir() / artifact_key(data_files(None), NLUConfig.load())
    intents = nlu._intents
    vectorizer, clf = intents.to_sklearn()

    def ours_classify(text: str) -> object:
        return intents.proba(intents.indices(features(normalise(text).model)))

    def sklearn_classify(text: str) -> object:
        return clf.predict_proba(vectorizer.transform([normalise(text).model]))

    mismatches = 0
    for text in MESSAGES:  # same model, same answer
        a, b = ours_classify(text), sklearn_classify(text)[0]
        mismatches += int(abs(a - b).max() > 1e-4)
    for fn in (nlu.parse, ours_classify, sklearn_classify):
        timed(fn, MESSAGES, 5)  # warm up
    rows = [
        ("full parse (ours)", timed(nlu.parse, MESSAGES, args.rounds)),
        ("classify only (ours)", timed(ours_classify, MESSAGES, args.rounds)),
        ("sklearn predict_proba (baseline)", timed(sklearn_classify, MESSAGES, max(args.rounds // 10, 10))),
    ]
    print(f"\n{len(MESSAGES)} typical messages (zh+en), one core; latency per message in µs")
    print(f"{'':36} {'p50':>8} {'p99':>8} {'mean':>8}")
    for name, samples in rows:
        print(
            f"{name:36} {percentile(samples, 0.5):8.1f} {percentile(samples, 0.99):8.1f} {statistics.mean(samples):8.1f}"
        )
    base = percentile(rows[2][1], 0.5)
    print(f"\nspeed-up of full parse over sklearn baseline (p50): {base / percentile(rows[0][1], 0.5):.1f}x")
    print(f"probability mismatches vs sklearn on the same model: {mismatches}/{len(MESSAGES)}")
    child = child_load_and_rss(str(folder))
    print(
        f"model load (fresh process): {child['load_s'] * 1000:.0f} ms; resident memory holding the model: "
        f"{child['rss_mb']:.1f} MB"
    )
    print("targets: p50 <= 100 µs, p99 <= 300 µs, load <= 1 s, RSS <= 150 MB")


if __name__ == "__main__":
    main()
