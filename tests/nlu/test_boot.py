"""First start: ``nlu.boot`` trains the model in a real child process (``python -m nlu train``) that
prints a progress line per step, once per model folder, and ``ensure`` waits for it."""

from __future__ import annotations

import resource
import time

import pytest

from nlu import NLU, boot


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def test_prepare_trains_once_in_a_child_and_ensure_waits_for_it(tmp_path, capfd):
    cpu, started = _child_cpu(), time.perf_counter()
    folder = boot.prepare(None, [], tmp_path)
    assert not boot.is_trained(folder) and folder.parent == tmp_path
    assert boot.prepare(None, [], tmp_path) == folder and list(boot._RUNNING) == [folder]  # one child per folder
    assert boot.ensure(None, [], tmp_path) == folder and boot.is_trained(folder)
    assert boot._RUNNING == {}
    seconds, cpu = time.perf_counter() - started, _child_cpu() - cpu
    err = capfd.readouterr().err
    steps = [line for line in err.splitlines() if line.startswith("nlu train [")]
    assert [s[: len("nlu train [1/5]")] for s in steps] == [f"nlu train [{i}/5]" for i in range(1, 6)], err
    assert "complaint types: 4" in err and f"saved to {folder}" in err
    # The first start spent 23.6 s of CPU training; this one must stay well inside the 10 s
    # start-up budget whatever the machine's load (CPU time, not wall time).
    print(f"training: {seconds:.1f} s wall, {cpu:.1f} s CPU")
    assert cpu < 8.0
    assert NLU.from_dir(folder).parse("我要投诉，网速太慢了").intent == "complaint"


def test_a_cached_model_starts_no_child(nlu_artifact):
    folder = boot.prepare(None, [], nlu_artifact.parent)
    assert folder == nlu_artifact and boot._RUNNING == {}
    assert boot.ensure(None, [], nlu_artifact.parent) == nlu_artifact


def test_a_failed_training_is_an_error_naming_it(tmp_path, capfd):
    bad = tmp_path / "extra.yml"
    bad.write_text('version: "3.1"\nnlu:\n- intent: nonsense\n  examples: |\n    - hi\n', encoding="utf-8")
    with pytest.raises(RuntimeError, match="training the NLU model failed"):
        boot.ensure(None, [str(bad)], tmp_path / "cache")
    assert "unknown intent 'nonsense'" in capfd.readouterr().err
    assert boot._RUNNING == {}
