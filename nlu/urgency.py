"""Urgency 0–3 from anger and escalation cues; the handoff queue uses it for priority.

0 calm · 1 annoyed (one cue) · 2 angry or repeated (two cues, or an insult) · 3 escalating
(a threat to go to the regulator, 315, the media or court, or everything at once).
"""

from __future__ import annotations

import re

_THREAT = re.compile(
    r"工信部|工业和信息化部|通管局|通信管理局|(?<!\d)(?:12315|315|12300)(?!\d)|消协|消费者协会|媒体|曝光|记者|报警|起诉"
    r"|律师|法院|上诉|投诉到底"
    r"|\b(?:miit|regulators?|lawyers?|sue|suing|court|media|journalists?|newspapers?|police"
    r"|consumer (?:association|council))\b",
)
_INSULT = re.compile(
    r"垃圾|骗子|傻[逼b]|(?<![a-z])sb(?![a-z])|煞笔|坑人|坑爹|黑心|流氓|无耻|强盗|滚|去死|(?<![a-z])tmd(?![a-z])|他妈|妈的"
    r"|尼玛|狗屁|废物|混蛋"
    r"|\b(?:scam|scammers?|rubbish|garbage|useless|idiots?|stupid|thie(?:f|ves)|crooks?|f+u+c+k\w*|wtf|bullshit|shit|damn)\b",
)
_REPEAT = re.compile(
    r"又|再次|第[二三四五六七八九十0-9]+次|好几次|多少次|无数次|一直没|还是没|始终|反复|天天|每次|到现在都"
    r"|\b(?:again|(?:second|third|fourth|fifth|\d+(?:st|nd|rd|th)) time|many times|still not|keeps? happening"
    r"|every time)\b",
)
_ANGER = re.compile(
    r"气死|太差|差劲|受不了|忍无可忍|无语|离谱|过分|恶心|愤怒|火大|不像话|什么玩意|搞什么|太坑|必须给我|马上给我|立刻"
    r"|\b(?:ridiculous|unacceptable|furious|angry|outrageous|terrible|worst|disgusting|fed up|sick of|immediately"
    r"|right now)\b",
)
_BANGS = re.compile(r"[!！]{2,}|[?？][!！]|[!！][?？]")
_UPPER = re.compile(r"[A-Z]")
_LOWER = re.compile(r"[a-z]")


def urgency(text: str) -> int:
    """Score ``text`` (width-folded, simplified) from 0 to 3."""
    low = text.lower()
    score = 2 * (_THREAT.search(low) is not None) + 2 * (_INSULT.search(low) is not None)
    score += (_REPEAT.search(low) is not None) + (_ANGER.search(low) is not None) + (_BANGS.search(text) is not None)
    if score < 3 and text.isascii():
        upper, lower = len(_UPPER.findall(text)), len(_LOWER.findall(text))
        if upper >= 12 and upper > 2.3 * lower:
            score += 1  # SHOUTING
    return min(score, 3)
