"""Shared fixtures. Tests read the real datasets in ../shared/data (or $SEQTEXT_DATA) and never the network."""

import gzip
import json
import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("SEQTEXT_DATA", str(ROOT.parent / "shared" / "data"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["SEQTEXT_VECTORS"] = str(ROOT.parent / "shared" / "vectors")  # catalogue names (glove.6B.50d) resolve there
os.environ["SEQTEXT_CACHE"] = tempfile.mkdtemp(prefix="seqtext-cache-")  # parsed vectors: never the user's home
DATA = Path(os.environ["SEQTEXT_DATA"])
RECIPES = ROOT / "recipes"
# A model small enough to train for a few steps in a second, for tests of the machinery (not of quality).
TINY_MODEL = ["--model.embedding_size", "16", "--model.hidden_size", "16", "--model.attention_size", "16"]
# A character model small enough to train for a few steps in a second.
TINY_LM = [
    "--model.embedding_size", "8", "--model.hidden_size", "16", "--model.num_layers", "2",
    "--batching.batch_size", "4", "--batching.bptt", "16",
]  # fmt: skip


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA / "sst2" / "train.jsonl.gz").is_file():
        pytest.fail(
            f"the shared datasets are not in {DATA.resolve()} (no sst2/train.jsonl.gz there): "
            "set SEQTEXT_DATA=/path/to/shared/data to the folder that holds them",
            pytrace=False,
        )
    return DATA


@pytest.fixture(scope="session")
def sst2_slice(tmp_path_factory, data_dir) -> Path:
    """A folder with 600 SST-2 training rows as train.jsonl and 200 validation rows as validation.jsonl."""
    folder = tmp_path_factory.mktemp("sst2_slice")
    with gzip.open(data_dir / "sst2" / "train.jsonl.gz", "rt") as f:
        (folder / "train.jsonl").write_text("".join(next(f) for _ in range(600)))
    with gzip.open(data_dir / "sst2" / "validation.jsonl.gz", "rt") as f:
        (folder / "validation.jsonl").write_text("".join(next(f) for _ in range(200)))
    return folder


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, sst2_slice) -> Path:
    """A tiny SST-2 classifier trained for 12 steps on the slice: a real checkpoint for tests to read."""
    from seqtext.recipe import load_recipe
    from seqtext.training import train

    run = tmp_path_factory.mktemp("runs") / "sst2"
    recipe = load_recipe(
        RECIPES / "sst2.yaml",
        ["--data.dataset", str(sst2_slice), "--train.max_steps", "12", "--train.eval_every", "6", *TINY_MODEL],
    )
    train(recipe, run, progress=False)
    return run


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def shakespeare_slice(tmp_path_factory, data_dir):
    """The first 20,000 characters of Tiny Shakespeare as a plain-text file."""
    path = tmp_path_factory.mktemp("shakespeare") / "slice.txt"
    path.write_text((data_dir / "tinyshakespeare" / "input.txt").read_text()[:20_000])
    return path


@pytest.fixture(scope="session")
def lm_run(tmp_path_factory, shakespeare_slice) -> Path:
    """A tiny character language model trained for 30 steps on the Shakespeare slice: a real checkpoint."""
    from seqtext.recipe import load_recipe
    from seqtext.training import train

    run = tmp_path_factory.mktemp("runs") / "shakespeare"
    recipe = load_recipe(
        RECIPES / "shakespeare.yaml", ["--data.dataset", str(shakespeare_slice), "--train.max_steps", "30", *TINY_LM]
    )
    train(recipe, run, progress=False)
    return run


@pytest.fixture(scope="session")
def sst2_model(tmp_path_factory, data_dir) -> Path:
    """A small SST-2 classifier trained for 300 steps on 4,000 training rows: above chance (0.68 on the 872
    validation sentences), so that int8 and fp32 accuracy can be compared on real sentences."""
    from seqtext.recipe import load_recipe
    from seqtext.training import train

    folder = tmp_path_factory.mktemp("sst2_4k")
    with gzip.open(data_dir / "sst2" / "train.jsonl.gz", "rt") as f:
        (folder / "train.jsonl").write_text("".join(next(f) for _ in range(4000)))
    with gzip.open(data_dir / "sst2" / "validation.jsonl.gz", "rt") as f:
        (folder / "validation.jsonl").write_text(f.read())
    run = tmp_path_factory.mktemp("runs") / "sst2-small"
    overrides = ["--data.dataset", str(folder), "--train.max_steps", "300", "--train.eval_every", "100", "--train.lr", "5e-3",
                 "--tokenizer.path", "null", "--model.embedding_size", "32", "--model.hidden_size", "32",
                 "--model.attention_size", "32", "--model.embedding_dropout", "0.2", "--model.dropout", "0.2"]  # fmt: skip
    train(load_recipe(RECIPES / "sst2.yaml", overrides), run, progress=False)
    return run
