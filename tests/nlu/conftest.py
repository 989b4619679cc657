"""Fixtures for the NLU tests: one trained engine per session, cached under var/test-nlu."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu import NLU, NLUConfig
from nlu.data import data_files
from nlu.engine import artifact_key, train_to_dir
from nlu.entities import EntityExtractor

ROOT = Path(__file__).resolve().parents[2]
NLU_CACHE = ROOT / "var" / "test-nlu"


@pytest.fixture(scope="session")
def nlu_engine() -> NLU:
    """The bundled model (trained on first use, then loaded from the cache)."""
    return NLU.load(cache_dir=NLU_CACHE)


@pytest.fixture(scope="session")
def nlu_artifact(nlu_engine: NLU) -> Path:
    """The folder holding the trained artifact of the bundled data and default config."""
    config = NLUConfig.load()
    files = data_files(None)
    folder = NLU_CACHE / artifact_key(files, config)
    if not (folder / "complaint_type.json").exists():  # the data changed under us since nlu_engine trained
        train_to_dir(config, files, folder, show_progress=False)
    return folder


@pytest.fixture(scope="session")
def extractor() -> EntityExtractor:
    return EntityExtractor(NLUConfig.load().gazetteer)
