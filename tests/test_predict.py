import html
import json
import re

import pytest

import seqtext
from seqtext import checkpoint
from seqtext.classifier.predict import NO_TOKENS, html_page, predict, readable_problem, shaded


def _predict(run, texts):
    saved = checkpoint.load(run)
    return predict(saved.model, saved.tokenizer, saved.label_map.names, texts, saved.recipe["data"]["max_length"])


def test_predictions_carry_probabilities_and_attention_on_the_words(trained_run):
    text = "A  gorgeous, witty film <br /> that dragged"
    [prediction] = _predict(trained_run, [text])
    assert set(prediction.probs) == {"negative", "positive"} and sum(prediction.probs.values()) == pytest.approx(1.0)
    assert prediction.label == max(prediction.probs, key=prediction.probs.get)
    tokens = [text[start:end] for start, end in prediction.spans]
    assert tokens == ["A", "gorgeous", ",", "witty", "film", "that", "dragged"]  # offsets into the text as written
    assert sum(prediction.weights) == pytest.approx(1.0) and len(prediction.weights) == len(tokens)
    assert prediction.to_dict(explain=True)["attention"][1] == {
        "token": "gorgeous",
        "start": 3,
        "end": 11,
        "weight": prediction.weights[1],
    }
    assert shaded(prediction).plain == text


def test_a_text_with_no_tokens_gets_an_error_and_the_rest_are_labelled(trained_run):
    fine, blank = _predict(trained_run, ["fine", " \t "])
    assert fine.error is None and fine.label in ("negative", "positive")
    assert blank.label is None and blank.error == "has no tokens for this model's tokenizer"
    assert blank.to_dict() == {"text": " \t ", "error": "has no tokens for this model's tokenizer"}


def test_the_html_page_escapes_the_text(trained_run):
    predictions = _predict(trained_run, ["<script>alert(1)</script> good"])
    page = html_page(predictions)
    assert "<script" not in page and page.count("<span") == len(predictions[0].spans)
    paragraph = re.search(r"<br>(.*)</p>", page).group(1)
    assert html.unescape(re.sub(r"<[^>]+>", "", paragraph)) == "<script>alert(1)</script> good"


def test_a_long_file_is_labelled_a_chunk_at_a_time_in_order(trained_run, tmp_path, capsys):
    from seqtext.cli import main

    path = tmp_path / "many.txt"
    path.write_text("".join(f"film number {i} was fine\n" for i in range(2500)) + "\n")
    assert main(["predict", str(trained_run), "--file", str(path), "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # one output line an input line, the blank last one too
    assert [json.loads(line)["text"] for line in lines] == [f"film number {i} was fine" for i in range(2500)] + [""]
    assert main(["predict", str(trained_run), *[f"film {i}" for i in range(600)], "  "]) == 2
    assert (
        capsys.readouterr().err == "seqtext: error: text 601 ('  ') has no tokens for this model's tokenizer\n"
    )  # across chunks


def test_streamed_prediction_is_prediction_a_chunk_at_a_time(trained_run):
    texts = [f"film number {i} was {'fine' if i % 3 else 'dull'}" for i in range(50)]
    whole = _predict(trained_run, texts)
    streamed = list(seqtext.load(trained_run).predict_stream(iter(texts), chunk_size=7))
    assert [p.text for p in streamed] == texts and [p.label for p in streamed] == [p.label for p in whole]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "is empty"),
        (" \t\n", "is empty"),
        ("\u200b\u200b", "is empty"),  # zero-width spaces
        ("\u2060", "is empty"),  # a word joiner
        ("\ufeff", "is empty"),  # a byte order mark
        (" \u200d\u00ad\u2063 \ufeff", "is empty"),  # a joiner, a soft hyphen, an invisible separator, spaces
        ("good \ud800 movie", "holds '\\ud800' at character 5, which is not a Unicode character"),
        ("good \udcff movie", "holds '\\udcff' at character 5, which is not a Unicode character"),  # an undecodable byte
        ("\u200b\udfff", "holds '\\udfff' at character 1, which is not a Unicode character"),
        ("good", None),
        ("\u200bx", None),
        ("caf\u00e9 \U0001f600", None),
    ],
)
def test_readable_problem_names_what_no_model_can_read(text, problem):
    assert readable_problem(text) == problem


def test_a_text_without_visible_characters_gets_the_empty_texts_error(trained_run):
    texts = ["fine", "", "\u200b\u200b", "\u2060", "\ufeff", "\u200b \ufeff"]
    fine, *invisible = _predict(trained_run, texts)
    assert fine.error is None and fine.label in ("negative", "positive")
    assert [(p.label, p.probs, p.error) for p in invisible] == [(None, None, NO_TOKENS)] * 5


def test_a_text_that_is_not_unicode_gets_an_error_naming_the_character(trained_run):
    fine, lone, escaped = _predict(trained_run, ["fine", "\ud800", "good \udcff movie"])
    assert fine.error is None and fine.label in ("negative", "positive")
    assert lone.label is None and lone.error == "holds '\\ud800' at character 0, which is not a Unicode character"
    assert escaped.error == "holds '\\udcff' at character 5, which is not a Unicode character"
    assert escaped.to_dict() == {"text": "good \udcff movie", "error": escaped.error}
