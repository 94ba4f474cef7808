import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from seqtext.cli import main
from seqtext.tokenizer import Tokenizer

from .conftest import RECIPES

SEQTEXT = Path(sys.executable).parent / "seqtext"


@pytest.fixture(scope="module")
def sst2_rows(data_dir):
    with gzip.open(data_dir / "sst2" / "train.jsonl.gz", "rt") as f:
        return [json.loads(next(f)) for _ in range(300)]


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_the_subcommands():
    for command in ([str(SEQTEXT)], [sys.executable, "-m", "seqtext"]):
        result = subprocess.run([*command, "--help"], capture_output=True, text=True, check=True)
        assert "data" in result.stdout and "tokenizer" in result.stdout


def test_data_summarises_the_sst2_recipe(capsys):
    code, out, _ = _run(capsys, "data", RECIPES / "sst2.yaml", "--json")
    summary = json.loads(out)
    assert code == 0
    assert summary["splits"] == {"train": 67349, "validation": 872, "test": 1821}
    assert summary["labels"] == {"negative": 29780, "positive": 37569}
    assert summary["batches"]["count"] == -(-67349 // 64)
    assert summary["batches"]["padding_efficiency"] >= 0.9 > summary["batches"]["random_batches_padding_efficiency"]


def test_data_prints_a_readable_table(capsys):
    code, out, _ = _run(capsys, "data", "trec", "--batching.max_tokens", "512")
    assert code == 0
    assert "train 4,906 · validation 546 · test 500" in out and "of ≤512 tokens" in out


def test_data_on_a_corpus_summarises_lm_streams(capsys):
    code, out, _ = _run(capsys, "data", "tinyshakespeare", "--batching.batch_size", "32", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["tokens"] == {"train": 1003854, "validation": 111540}
    assert summary["streams"]["count"] == 32 and summary["streams"]["length"] == -(-1003853 // 32)


def test_skipping_bad_rows_reports_how_many(tmp_path, capsys, sst2_rows):
    path = tmp_path / "reviews.jsonl"
    lines = [json.dumps(r) for r in sst2_rows[:100]] + ['{"text": ', '{"text": "", "label": "positive"}']
    path.write_text("\n".join(lines) + "\n")
    code, out, err = _run(capsys, "data", path, "--on-bad-rows", "skip", "--json")
    assert code == 0 and json.loads(out)["splits"] == {"train": 90, "validation": 10}
    assert err.strip() == "seqtext: skipped 2 bad rows in train"


BAD_FILES = {
    "malformed.jsonl": (b'{"text": "fine", "label": "a"}\n{"text": "oops\n', "malformed.jsonl, line 2: malformed JSON"),
    "nolabel.csv": (b"text,score\ngood,1\n", "nolabel.csv: no column 'label' (columns: text, score)"),
    "empty_text.jsonl": (
        b'{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n{"text": "", "label": "x"}\n',
        "empty_text.jsonl, line 3: empty text",
    ),
    "latin1.tsv": (b"text\tlabel\ncaf\xe9\tx\n", "latin1.tsv, line 2: invalid UTF-8"),
    "empty.jsonl": (b"", "empty.jsonl: no rows"),
}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["data", "{tmp}/missing.jsonl"], "missing.jsonl: no such file"),
        (["data", "sst3"], "unknown dataset 'sst3': not a file or folder, nor one of sst2, imdb, trec, tinyshakespeare"),
        *[(["data", f"{{tmp}}/{name}"], message) for name, (_, message) in BAD_FILES.items()],
        (["data", "sst2", "--data.colour", "red"], "unknown key 'data.colour'"),
        (["data", "sst2", "--seed", "x"], "argument --seed: invalid int value: 'x'"),
        (["data", "sst2", "--on-bad-rows", "ignore"], "argument --on-bad-rows: invalid choice: 'ignore'"),
        (["data", "sst2", "--batching.bptt", "-1"], "batching.bptt must be at least 1, not -1"),
        (["data", "{tmp}/missing.yaml"], "missing.yaml: no such recipe file"),
        (["data", "sst2", "--data-dir", "{tmp}"], "/sst2: no such folder"),
        (["tokenizer", "sst2"], "give --out FILE, or a recipe with tokenizer.path"),
        (["train", "sst2"], "invalid choice: 'train'"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(tmp_path, capsys, argv, message):
    for name, (content, _) in BAD_FILES.items():
        (tmp_path / name).write_bytes(content)
    code, out, err = _run(capsys, *(a.replace("{tmp}", str(tmp_path)) for a in argv))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("seqtext: error: ") and message in err


def test_bad_input_through_the_installed_command_has_no_traceback(tmp_path):
    path = tmp_path / "malformed.jsonl"
    path.write_bytes(BAD_FILES["malformed.jsonl"][0])
    result = subprocess.run(
        [str(SEQTEXT), "tokenizer", str(path), "--out", str(tmp_path / "tok.json")], capture_output=True, text=True
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == f"seqtext: error: {path}, line 2: malformed JSON at column 10 (unterminated string starting)\n"
    assert not (tmp_path / "tok.json").exists()


def test_tokenizer_command_trains_and_saves(tmp_path, capsys, sst2_rows):
    path = tmp_path / "reviews.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in sst2_rows))
    out_path = tmp_path / "vocab" / "tok.json"
    code, out, _ = _run(capsys, "tokenizer", path, "--out", out_path, "--tokenizer.kind", "bpe", "--tokenizer.vocab_size", "400")
    assert code == 0 and out.startswith(f"{out_path}: bpe tokenizer, 400 tokens")
    assert Tokenizer.load(out_path).vocab_size == 400
