"""The public Python API (seqtext.load / train / evaluate and the model objects), on tiny models trained in
seconds from real SST-2 rows and Tiny Shakespeare."""

import gzip
import json
import threading

import numpy as np
import pytest
import torch

import seqtext
from seqtext.cli import main

from .conftest import RECIPES

TINY = {"model": {"embedding_size": 16, "hidden_size": 16, "attention_size": 16}}
TINY_LM = {"model": {"embedding_size": 8, "hidden_size": 16, "num_layers": 2}, "batching": {"batch_size": 4, "bptt": 16}}


@pytest.fixture(scope="module")
def rows(data_dir):
    with gzip.open(data_dir / "sst2" / "train.jsonl.gz", "rt") as f:
        return [json.loads(next(f)) for _ in range(400)]


@pytest.fixture(scope="module")
def lists(rows):
    """SST-2 rows as plain Python lists: 300 to train on, 100 to validate."""
    train, validation = rows[:300], rows[300:]
    return {
        "train": {"text": [r["text"] for r in train], "label": [r["label"] for r in train]},
        "validation": {"text": [r["text"] for r in validation], "label": [r["label"] for r in validation]},
    }


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, lists):
    out = tmp_path_factory.mktemp("api") / "classifier"
    return seqtext.train({"kind": "classifier", **TINY}, out=out, data=lists, train__max_steps=10, train__eval_every=5)


@pytest.fixture(scope="module")
def language_model(tmp_path_factory, shakespeare_slice):
    out = tmp_path_factory.mktemp("api") / "lm"
    return seqtext.train(
        RECIPES / "shakespeare.yaml", out, data__dataset=str(shakespeare_slice), train={"max_steps": 4}, **TINY_LM
    )


