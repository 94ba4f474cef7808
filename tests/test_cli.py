import gzip
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from seqtext.cli import main
from seqtext.tokenizer import Tokenizer

from .conftest import RECIPES, TINY_MODEL, read_jsonl

SEQTEXT = Path(sys.executable).parent / "seqtext"


@pytest.fixture(scope="module")
def sst2_rows(data_dir):
    with gzip.open(data_dir / "sst2" / "train.jsonl.gz", "rt") as f:
        return [json.loads(next(f)) for _ in range(300)]


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_help_lists_the_subcommands():
    for command in ([str(SEQTEXT)], [sys.executable, "-m", "seqtext"]):
        result = subprocess.run([*command, "--help"], capture_output=True, text=True, check=True)
        assert "data" in result.stdout and "tokenizer" in result.stdout


@pytest.mark.slow
def test_data_summarises_the_sst2_recipe(capsys):
    code, out, _ = _run(capsys, "data", RECIPES / "sst2.yaml", "--json")
    summary = json.loads(out)
    assert code == 0
    assert summary["splits"] == {"train": 67349, "validation": 872, "test": 1821}
    assert summary["labels"] == {"negative": 29780, "positive": 37569}
    assert summary["batches"]["count"] == -(-67349 // 64)
    assert summary["batches"]["padding_efficiency"] >= 0.9 > summary["batches"]["random_batches_padding_efficiency"]


@pytest.mark.slow
def test_data_prints_a_readable_table(capsys):
    code, out, _ = _run(capsys, "data", "trec", "--batching.max_tokens", "512")
    assert code == 0
    assert "train 4,906 · validation 546 · test 500" in out and "of ≤512 tokens" in out


@pytest.mark.slow
def test_data_on_a_corpus_summarises_lm_streams(capsys):
    code, out, _ = _run(capsys, "data", "tinyshakespeare", "--batching.batch_size", "32", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["tokens"] == {"train": 1003854, "validation": 111540}
    pairs = 1003854 - 127 - 1  # training reads bptt - 1 = 127 characters fewer, from an offset each epoch
    assert summary["streams"]["count"] == 32 and summary["streams"]["length"] == -(-pairs // 32)


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
        (["data", "sst2", "--data.colour", "red"], "--data.colour: unknown key"),
        (["data", "sst2", "--seed", "x"], "argument --seed: invalid int value: 'x'"),
        (["data", "sst2", "--on-bad-rows", "ignore"], "argument --on-bad-rows: invalid choice: 'ignore'"),
        (["data", "sst2", "--batching.bptt", "-1"], "batching.bptt must be at least 1, not -1"),
        (["data", "{tmp}/missing.yaml"], "missing.yaml: no such recipe file"),
        (["data", "sst2", "--data-dir", "{tmp}"], "/sst2: no such folder"),
        (["tokenizer", "sst2"], "give --out FILE, or a recipe with tokenizer.path"),
        (["train", "{tmp}/missing.yaml"], "missing.yaml: no such recipe file"),
        (
            ["train", "recipes/shakespeare.yaml", "--batching.batch_size", "null", "--batching.max_tokens", "100"],
            "a language_model recipe needs batching.batch_size",
        ),
        (["train"], "give a RECIPE to train, --data FILE for the default classifier, or --resume DIR"),
        (["evaluate", "{tmp}/no-run"], "no-run: no such checkpoint"),
        (["predict", "{tmp}/no-run", "good"], "no-run: no such checkpoint"),
        (["fit", "sst2"], "invalid choice: 'fit'"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(tmp_path, capsys, argv, message):
    for name, (content, _) in BAD_FILES.items():
        (tmp_path / name).write_bytes(content)
    code, out, err = _run(capsys, *(a.replace("{tmp}", str(tmp_path)) for a in argv))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("seqtext: error: ") and message in err


@pytest.mark.slow
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


def test_train_evaluate_predict_through_the_command_line(tmp_path, capsys, sst2_slice, data_dir):
    run = tmp_path / "run"
    code, out, _ = _run(
        capsys,
        "train",
        RECIPES / "sst2.yaml",
        "--data",
        sst2_slice,
        "--out",
        run,
        "--max-steps",
        "6",
        "--train.eval_every",
        "3",
        *TINY_MODEL,
    )
    assert code == 0 and out.startswith(f"{run}/best: best validation accuracy ")
    code, out, _ = _run(capsys, "train", "--resume", run, "--max-steps", "9", "--json")
    assert code == 0 and json.loads(out)["steps"] == 9
    assert [e["step"] for e in read_jsonl(run / "metrics.jsonl") if e["split"] == "validation"] == [3, 6, 9]

    code, out, _ = _run(
        capsys, "evaluate", run, "--data", "sst2", "--split", "test", "--json", "--plot", tmp_path / "confusion.png"
    )
    report = json.loads(out)
    assert code == 0 and report["n"] == 1821 and report["data"] == f"sst2 ({data_dir}/sst2), test split"
    assert set(report) >= {"accuracy", "macro_f1", "loss", "n", "per_class", "confusion"}
    assert sum(map(sum, report["confusion"])) == 1821 and (tmp_path / "confusion.png").stat().st_size > 5000
    code, out, _ = _run(capsys, "evaluate", run / "last", "--split", "validation")
    assert code == 0 and "200 examples" in out and "true \\ predicted" in out

    code, out, _ = _run(capsys, "predict", run, "--json", "--explain", "a gorgeous film", "a dull , lifeless mess")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [line["text"] for line in lines] == ["a gorgeous film", "a dull , lifeless mess"]
    assert all(set(line) == {"text", "label", "probs", "attention"} for line in lines)
    code, out, _ = _run(capsys, "predict", run, "--explain", "--html", tmp_path / "page.html", "a gorgeous film")
    assert code == 0 and "gorgeous" in (tmp_path / "page.html").read_text()
    # not a terminal: each word followed by its weight, the weights those of --json
    label, probability, explained = out.rstrip("\n").split("\t")
    weights = [round(part["weight"], 2) for part in lines[0]["attention"]]
    assert explained == "a({:.2f}) gorgeous({:.2f}) film({:.2f})".format(*weights)
    assert label == lines[0]["label"] and float(probability) == round(lines[0]["probs"][label], 3)


def test_predict_reads_stdin_one_text_a_line(trained_run, capsys, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("great\n\nawful\n \t\n"))
    code, out, _ = _run(capsys, "predict", trained_run)
    rows = [line.split("\t") for line in out.splitlines()]
    assert code == 0 and [row[2] for row in rows] == ["great", "", "awful", " "]  # one output line an input line
    assert rows[1][:2] == rows[3][:2] == ["-", "-"] and rows[0][0] in ("negative", "positive")


def test_predict_keeps_a_files_blank_lines_in_step(trained_run, capsys, tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("a fine film\n\nawful\n")
    code, out, _ = _run(capsys, "predict", trained_run, "--file", path, "--json")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [line["text"] for line in lines] == ["a fine film", "", "awful"]
    assert "error" in lines[1] and "label" in lines[0] and "label" in lines[2]


def _copy_with_kind(run, tmp_path, kind):
    import shutil

    target = tmp_path / "other"
    shutil.copytree(run / "best", target)
    config = json.loads((target / "config.json").read_text())
    (target / "config.json").write_text(json.dumps({**config, "kind": kind}))
    return target


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["predict", "{run}", "fine", "   "], "text 2 ('   ') has no tokens for this model's tokenizer"),
        (
            ["evaluate", "{run}", "--data", "{tmp}/unknown.jsonl"],
            "unknown.jsonl, line 2: unknown label 'neutral' (the model knows: negative, positive)",
        ),
        (["predict", "{other}", "good"], "other: a language_model checkpoint, not a classifier"),
        (["generate", "{run}", "--prompt", "good"], "best: a classifier checkpoint, not a language_model"),
        (["evaluate", "{run}", "--plot", "{tmp}/x.png", "--split", "nope"], "no split 'nope'"),
        (["predict", "{run}", "--bogus"], "unrecognized arguments: --bogus"),
        (["predict", "{run}", "--file", "{tmp}/missing.txt"], "missing.txt: no such file"),
    ],
)
def test_checkpoint_commands_fail_in_one_line(trained_run, tmp_path, capsys, argv, message):
    (tmp_path / "unknown.jsonl").write_text('{"text": "good", "label": "positive"}\n{"text": "so-so", "label": "neutral"}\n')
    other = _copy_with_kind(trained_run, tmp_path, "language_model")
    argv = [a.replace("{run}", str(trained_run)).replace("{tmp}", str(tmp_path)).replace("{other}", str(other)) for a in argv]
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and message in err, err


def test_train_evaluate_generate_a_language_model_through_the_cli(tmp_path, capsys, data_dir):
    from .conftest import TINY_LM

    corpus = tmp_path / "slice.txt"
    corpus.write_text((data_dir / "tinyshakespeare" / "input.txt").read_text()[:20_000])
    run = tmp_path / "lm"
    argv = ("train", RECIPES / "shakespeare.yaml", "--data", corpus, "--keep-tokenizer", "--out", run, "--max-steps", "4")
    argv = (*argv, *TINY_LM)
    code, out, _ = _run(capsys, *argv)
    assert code == 0 and "best validation loss" in out and "bits/char" in out

    code, out, _ = _run(capsys, "evaluate", run, "--json")
    result = json.loads(out)
    assert code == 0 and result["n_chars"] == 1999 and "last 10%" in result["data"]
    assert result["bpc"] == pytest.approx(result["loss"] / math.log(2))
    assert result["perplexity"] == pytest.approx(math.exp(result["loss"]))

    other = tmp_path / "other.txt"
    other.write_text("ROMEO: Zürich!\n")  # 'ü' is not in Tiny Shakespeare
    code, out, err = _run(capsys, "evaluate", run, "--data", other, "--json")
    assert code == 0 and json.loads(out)["n_chars"] == 13 and json.loads(out)["n_unknown"] == 1 and "1 characters" in err

    args = ("generate", run, "--prompt", "ROMEO:", "--length", "25", "--num-samples", "2", "--seed", "3", "--json")
    code, out, _ = _run(capsys, *args)
    samples = json.loads(out)["samples"]
    assert code == 0 and len(samples) == 2 and all(len(s) == 25 for s in samples)
    assert _run(capsys, *args)[1] == out  # the same seed, the same text

    code, out, _ = _run(capsys, "generate", run, "--prompt", "ROMEO:", "--length", "10", "--seed", "3")
    assert code == 0 and out.startswith("ROMEO:") and len(out) == len("ROMEO:") + 10 + 1  # streamed, then a line break

    for argv, message in (
        (["--temperature", "-1"], "--temperature must be at least 0, not -1.0"),
        (["--top-p", "0"], "--top-p must be in (0, 1], not 0.0"),
        (["--top-k", "0"], "--top-k must be at least 1, not 0"),
        (["--length", "-2"], "--length must be at least 0, not -2"),
        (["--prompt", "Zürich"], "outside the model's vocabulary: 'ü'"),
    ):
        code, out, err = _run(capsys, "generate", run, *argv)
        assert code == 2 and out == "" and err.count("\n") == 1 and message in err
    code, _, err = _run(capsys, "evaluate", run, "--split", "test")
    assert code == 2 and "there is no 'test' part" in err
    code, _, err = _run(capsys, "predict", run, "good")
    assert code == 2 and "a language_model checkpoint, not a classifier" in err


def test_predict_names_an_argument_that_is_not_utf8(trained_run, capsys):
    argument = os.fsdecode(b"good \xff movie")  # as Python gives a command line's undecodable bytes: 'good \udcff movie'
    code, out, err = _run(capsys, "predict", trained_run, "fine", argument)
    assert code == 2 and out == "" and err == "seqtext: error: text argument 2: invalid UTF-8 (byte 0xff at column 6)\n"


def _stdin(kind: str, data: bytes):
    if kind == "text":  # a text stream without bytes beneath, as a notebook or a test may give
        return io.StringIO(data.decode("utf-8", "surrogateescape"))
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors=kind)


@pytest.mark.parametrize("kind", ["strict", "surrogateescape", "text"])  # a UTF-8 locale's stdin, the C locale's, a StringIO
def test_predict_names_the_stdin_or_file_line_that_is_not_utf8(trained_run, tmp_path, capsys, monkeypatch, kind):
    data = b"great\n\ngood \xff movie\nawful\n"
    monkeypatch.setattr(sys, "stdin", _stdin(kind, data))
    code, out, err = _run(capsys, "predict", trained_run)
    assert code == 2 and out == "" and err == "seqtext: error: stdin, line 3: invalid UTF-8 (byte 0xff at column 6)\n"
    (tmp_path / "texts.txt").write_bytes(data)
    code, out, err = _run(capsys, "predict", trained_run, "--file", tmp_path / "texts.txt")  # the same words for a file
    assert (code, out, err) == (2, "", f"seqtext: error: {tmp_path}/texts.txt, line 3: invalid UTF-8 (byte 0xff at column 6)\n")
    monkeypatch.setattr(sys, "stdin", _stdin(kind, "great\n\ncafé\n".encode()))
    code, out, _ = _run(capsys, "predict", trained_run)
    assert code == 0 and [line.split("\t")[2] for line in out.splitlines()] == ["great", "", "café"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("\u200b\u200b", "text 2 ('\\u200b\\u200b') has no tokens for this model's tokenizer"),
        ("\ufeff", "text 2 ('\\ufeff') has no tokens for this model's tokenizer"),
        ("\ud800", "text 2 ('\\ud800') holds '\\ud800' at character 0, which is not a Unicode character"),
    ],
)
def test_predict_names_a_text_with_nothing_to_read(trained_run, capsys, text, message):
    code, out, err = _run(capsys, "predict", trained_run, "fine", text)
    assert code == 2 and out == "" and err == f"seqtext: error: {message}\n"


