"""``python -m nlu train|predict|evaluate|shell``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from nlu.config import ConfigError, NLUConfig
from nlu.data import DataError
from nlu.data import load as load_examples
from nlu.engine import NLU, default_cache_dir, train_to_dir
from nlu.normalize import NLUInputError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nlu", description="Chinese-first telecom customer-service NLU")
    parser.add_argument("--config", type=Path, help="override file for nlu/config.yml")
    parser.add_argument("--cache-dir", type=Path, help="where trained models are cached (default var/nlu)")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train on the bundled data (and --data), print time and size")
    train.add_argument("--data", type=Path, action="append", help="Rasa YAML / JSONL file or folder (repeatable)")
    train.add_argument("--out", type=Path, help="output folder (default: the cache folder)")
    predict = sub.add_parser("predict", help='JSON lines {"text": …} on stdin → one JSON line per input')
    predict.add_argument("--data", type=Path, action="append")
    predict.add_argument("--now", help="reference date for relative months (YYYY-MM-DD)")
    evaluate = sub.add_parser(
        "evaluate", help="score the held-out set (nlu/heldout/) as issue 15's table, a test file, or cross-validate"
    )
    evaluate.add_argument("--data", type=Path, action="append", help="test file(s) instead of nlu/heldout/")
    evaluate.add_argument("--train-data", type=Path, action="append", help="training data (default: bundled)")
    evaluate.add_argument("--cv", action="store_true", help="stratified k-fold cross-validation on the training data")
    evaluate.add_argument("--folds", type=int, default=5, help="folds for --cv")
    evaluate.add_argument("--report", type=Path, help="write a Markdown report here")
    shell = sub.add_parser("shell", help="type a sentence, see the parse")
    shell.add_argument("--data", type=Path, action="append")
    return parser


def _training_data(data: Sequence[Path] | None) -> list[Path] | None:
    """Extra --data files are added to the bundled data, as the README says."""
    if not data:
        return None
    from nlu.data import DATA_DIR

    return [DATA_DIR, *data]


def cmd_train(args: argparse.Namespace, config: NLUConfig) -> int:
    from nlu.data import data_files
    from nlu.engine import artifact_key

    files = data_files(_training_data(args.data))
    out = args.out or (args.cache_dir or default_cache_dir()) / artifact_key(files, config)
    report = train_to_dir(config, files, out, show_progress=True)
    print(
        f"trained on {report.examples} examples in {report.seconds:.2f} s; {report.features} features; "
        f"{report.size_bytes / 1024:.0f} KiB in {report.path}"
    )
    return 0


def cmd_predict(args: argparse.Namespace, config: NLUConfig) -> int:
    from datetime import date

    try:
        now = date.fromisoformat(args.now) if args.now else None
    except ValueError:
        raise NLUInputError(f"--now must be a date like 2026-11-28, got {args.now!r}") from None
    nlu = NLU.load(config, _training_data(args.data), args.cache_dir)
    for number, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or "text" not in row:
                raise NLUInputError('expected a JSON object with "text"')
            out = nlu.parse(row["text"], now).to_flat()
        except json.JSONDecodeError as exc:
            out = {"error": f"line {number}: not JSON: {exc.msg}", "line": number}
        except NLUInputError as exc:
            out = {"error": f"line {number}: {exc}", "line": number}
        print(json.dumps(out, ensure_ascii=False), flush=True)
    return 0


def cmd_evaluate(args: argparse.Namespace, config: NLUConfig) -> int:
    from nlu.evaluate import HELDOUT_DIR, cross_validate, evaluate_on, real_table

    started = time.perf_counter()
    if not args.cv:
        nlu = NLU.load(config, _training_data(args.train_data), args.cache_dir)
        paths = args.data or [HELDOUT_DIR]
        examples = load_examples(paths)
        report = evaluate_on(nlu, examples, ", ".join(map(str, paths)))
        print(real_table(nlu, examples).render())
    else:
        examples = load_examples(_training_data(args.train_data))
        if args.folds < 2:
            raise DataError("--folds must be at least 2")
        report = cross_validate(
            examples, config, args.folds, progress=lambda f: print(f"fold {f}/{args.folds}", file=sys.stderr)
        )
    print(report.summary())
    print(f"({time.perf_counter() - started:.1f} s)")
    if args.report:
        args.report.write_text(report.to_markdown(), encoding="utf-8")
        print(f"report written to {args.report}")
    return 0


def cmd_shell(args: argparse.Namespace, config: NLUConfig) -> int:
    nlu = NLU.load(config, _training_data(args.data), args.cache_dir, show_progress=True)
    print("Type a sentence (Ctrl-D to quit).")
    while True:
        try:
            text = input("> ")
        except EOFError:
            print()
            return 0
        if not text.strip():
            continue
        try:
            print(json.dumps(nlu.parse(text).to_flat(), ensure_ascii=False, indent=2))
        except NLUInputError as exc:
            print(f"error: {exc}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = NLUConfig.load(args.config)
        handler = {"train": cmd_train, "predict": cmd_predict, "evaluate": cmd_evaluate, "shell": cmd_shell}
        return handler[args.command](args, config)
    except (ConfigError, DataError, NLUInputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
