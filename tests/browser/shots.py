"""Where a browser test keeps a screenshot meant for the README: ``docs/`` when ``GW_DOCS_SCREENSHOTS=1`` (refresh
them on purpose), else the test artifacts — a test run never rewrites tracked files."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def screenshots_dir() -> Path:
    folder = ROOT / ("docs" if os.environ.get("GW_DOCS_SCREENSHOTS") == "1" else "test-artifacts")
    folder.mkdir(exist_ok=True)
    return folder