def test_generate_takes_a_tiny_temperature_as_greedy_and_names_what_float32_cannot_hold(lm_run, capsys):
    from seqtext.language_model.generate import GREEDY_BELOW

    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    assert f"0 (or under {GREEDY_BELOW:g}) is greedy" in " ".join(capsys.readouterr().out.split())
    prompt = ("--prompt", "ROMEO:", "--length", "30")
    greedy = _run(capsys, "generate", lm_run, *prompt, "--greedy")
    assert greedy[0] == 0 and _run(capsys, "generate", lm_run, *prompt, "--temperature", "1e-50") == greedy
    at_most = "--temperature must be at most 3.4028234663852886e+38 (float32's largest number)"
    for argv, message in (
        (["--temperature", "1e39"], f"{at_most}, not 1e+39"),
        (["--temperature", "1e308"], f"{at_most}, not 1e+308"),
        (["--top-p", "1e-320"], "--top-p must be at least 1.1754943508222875e-38 (float32's smallest normal number), not 1e-320"),
        (["--prompt", os.fsdecode(b"RO\xffMEO")], "--prompt: invalid UTF-8 (byte 0xff at column 3)"),
    ):
        code, out, err = _run(capsys, "generate", lm_run, *argv)
        assert code == 2 and out == "" and err == f"seqtext: error: {message}\n"


@pytest.mark.slow
def test_bytes_that_are_not_utf8_through_the_installed_command_are_one_line(trained_run, lm_run):
    for argv, stdin, message in (
        ([b"predict", trained_run, b"good \xff movie"], b"", "text argument 1: invalid UTF-8 (byte 0xff at column 6)"),
        ([b"predict", trained_run], b"great\ngood \xff movie\n", "stdin, line 2: invalid UTF-8 (byte 0xff at column 6)"),
        ([b"generate", lm_run, b"--temperature", b"1e-50", b"--length", b"5"], b"", None),
    ):
        result = subprocess.run([SEQTEXT, *argv], input=stdin, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        if message is None:
            assert result.returncode == 0 and len(result.stdout.decode()) == 6, result.stderr.decode()[-2000:]
        else:
            assert result.returncode == 2 and result.stderr.decode() == f"seqtext: error: {message}\n"
