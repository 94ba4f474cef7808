"""Shared fixtures. Tests read the real datasets in ../shared/data (or $SEQTEXT_DATA) and never the network."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("SEQTEXT_DATA", str(ROOT.parent / "shared" / "data"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
DATA = Path(os.environ["SEQTEXT_DATA"])
RECIPES = ROOT / "recipes"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    assert (DATA / "sst2" / "train.jsonl.gz").is_file(), f"the shared datasets are missing from {DATA}"
    return DATA
