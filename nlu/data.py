"""Training and test data: Rasa 3 NLU YAML and JSON lines.

Rasa YAML (``version: "3.1"``, ``nlu: - intent: … examples: |``) moves both ways between this
project and Rasa. Complaint types are Rasa retrieval intents: ``complaint/network`` is intent
``complaint`` with complaint type ``network``. Entity annotations ``[text](entity)`` and
``[text]{"entity": …}`` are accepted and reduced to their text; ``synonym``, ``regex``, ``lookup``
blocks are accepted and ignored (this NLU's entities come from rules and configured lists).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from nlu.normalize import has_cjk

INTENTS: tuple[str, ...] = (
    "greet", "goodbye", "thanks", "affirm", "deny", "request_human", "query_balance",
    "query_data_usage", "query_bill", "query_package", "change_package", "recharge",
    "network_status", "store_hours", "roaming", "sim_service", "number_porting",
    "broadband_repair", "unsubscribe", "complaint", "complaint_status", "out_of_scope",
)  # fmt: skip
COMPLAINT_TYPES: tuple[str, ...] = ("service", "business", "network", "other")

_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")
_IGNORED_BLOCKS = ("synonym", "regex", "lookup")
DATA_DIR = Path(__file__).parent / "data"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 10× faster to read the training data


class DataError(ValueError):
    """A training or test file is malformed; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    intent: str
    complaint_type: str | None
    lang: str
    source: str

    @property
    def label(self) -> str:
        return self.intent


def lang_of(text: str) -> str:
    return "zh" if has_cjk(text) else "en"


def _split_intent(name: str, where: str) -> tuple[str, str | None]:
    base, _, sub = name.partition("/")
    if base not in INTENTS:
        raise DataError(f"{where}: unknown intent {name!r}; expected one of {', '.join(INTENTS)}")
    if base == "complaint":
        if sub not in COMPLAINT_TYPES:
            raise DataError(
                f"{where}: complaint examples need a type: complaint/{'|'.join(COMPLAINT_TYPES)}, got {name!r}"
            )
        return base, sub
    if sub:
        raise DataError(f"{where}: only complaint has sub-intents, got {name!r}")
    return base, None


def _examples_in_block(block: object, where: str) -> list[str]:
    if not isinstance(block, str):
        raise DataError(f"{where}: 'examples' must be a block of '- text' lines")
    texts = []
    for number, raw in enumerate(block.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("- "):
            raise DataError(f"{where}: example line {number} does not start with '- ': {line[:40]!r}")
        text = _ANNOTATION.sub(r"\1", line[2:]).strip()
        if text:
            texts.append(text)
    return texts


def load_rasa_yaml(path: Path) -> list[Example]:
    try:
        with path.open(encoding="utf-8") as fh:
            doc = yaml.load(fh, Loader=_LOADER)  # a safe loader (CSafeLoader or SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"line {mark.line + 1}" if mark else "unknown line"
        raise DataError(f"{path}:{line}: malformed YAML: {exc.problem or exc}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
    if not isinstance(doc, dict) or "nlu" not in doc:
        raise DataError(f"{path}: not a Rasa NLU file (no top-level 'nlu:' list)")
    blocks = doc["nlu"]
    if not isinstance(blocks, list):
        raise DataError(f"{path}: 'nlu' must be a list")
    examples: list[Example] = []
    for index, block in enumerate(blocks, 1):
        where = f"{path}: nlu item {index}"
        if not isinstance(block, dict):
            raise DataError(f"{where}: expected a mapping with 'intent' and 'examples'")
        if any(key in block for key in _IGNORED_BLOCKS):
            continue
        if "intent" not in block:
            raise DataError(f"{where}: missing 'intent'")
        where = f"{where} (intent {block['intent']})"
        intent, ctype = _split_intent(str(block["intent"]), where)
        for text in _examples_in_block(block.get("examples"), where):
            examples.append(Example(text, intent, ctype, lang_of(text), str(path)))
    return examples


def load_jsonl(path: Path) -> list[Example]:
    examples: list[Example] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not JSON: {exc.msg}") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or "intent" not in row:
            raise DataError(f"{where}: expected an object with 'text' and 'intent'")
        name = str(row["intent"])
        if row.get("complaint_type") and "/" not in name:
            name = f"{name}/{row['complaint_type']}"
        intent, ctype = _split_intent(name, where)
        examples.append(Example(row["text"], intent, ctype, lang_of(row["text"]), str(path)))
    return examples


def _files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in {".yml", ".yaml", ".jsonl"})
        elif path.exists():
            yield path
        else:
            raise DataError(f"{path}: no such file or folder")


def load(paths: Iterable[Path | str] | None = None) -> list[Example]:
    """Load every Rasa YAML / JSONL file in ``paths`` (files or folders; default: bundled data)."""
    chosen = [Path(p) for p in paths] if paths else [DATA_DIR]
    examples: list[Example] = []
    for path in _files(chosen):
        examples.extend(load_jsonl(path) if path.suffix == ".jsonl" else load_rasa_yaml(path))
    if not examples:
        raise DataError(f"no training examples found in {', '.join(map(str, chosen))}")
    return examples


def data_files(paths: Iterable[Path | str] | None = None) -> list[Path]:
    chosen = [Path(p) for p in paths] if paths else [DATA_DIR]
    return list(_files(chosen))
