"""First start: the model is trained in a child process that begins as early as possible.

The gateway calls :func:`prepare` before it imports the rest of itself (about 2 s of CPU) and
:func:`ensure` when it needs the model: on the first start the training (about 3 s of CPU) runs
beside the imports on the second core instead of after them. The child is ``python -m nlu train``,
so scikit-learn never stays resident in the server; it prints one progress line per step.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from nlu.config import NLUConfig
from nlu.data import DATA_DIR, data_files
from nlu.engine import artifact_key

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
_RUNNING: dict[Path, subprocess.Popen[bytes]] = {}


def model_folder(config: str | None, data: Sequence[str], cache_dir: Path) -> Path:
    """Where the model for this configuration and training data is (or will be) cached."""
    files = data_files([DATA_DIR, *data] if data else None)
    return cache_dir / artifact_key(files, NLUConfig.load(config))


def is_trained(folder: Path) -> bool:
    return (folder / "complaint_type.json").exists()  # written last: the model is complete


def prepare(config: str | None, data: Sequence[str], cache_dir: Path) -> Path:
    """Start training in a child process unless the model is cached or already being trained."""
    folder = model_folder(config, data, cache_dir)
    if not is_trained(folder) and folder not in _RUNNING:
        log.info("training the NLU model into %s (first start, or the data changed)", folder)
        options = ["--config", config] if config else []
        command = [sys.executable, "-m", "nlu", *options, "train", "--out", str(folder)]
        for extra in data:
            command += ["--data", extra]
        _RUNNING[folder] = subprocess.Popen(command, cwd=ROOT)
    return folder


def ensure(config: str | None, data: Sequence[str], cache_dir: Path) -> Path:
    """The folder of a complete model: waits for the child :func:`prepare` started (starting one if
    none runs); a failed training raises ``RuntimeError``."""
    folder = prepare(config, data, cache_dir)
    child = _RUNNING.pop(folder, None)
    if child is not None and child.wait() != 0:
        raise RuntimeError(f"training the NLU model failed (exit status {child.returncode}); see the lines above")
    if not is_trained(folder):
        raise RuntimeError(f"no trained NLU model in {folder}")
    return folder
