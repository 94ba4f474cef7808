"""Every command against bad input: exit status 2, one line on stderr, no traceback, and nothing written.

Each row of the table names a command line (with placeholders for files the test makes) and a part of
the message it must print. Before each run the test records every file under its folder and under the
checkpoints it reads; afterwards they must be byte-for-byte the same and nothing may have appeared.
"""

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from seqtext.cli import main

from .conftest import RECIPES, TINY_LM

GOOD = '{"text": "a fine film", "label": "positive"}\n{"text": "a dull film", "label": "negative"}\n'
MANY = GOOD * 10  # enough of each label to hold out a validation split
FILES = {  # name -> bytes; {tmp}/NAME in a command line
    "good.jsonl": MANY.encode(),
    "splits/dev.jsonl": GOOD.encode(),
    "labels/train.jsonl": MANY.encode(),
    "labels/validation.jsonl": GOOD.encode() + b'{"text": "so-so", "label": "neutral"}\n',
    "empty.jsonl": b"",
    "blank.jsonl": b"\n\n",
    "notes.xyz": b"text,label\n",
    "malformed.jsonl": GOOD.encode() + b'{"text": "cut off\n',
    "no_text.jsonl": b'{"sentence": "a fine film", "label": "positive"}\n',
    "no_label.csv": b"text\na fine film\n",
    "fields.csv": b"text,label\na fine film,positive\ntoo,many,fields\n",
    "latin1.jsonl": GOOD.encode() + '{"text": "caf\u00e9", "label": "positive"}\n'.encode("latin-1"),
    "empty_text.jsonl": GOOD.encode() + b'{"text": "   ", "label": "positive"}\n',
    "unknown_label.jsonl": GOOD.encode() + b'{"text": "so-so", "label": "neutral"}\n',
    "bad_recipe.yaml": b"kind: classifier\ndata:\n  dataset: [sst2\n",
    "list_recipe.yaml": b"- a\n- b\n",
    "texts.txt": b"a fine film\n",
    "no_texts.txt": b"",  # an empty file (blank lines are texts: each gets its own output line)
    "latin1.txt": "caf\u00e9\n".encode("latin-1"),
    "series.csv": b"t,value\n1,0.5\n2,abc\n",
}
DATA_ERRORS = [  # (file, message) for every command that reads labelled data
    ("{tmp}/missing.jsonl", "missing.jsonl: no such file"),
    ("{tmp}/empty.jsonl", "empty.jsonl: no rows"),
    ("{tmp}/blank.jsonl", "blank.jsonl: no rows"),
    ("{tmp}/notes.xyz", "notes.xyz: unknown file format"),
    ("{tmp}/malformed.jsonl", "malformed.jsonl, line 3: malformed JSON"),
    ("{tmp}/no_text.jsonl", "no_text.jsonl: no column 'text' (columns: sentence, label)"),
    ("{tmp}/fields.csv", "fields.csv, line 3: expected 2 fields, found 3"),
    ("{tmp}/latin1.jsonl", "latin1.jsonl, line 3: invalid UTF-8 (byte 0xe9"),
    ("{tmp}/empty_text.jsonl", "empty_text.jsonl, line 3: empty text"),
    ("{tmp}/splits", "splits: no"),  # no train split to build labels from, or no test split to evaluate
]
TRAIN = ["train", "{recipes}/sst2.yaml", "--out", "{tmp}/run", "--max-steps", "2"]
CASES = [
    *[(["data", data], message) for data, message in DATA_ERRORS],
    *[(["tokenizer", data, "--out", "{tmp}/tok.json"], message) for data, message in DATA_ERRORS],
    *[([*TRAIN, "--data", data], message) for data, message in DATA_ERRORS],
    *[(["evaluate", "{classifier}", "--data", data], message) for data, message in DATA_ERRORS],
    (["evaluate", "{classifier}", "--data", "{tmp}/no_label.csv"], "no_label.csv: no column 'label'"),
    (["evaluate", "{classifier}", "--data", "{tmp}/unknown_label.jsonl"], "line 3: unknown label 'neutral'"),
    (["data", "{recipes}/sine.yaml", "--data.dataset", "{tmp}/series.csv"], "series.csv, line 3: 'abc' in column 'value'"),
    (["data", "{recipes}/sst2.yaml", "--batching.batch_size", "0"], "batching.batch_size must be at least 1, not 0"),
    (["data", "{recipes}/sst2.yaml", "--seed", "x"], "argument --seed: invalid int value: 'x'"),
    (["data", "{recipes}/sst2.yaml", "--on-bad-rows", "ignore"], "argument --on-bad-rows: invalid choice: 'ignore'"),
    (["tokenizer", "{recipes}/sunspots.yaml", "--out", "{tmp}/tok.json"], "a forecaster recipe reads no text"),
    (["tokenizer", "{tmp}/good.jsonl"], "give --out FILE, or a recipe with tokenizer.path"),
    (["tokenizer", "{tmp}/good.jsonl", "--out", "{tmp}/good.jsonl/tok.json"], "tok.json: cannot write"),
    (["train", "{tmp}/missing.yaml"], "missing.yaml: no such recipe file"),
    (["train", "{tmp}/bad_recipe.yaml"], "bad_recipe.yaml, line 4: not valid YAML"),
    (["train", "{tmp}/list_recipe.yaml"], "list_recipe.yaml: a recipe must be a mapping of sections"),
    (["train", "{tmp}/good.jsonl"], "good.jsonl: a recipe is a .yaml file; to train on a data file, give --data"),
    (["train"], "give a RECIPE to train, --data FILE for the default classifier, or --resume DIR"),
    ([*TRAIN, "--train.colour", "red"], "unknown key 'train.colour'"),
    ([*TRAIN, "--data", "{tmp}/labels"], "validation.jsonl, line 3: unknown label 'neutral'"),
    ([*TRAIN, "--data", "{tmp}/good.jsonl", "--data.validation_fraction", "0.05"], "cannot hold out 0.05 of 20 training"),
    (["train", "{recipes}/sst2.yaml", "--out", "{tmp}/run", "--max-steps", "0"], "train.max_steps must be at least 1, not 0"),
    (["train", "{recipes}/sst2.yaml", "--out", "{tmp}/run", "--max-steps", "-3"], "train.max_steps must be at least 1, not -3"),
    (["train", "{recipes}/sst2.yaml", "--out", "{tmp}/run", "--max-steps", "many"], "argument --max-steps: invalid int value"),
    ([*TRAIN, "--train.lr", "-1"], "train.lr must be at least 0, not -1.0"),
    ([*TRAIN, "--train.lr", "fast"], "train.lr must be float, not 'fast'"),
    ([*TRAIN, "--train.clip_norm", "nan"], "train.clip_norm must be a finite number, not nan"),
    ([*TRAIN, "--train.lr", "inf"], "train.lr must be a finite number, not inf"),
    ([*TRAIN, "--model.dropout", "1.5"], "model.dropout must be in [0, 1), not 1.5"),
    ([*TRAIN, "--data.max_length", "0"], "data.max_length must be at least 1, not 0"),
    (["train", "{recipes}/sst2.yaml", "--out", "{classifier_run}"], "already holds a run: continue it with --resume"),
    (["train", "--resume", "{tmp}"], "work/last: no such checkpoint"),
    (["train", "--resume", "{tmp}/nowhere"], "nowhere/last: no such checkpoint"),
    (["evaluate", "{tmp}/nowhere"], "nowhere: no such checkpoint"),
    (["evaluate", "{tmp}"], "not a checkpoint (no config.json)"),
    (["evaluate", "{classifier}", "--split", "dev"], "no split 'dev'"),
    (["evaluate", "{classifier}", "--horizon", "2"], "--horizon and --strategy are for forecasters"),
    (["evaluate", "{classifier}", "--split", "validation", "--plot", "{tmp}/good.jsonl/c.png"], "c.png: cannot write"),
    (["evaluate", "{language_model}", "--data", "{tmp}/latin1.txt"], "latin1.txt, line 1: invalid UTF-8"),
    (["evaluate", "{language_model}", "--data", "{tmp}/missing.txt"], "missing.txt: no such file"),
    (["evaluate", "{language_model}", "--plot", "{tmp}/lm.png"], "a language model has none"),
    (["predict", "{tmp}/nowhere", "good"], "nowhere: no such checkpoint"),
    (["predict", "{language_model}", "good"], "a language_model checkpoint, not a classifier"),
    (["predict", "{classifier}", "--file", "{tmp}/missing.txt"], "missing.txt: no such file"),
    (["predict", "{classifier}", "--file", "{tmp}/no_texts.txt"], "no texts to label"),
    (["predict", "{classifier}", "--file", "{tmp}/latin1.txt"], "latin1.txt, line 1: invalid UTF-8"),
    (["predict", "{classifier}", ""], "text 1 ('') has no tokens for this model's tokenizer"),
    (["predict", "{classifier}", "good", "--html", "{tmp}/good.jsonl/page.html"], "page.html: cannot write"),
    (["generate", "{classifier}"], "a classifier checkpoint, not a language_model"),
    (["generate", "{language_model}", "--length", "-1"], "--length must be at least 0, not -1"),
    (["generate", "{language_model}", "--length", "ten"], "argument --length: invalid int value: 'ten'"),
    (["generate", "{language_model}", "--temperature", "-0.5"], "--temperature must be at least 0, not -0.5"),
    (["generate", "{language_model}", "--temperature", "inf"], "--temperature must be a finite number"),
    (["generate", "{language_model}", "--top-k", "0"], "--top-k must be at least 1, not 0"),
    (["generate", "{language_model}", "--top-p", "1.5"], "--top-p must be in (0, 1], not 1.5"),
    (["generate", "{language_model}", "--num-samples", "0"], "--num-samples must be at least 1, not 0"),
    (["generate", "{language_model}", "--prompt", "Z\u00fcrich"], "outside the model's vocabulary: '\u00fc'"),
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, trained_run, shakespeare_slice):
    lm = tmp_path_factory.mktemp("runs") / "lm"
    argv = ["train", str(RECIPES / "shakespeare.yaml"), "--data", str(shakespeare_slice), "--keep-tokenizer"]
    argv += ["--out", str(lm), "--max-steps", "2"]
    assert main([*argv, *TINY_LM]) == 0
    return {"classifier": trained_run, "language_model": lm}


