"""``gateway nlu retrain|status``: the NLU learning loop from the command line.

``retrain`` trains on the base data plus the examples supervisors accepted on ``/nlu/review``, prints the
cross-validated accuracy with and without the new examples, and — unless the new model is worse (exit 3) or
``--no-switch`` is given — switches every running gateway process to it (no restart).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from gateway.nlu_review import retrain_base, review_dir
from gateway.nlu_review_models import Models
from gateway.redisconn import deployment_client
from gateway.rkeys import Keys
from gateway.settings import Settings, SettingsError, add_cli_arguments, cli_settings
from nlu import NLUConfig
from nlu.config import ConfigError
from nlu.data import DataError
from nlu.review import base_key, read_review, retrain

REFUSED = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway nlu", description="The NLU learning loop")
    add_cli_arguments(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("retrain", help="retrain with the reviewed examples and switch every gateway to it")
    run.add_argument("--folds", type=int, help="cross-validation folds (default nlu.retrain_folds)")
    run.add_argument("--no-switch", action="store_true", help="measure and store the model, do not switch")
    sub.add_parser("status", help="the active model and the reviewed examples")
    return parser


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


async def _retrain(args: argparse.Namespace, settings: Settings, models: Models) -> int:
    config = NLUConfig.load(settings.nlu.config or None)
    base = retrain_base(settings)
    key = base_key(base, config)
    review = review_dir(settings) / "review.yml"
    reviewed = read_review(review)
    if not reviewed:
        print(f"gateway nlu: nothing reviewed yet ({review} holds no examples): accept some on /nlu/review first",
              file=sys.stderr)  # fmt: skip
        return 1
    active = await models.active()
    seen = active.get("review_keys", []) if active and active.get("base_key") == key else []
    folds = args.folds or settings.nlu.retrain_folds
    print(f"retraining on {len(base)} base file(s) + {len(reviewed)} reviewed example(s); {folds}-fold "
          "cross-validation with and without the new ones…", file=sys.stderr)  # fmt: skip
    work = review.parent / "work"
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cli-", dir=work) as tmp:
        out = Path(tmp) / "model"
        cand = await asyncio.to_thread(retrain, base, review, config, seen, out, folds,
                                       lambda msg: print(f"  {msg}", file=sys.stderr, flush=True))  # fmt: skip
        print(f"cross-validated accuracy on the base data ({cand.folds} folds, {cand.examples} examples): "
              f"new {cand.accuracy:.3f} · current {cand.current_accuracy:.3f}")  # fmt: skip
        print(
            f"on the reviewed examples: new {_pct(cand.reviewed_accuracy)} · current "
            f"{_pct(cand.reviewed_current_accuracy)} ({cand.new} new of {cand.reviewed}); {cand.seconds:.1f} s"
        )
        if cand.worse(settings.nlu.retrain_tolerance):
            print("refused: the new model is worse than the current one; nothing switched "
                  "(check the labels in the review file)", file=sys.stderr)  # fmt: skip
            return REFUSED
        meta = {**cand.to_dict(), "against": active["id"] if active else "", "refused": False,
                "tolerance": settings.nlu.retrain_tolerance}  # fmt: skip
        meta.pop("folder")
        ident = await models.put(out, meta)
    if args.no_switch:
        print(f"model {ident} stored (kept a day); switch to it on /nlu/review")
        return 0
    await models.switch(ident, "cli")
    print(f"switched: every running gateway process loads model {ident} now (no restart)")
    return 0


async def _status(models: Models, settings: Settings) -> int:
    active = await models.active()
    reviewed = read_review(review_dir(settings) / "review.yml")
    if active:
        print(f"active model {active['id']}: accuracy {_pct(active.get('accuracy'))} (was "
              f"{_pct(active.get('current_accuracy'))}), {active.get('reviewed')} reviewed examples, by "
              f"{active.get('by')}")  # fmt: skip
    else:
        print("active model: the one the gateway starts with (no retrain switched to yet)")
    print(f"review file: {review_dir(settings) / 'review.yml'} ({len(reviewed)} examples)")
    return 0


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    async with deployment_client(settings.redis.url, settings.data_dir, settings.redis.appendfsync) as client:
        models = Models(client, Keys(settings.redis.key_prefix))  # type: ignore[arg-type]
        if args.command == "retrain":
            return await _retrain(args, settings, models)
        return await _status(models, settings)


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = cli_settings(args)
        if args.command == "retrain" and args.folds is not None and args.folds < 2:
            raise DataError("--folds must be at least 2")
        return asyncio.run(_run(args, settings))
    except (SettingsError, ConfigError, DataError) as exc:
        print(f"gateway nlu: {exc}", file=sys.stderr)
        return 2
