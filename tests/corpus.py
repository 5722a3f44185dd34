"""Where the shared development corpus is: read in place, never copied into the repo."""

from __future__ import annotations

import os
from pathlib import Path


def find_corpus() -> Path:
    """$NEMOROUTER_CORPUS, else `shared/corpus` beside any parent of this checkout (the
    workspace layout), else the workspace's fixed location. May not exist: tests skip."""
    env = os.environ.get("NEMOROUTER_CORPUS")
    if env:
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "corpus"
        if candidate.is_dir():
            return candidate
    return Path("/work/shared/corpus")


CORPUS = find_corpus()
