import html
import json
import re

import pytest

from seqtext import checkpoint
from seqtext.errors import DataError
from seqtext.predict import html_page, predict, shaded


def test_predictions_carry_probabilities_and_attention_on_the_words(trained_run):
    model = checkpoint.load(trained_run)
    text = "A  gorgeous, witty film <br /> that dragged"
    [prediction] = predict(model, [text])
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


def test_a_text_with_no_tokens_is_an_error(trained_run):
    with pytest.raises(DataError, match=r"text 2 \(' \\t '\) has no tokens"):
        predict(checkpoint.load(trained_run), ["fine", " \t "])


def test_the_html_page_escapes_the_text(trained_run):
    predictions = predict(checkpoint.load(trained_run), ["<script>alert(1)</script> good"])
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
    assert [json.loads(line)["text"] for line in lines] == [f"film number {i} was fine" for i in range(2500)]
    with pytest.raises(DataError, match=r"text 2049 \(''\) has no tokens"):  # numbered across chunks
        predict(checkpoint.load(trained_run), ["fine", ""], first=2048)