def test_training_from_python_lists_returns_the_best_model_with_its_run(classifier, lists):
    assert isinstance(classifier, seqtext.Classifier) and classifier.labels == ["negative", "positive"]
    assert classifier.run_dir.name == "classifier" and (classifier.run_dir / "best" / "model.safetensors").is_file()
    assert classifier.validation["steps"] == 10 and classifier.validation["n"] == 100
    log = [json.loads(line) for line in (classifier.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log if e["split"] == "validation"] == [5, 10]
    assert classifier.recipe.model.hidden_size == 16  # the nested override reached the recipe
    with pytest.raises(seqtext.DataError, match="trained on data in memory"):
        classifier.evaluate()  # the lists were not saved; evaluating without them says so


def test_one_string_gives_one_prediction_and_a_list_gives_a_list(classifier):
    one = classifier.predict("A gorgeous, witty movie.")
    many = classifier.predict(["A gorgeous, witty movie.", "dull"])
    assert isinstance(one, seqtext.Prediction) and isinstance(many, list) and len(many) == 2
    assert one.probs == pytest.approx(many[0].probs, abs=1e-6) and one.label == many[0].label  # batch shapes round apart
    assert sum(one.probs.values()) == pytest.approx(1.0) and one.label == max(one.probs, key=one.probs.get)
    proba = classifier.predict_proba(["A gorgeous, witty movie.", "dull"])
    assert proba.shape == (2, 2) and proba[0].tolist() == pytest.approx([one.probs[label] for label in classifier.labels])


def test_attention_falls_on_the_words_as_written(classifier):
    text = "A  gorgeous, witty film <br /> that dragged"
    attention = classifier.predict(text).attention
    assert [token for token, _ in attention] == ["A", "gorgeous", ",", "witty", "film", "that", "dragged"]
    assert sum(weight for _, weight in attention) == pytest.approx(1.0)


def test_an_empty_text_in_a_list_gets_its_own_error(classifier):
    good, empty, blank = classifier.predict(["fine", "", " \t "])
    assert good.error is None and good.label in classifier.labels
    assert empty.label is None and empty.error == blank.error == "has no tokens for this model's tokenizer"
    assert np.isnan(classifier.predict_proba(["", "fine"])[0]).all()
    with pytest.raises(seqtext.DataError, match="text 2 is a int, not a string"):
        classifier.predict(["fine", 3])


def test_predicting_from_four_threads_gives_what_serial_prediction_gives(classifier, rows):
    model = seqtext.load(classifier.run_dir)
    model.checkpoint.recipe["data"]["max_length"] = 6  # truncation in play: it must not leak from one thread to another
    texts = [r["text"] for r in rows[:210]]
    chunks = [list(range(i, i + 7)) for i in range(0, len(texts), 7)]
    serial = {i: row for chunk in chunks for i, row in zip(chunk, model.predict_proba([texts[i] for i in chunk]))}
    results: dict[int, dict] = {}

    def worker(number: int) -> None:  # each thread takes the chunks in another order, so that they overlap differently
        mine = chunks[number * 7 :] + chunks[: number * 7]
        results[number] = {i: row for chunk in mine for i, row in zip(chunk, model.predict_proba([texts[i] for i in chunk]))}

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for number in range(4):
        assert all(np.array_equal(results[number][i], serial[i]) for i in serial)


class _NoSwitching:
    """A tokenizer backend whose shared settings must not be touched: the reason threads can share it."""

    def __init__(self, backend):
        self.backend = backend

    def __getattr__(self, name):
        if name in ("enable_truncation", "no_truncation", "enable_padding", "no_padding"):
            raise AssertionError(f"prediction called the shared tokenizer's {name}")
        return getattr(self.backend, name)


def test_prediction_never_switches_the_shared_tokenizer(classifier):
    model = seqtext.load(classifier.run_dir)
    model.checkpoint.recipe["data"]["max_length"] = 2
    model.checkpoint.tokenizer.backend = _NoSwitching(model.checkpoint.tokenizer.backend)
    [cut] = model.predict(["a gorgeous witty movie"])
    assert [token for token, _ in cut.attention] == ["a", "gorgeous"]


def test_the_tokenizer_gives_the_ids_the_model_reads(classifier):
    ids = classifier.tokenizer.encode("a gorgeous movie")
    assert ids == classifier.checkpoint.tokenizer.encode("a gorgeous movie") and len(ids) == 3
    assert classifier.tokenizer.decode(ids) == "a gorgeous movie"


def test_loading_takes_a_device_and_moves_with_to(classifier):
    model = seqtext.load(classifier.run_dir, device=torch.device("cpu"))
    assert model.device == torch.device("cpu") and model.to("cpu") is model
    assert model.predict("dull").probs == pytest.approx(classifier.predict("dull").probs)
    if not torch.cuda.is_available():
        with pytest.raises(seqtext.ConfigError, match="^device is cuda, but torch sees no CUDA device"):
            seqtext.load(classifier.run_dir, device="cuda")


def test_the_model_card_says_what_the_checkpoint_is(classifier):
    card = classifier.card
    assert card["kind"] == "classifier" and card["labels"] == ["negative", "positive"]
    assert card["data"] == {"source": "in-memory data", "splits": {"train": 300, "validation": 100}, "data_dir": None}
    assert card["tokenizer"]["kind"] == "word" and card["tokenizer"]["vocab_size"] == classifier.tokenizer.vocab_size
    best = classifier.validation
    assert card["validation"]["step"] == best["best_step"] and card["validation"]["accuracy"] == best["accuracy"]
    assert card["versions"]["torch"] == torch.__version__ and card["recipe"]["model"]["hidden_size"] == 16
    assert card["date"][:4].isdigit()
    readme = (classifier.run_dir / "best" / "README.md").read_text()
    assert "| labels | negative, positive |" in readme and f"(step {best['best_step']})" in readme


def test_info_prints_the_card(classifier, capsys):
    assert main(["info", str(classifier.run_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == classifier.card


def test_a_saved_model_loads_back_the_same(classifier, tmp_path):
    classifier.save(tmp_path / "copy")
    copy = seqtext.load(tmp_path / "copy")
    assert copy.card == classifier.card and copy.predict("dull").probs == classifier.predict("dull").probs


def test_evaluate_gives_the_fields_of_the_command_line(classifier, lists, tmp_path, capsys):
    result = seqtext.evaluate(classifier, data={"test": lists["validation"]})
    assert result["n"] == 100 and result["accuracy"] == pytest.approx(classifier.validation["accuracy"])
    path = tmp_path / "test.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in zip(*lists["validation"].values())))
    assert main(["evaluate", str(classifier.run_dir), "--data", str(path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert seqtext.evaluate(classifier.run_dir, data=str(path)) == printed and set(printed) > {
        "accuracy",
        "macro_f1",
        "confusion",
    }


def test_generation_equals_the_command_lines_for_the_same_seed(language_model, capsys):
    assert isinstance(language_model, seqtext.LanguageModel)
    text = language_model.generate("ROMEO:", length=40, temperature=0.8, top_k=10, seed=5)
    assert len(text) == 40
    assert main(["generate", str(language_model.run_dir), "--prompt", "ROMEO:", "--length", "40", "--temperature", "0.8",
                 "--top-k", "10", "--seed", "5"]) == 0  # fmt: skip
    assert capsys.readouterr().out == "ROMEO:" + text + "\n"
    assert "".join(language_model.generate("ROMEO:", length=40, temperature=0.8, top_k=10, seed=5, stream=True)) == text
    samples = language_model.generate("ROMEO:", length=12, seed=1, num_samples=3)
    assert len(samples) == 3 and all(len(s) == 12 for s in samples)


def test_library_errors_name_the_parameter(language_model):
    with pytest.raises(seqtext.ConfigError, match=r"^temperature must be at least 0, not -1") as caught:
        language_model.generate("ROMEO:", temperature=-1)
    assert caught.value.parameter == "temperature" and isinstance(caught.value, seqtext.SeqtextError)
    with pytest.raises(seqtext.DataError, match=r"^prompt has characters outside the model's vocabulary: '€'"):
        language_model.generate("€")


def test_score_gives_bits_per_character(language_model, shakespeare_slice):
    text = shakespeare_slice.read_text()[:2000]
    scored = language_model.score(text)
    assert scored["bpc"] == pytest.approx(scored["loss"] / np.log(2)) and scored["perplexity"] == pytest.approx(
        np.exp(scored["loss"])
    )
    assert scored["n_chars"] + scored["n_unknown"] == len(text) - 1


def test_bad_arguments_are_seqtext_errors_naming_the_parameter(classifier, language_model):
    cases = [
        (lambda: classifier.predict(None), "texts"),
        (lambda: classifier.predict(3), "texts"),
        (lambda: list(classifier.predict_stream(["fine"], chunk_size=0)), "chunk_size"),
        (lambda: seqtext.load(classifier.run_dir, device="gpu"), "device"),
        (lambda: classifier.to("tpu"), "device"),
        (lambda: language_model.generate("ROMEO:", length=2.5), "length"),
        (lambda: language_model.generate("ROMEO:", temperature="0.8"), "temperature"),
        (lambda: language_model.generate("ROMEO:", top_k=2.5), "top_k"),
        (lambda: language_model.generate("ROMEO:", num_samples=None), "num_samples"),
        (lambda: language_model.generate("ROMEO:", num_samples=2, stream=True), "num_samples"),
        (lambda: language_model.score("R"), "text"),
        (lambda: language_model.evaluate(split="test"), "split"),
        (lambda: classifier.evaluate(horizon=3), "horizon"),
        (lambda: seqtext.train({"kind": "classifier"}, resume=True), "out"),
    ]
    for call, parameter in cases:
        with pytest.raises(seqtext.SeqtextError) as caught:
            call()
        assert caught.value.parameter == parameter and "\n" not in str(caught.value), (parameter, caught.value)


def test_one_string_is_one_text_everywhere(classifier):
    assert classifier.predict_proba("A gorgeous movie.").shape == (1, 2)
    assert [p.text for p in classifier.predict_stream("A gorgeous movie.")] == ["A gorgeous movie."]


def test_a_dataset_with_class_labels_trains_on_their_names(tmp_path, rows):
    import datasets

    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["negative", "positive"])})
    table = datasets.Dataset.from_dict(
        {"text": [r["text"] for r in rows[:200]], "label": [r["label"] for r in rows[:200]]}, features=features
    )
    model = seqtext.train({"kind": "classifier", **TINY}, out=tmp_path / "run", data=table, train__max_steps=2)
    assert model.labels == ["negative", "positive"] and model.card["data"]["splits"] == {"train": 180, "validation": 20}


def test_a_language_model_evaluates_text_in_memory(language_model, shakespeare_slice):
    text = shakespeare_slice.read_text()
    result = language_model.evaluate(data={"train": {"text": [text]}})
    assert result["data"] == "in-memory data, validation split (last 10% of the characters)"
    assert result["n_chars"] > 1000 and result["bpc"] == pytest.approx(result["loss"] / np.log(2))


def test_a_named_dataset_is_found_where_training_found_it(tmp_path, monkeypatch, data_dir):
    tiny = {"model": {**TINY["model"], "ngrams": 0}}  # without the recipe's 2^21-pair n-gram table
    model = seqtext.train(RECIPES / "trec.yaml", tmp_path / "trec", train__max_steps=2, **tiny)
    assert model.card["data"]["data_dir"] == str(data_dir.resolve())
    monkeypatch.delenv("SEQTEXT_DATA")  # a notebook that never set it
    result = seqtext.evaluate(seqtext.load(tmp_path / "trec"))
    assert result["data"] == f"trec ({data_dir.resolve() / 'trec'}), test split" and result["n"] == 500


def test_a_text_that_is_not_unicode_or_has_nothing_visible_gets_its_own_error(trained_run):
    model = seqtext.load(trained_run)
    lone = model.predict("\ud800")
    assert lone.label is None and lone.error == "holds '\\ud800' at character 0, which is not a Unicode character"
    fine, escaped, invisible = model.predict(["fine", "good \udcff movie", "\u200b\u2060\ufeff"])
    assert fine.error is None and escaped.error.startswith("holds '\\udcff' at character 5")
    assert invisible.error == "has no tokens for this model's tokenizer"
    assert np.isnan(model.predict_proba(["\ud800", "fine"])[0]).all()


def test_a_prompt_that_is_not_unicode_is_an_error_naming_the_prompt(lm_run):
    model = seqtext.load(lm_run)
    for call in (
        lambda: model.generate("RO\ud800", length=5),
        lambda: model.generate("RO\udcff", length=5, num_samples=2),
        lambda: next(model.generate("RO\ud800", length=5, stream=True)),
    ):
        with pytest.raises(seqtext.DataError, match=r"^prompt holds '\\ud(800|cff)' at character 2, which is not") as caught:
            call()
        assert caught.value.parameter == "prompt"


@pytest.mark.parametrize("temperature", [1e-50, 5e-324])
def test_a_tiny_temperature_is_greedy_through_the_api(lm_run, temperature):
    model = seqtext.load(lm_run)
    greedy = model.generate("ROMEO:", length=40, temperature=0)
    assert model.generate("ROMEO:", length=40, temperature=temperature, seed=1) == greedy


@pytest.mark.parametrize("options", [{"temperature": 1e39}, {"temperature": 1e308}, {"temperature": 10**400}, {"top_p": 1e-320}])
def test_settings_float32_cannot_hold_are_errors_naming_them(lm_run, options):
    with pytest.raises(seqtext.ConfigError) as caught:
        seqtext.load(lm_run).generate("ROMEO:", length=5, **options)
    assert caught.value.parameter == next(iter(options)) and "\n" not in str(caught.value) and len(str(caught.value)) < 200


def test_a_dataframe_trains_and_evaluates_as_users_hold_their_data(tmp_path, rows):
    import pandas as pd

    frame = pd.DataFrame(rows)
    frame["split"] = ["train"] * 300 + ["validation"] * 50 + ["test"] * 50
    model = seqtext.train({"kind": "classifier", **TINY}, out=tmp_path / "run", data=frame, train__max_steps=2)
    assert model.card["data"]["splits"] == {"train": 300, "validation": 50, "test": 50}
    held_out = frame[frame["split"] == "test"].drop(columns="split")
    from_frame = seqtext.evaluate(model, data=held_out)
    from_lists = seqtext.evaluate(model, data={"test": {"text": list(held_out["text"]), "label": list(held_out["label"])}})
    assert from_frame["n"] == 50 and from_frame["accuracy"] == from_lists["accuracy"]
    one = frame.drop(columns="split")
    alone = seqtext.train({"kind": "classifier", **TINY}, out=tmp_path / "alone", data=one, train__max_steps=1)
    assert alone.card["data"]["splits"] == {"train": 360, "validation": 40}  # one table: the train split, 10% held out


def test_label_names_name_integer_labels(tmp_path, rows):
    numbered = {"text": [r["text"] for r in rows[:300]], "label": [int(r["label"] == "positive") for r in rows[:300]]}
    model = seqtext.train({"kind": "classifier", **TINY, "data": {"label_names": ["negative", "positive"]}},
                          out=tmp_path / "run", data={"train": numbered}, train__max_steps=2)  # fmt: skip
    assert model.labels == ["negative", "positive"] and model.predict("a fine film").label in model.labels
    again = seqtext.load(tmp_path / "run")
    assert again.checkpoint.label_map.numbered  # saved: evaluation data labelled 0 / 1 reads the same way
    test = {"test": {"text": numbered["text"][:50], "label": [["negative", "positive"][y] for y in numbered["label"][:50]]}}
    assert again.evaluate(data={"test": {**test["test"], "label": numbered["label"][:50]}}) == again.evaluate(data=test)
    with pytest.raises(seqtext.DataError, match=r"row 1: unknown label '2'"):
        again.evaluate(data={"test": {"text": ["a film"], "label": [2]}})
    with pytest.raises(seqtext.ConfigError, match=r"data.label_names must not repeat a name"):
        seqtext.train({"kind": "classifier", "data": {"label_names": ["a", "a"]}}, out=tmp_path / "x", data={"train": numbered})


def test_loading_predicting_and_serving_import_neither_datasets_nor_pandas(trained_run):
    import subprocess
    import sys

    code = (
        "import sys, seqtext\n"
        f"model = seqtext.load({str(trained_run)!r})\n"
        "model.predict(['a fine movie'])\n"
        "list(model.predict_stream(['a', 'b']))\n"
        "from seqtext.serve import create_app\n"
        f"create_app({str(trained_run)!r})\n"
        "print(sorted(name for name in ('datasets', 'pandas', 'pyarrow') if name in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