def _assert_one_line_error(code: int, out: str, err: str, message: str) -> None:
    assert code == 2, (code, err)
    assert out == "" and err.startswith("seqtext: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err, err


def _snapshot(*folders: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("argv", "message"), CASES, ids=[f"{i}-{c[0][0]}" for i, c in enumerate(CASES)])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(runs, tmp_path, capsys, monkeypatch, argv, message):
    work = tmp_path / "work"
    work.mkdir()
    for name, content in FILES.items():
        (work / name).parent.mkdir(exist_ok=True)
        (work / name).write_bytes(content)
    monkeypatch.chdir(work)  # a default output folder (runs/...) would appear here
    places = {
        "{tmp}": str(work),
        "{recipes}": str(RECIPES),
        "{classifier_run}": str(runs["classifier"]),
        "{classifier}": str(runs["classifier"]),
        "{language_model}": str(runs["language_model"]),
    }
    for key, value in places.items():
        argv = [arg.replace(key, value) for arg in argv]
    message = message.replace("{tmp}", str(work))
    before = _snapshot(work, *runs.values())
    capsys.readouterr()
    code = main(argv)
    _assert_one_line_error(code, *capsys.readouterr(), message)
    assert _snapshot(work, *runs.values()) == before


@pytest.mark.slow
def test_a_one_megabyte_text_is_truncated_not_a_crash(runs, tmp_path, capsys):
    """A runaway row costs no more than data.max_length tokens, in training, evaluation and prediction."""
    huge = " ".join(["wonderful"] * 200_000)  # 2 MB
    rows = [{"text": huge, "label": "positive"}] + [json.loads(line) for line in GOOD.splitlines()] * 4
    data = tmp_path / "huge"
    data.mkdir()
    (data / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (data / "validation.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (tmp_path / "huge.txt").write_text(huge + "\n")
    run = tmp_path / "run"
    model = ["--model.embedding_size", "8", "--model.hidden_size", "8", "--model.attention_size", "8"]
    code = main(["train", str(RECIPES / "sst2.yaml"), "--data", str(data), "--out", str(run), "--max-steps", "2", *model])
    assert code == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(data / "train.jsonl"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 9
    assert main(["predict", str(runs["classifier"]), "--file", str(tmp_path / "huge.txt"), "--json", "--explain"]) == 0
    attention = json.loads(capsys.readouterr().out)["attention"]
    assert len(attention) == 4096  # data.max_length's default
    shutil.rmtree(run)


@contextlib.contextmanager
def _unprivileged():
    """Act as the user ``nobody`` where the suite runs as root, who may read any file; else as we are.
    What the commands import is imported first: nobody may not be able to read the Python installation."""
    import gzip  # noqa: F401

    import seqtext.api  # noqa: F401
    import seqtext.classifier.evaluation  # noqa: F401
    import seqtext.classifier.predict  # noqa: F401
    import seqtext.pipeline  # noqa: F401
    import seqtext.report  # noqa: F401

    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["data", "{open}/rows.jsonl"], "rows.jsonl: permission denied"),
        (["tokenizer", "{open}/rows.jsonl", "--out", "{open}/tok.json"], "rows.jsonl: permission denied"),
        (["evaluate", "{open}/classifier", "--data", "{open}/rows.jsonl"], "rows.jsonl: permission denied"),
        (["predict", "{open}/classifier", "--file", "{open}/texts.txt"], "texts.txt: permission denied"),
        (["evaluate", "{open}/lm", "--data", "{open}/texts.txt"], "texts.txt: permission denied"),
    ],
    ids=["data", "tokenizer", "evaluate", "predict", "evaluate-lm"],
)
def test_an_unreadable_file_is_one_line_exit_2_and_writes_nothing(runs, capsys, argv, message):
    folder = Path(tempfile.mkdtemp(prefix="seqtext-unreadable-"))  # in /tmp, so that nobody can reach it
    try:
        shutil.copytree(runs["classifier"], folder / "classifier")
        shutil.copytree(runs["language_model"], folder / "lm")
        (folder / "rows.jsonl").write_bytes(MANY.encode())
        (folder / "texts.txt").write_bytes(b"a fine film\n")
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        (folder / "rows.jsonl").chmod(0)
        (folder / "texts.txt").chmod(0)
        before = _snapshot(folder)
        capsys.readouterr()
        with _unprivileged():
            code = main([arg.replace("{open}", str(folder)) for arg in argv])
        _assert_one_line_error(code, *capsys.readouterr(), message)
        assert _snapshot(folder) == before
    finally:
        shutil.rmtree(folder)
