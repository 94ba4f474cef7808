"""Language models over word and BPE tokens: trained, evaluated (perplexity, no bits per character) and
sampled through the API and the command line, on the first 20,000 characters of Tiny Shakespeare; the word
model with a full softmax and with an adaptive one."""

import json

import pytest
import torch

import seqtext
from seqtext.cli import main

from .conftest import RECIPES

TINY_LM = {"model": {"embedding_size": 8, "hidden_size": 16, "num_layers": 1}, "batching": {"batch_size": 4, "bptt": 16}}


@pytest.fixture(scope="module", params=["word", "bpe", "word-adaptive"])
def token_model(request, tmp_path_factory, shakespeare_slice):
    kind, _, output = request.param.partition("-")
    tokenizer = {"kind": kind, "path": None, "vocab_size": 400 if kind == "bpe" else None, "lowercase": kind == "word"}
    model = {**TINY_LM["model"], **({"output": "adaptive", "adaptive_cutoffs": [50, 200]} if output else {})}
    out = tmp_path_factory.mktemp("lm") / request.param
    return seqtext.train(
        RECIPES / "shakespeare.yaml",
        out,
        data__dataset=str(shakespeare_slice),
        tokenizer=tokenizer,
        train={"max_steps": 4},
        model=model,
        batching=TINY_LM["batching"],
    )


def test_a_token_model_reports_perplexity_per_token_and_no_bits_per_character(token_model, capsys):
    assert token_model.unit == "token" and token_model.tokenizer.kind in ("word", "bpe")
    assert set(token_model.validation) >= {"loss", "perplexity", "n_tokens"} and "bpc" not in token_model.validation
    adaptive = isinstance(token_model.module.output.head, torch.nn.AdaptiveLogSoftmaxWithLoss)
    assert adaptive == (token_model.config.output == "adaptive")
    assert ("accuracy" in token_model.validation) != adaptive  # the adaptive softmax has no cheap most likely token
    assert main(["evaluate", str(token_model.run_dir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert "bpc" not in result and result["perplexity"] == pytest.approx(token_model.validation["perplexity"])
    assert main(["evaluate", str(token_model.run_dir)]) == 0
    assert "nats/token" in capsys.readouterr().out


def test_a_token_model_generates_the_same_text_as_the_command_line(token_model, capsys):
    text = token_model.generate("first citizen", length=12, seed=3)
    assert main(["generate", str(token_model.run_dir), "--prompt", "first citizen", "--length", "12", "--seed", "3"]) == 0
    assert capsys.readouterr().out == "first citizen" + text + "\n"
    assert "".join(token_model.generate("first citizen", length=12, seed=3, stream=True)) == text
    if token_model.tokenizer.kind == "word":  # 12 words, each after a space
        assert text.startswith(" ") and len(text.split()) == 12


def test_a_word_model_names_prompt_words_it_never_saw_and_bpe_reads_any(token_model):
    if token_model.tokenizer.kind == "bpe":  # byte-level: every text has tokens the model knows
        assert len(token_model.generate("the zyzzyva €", length=3, seed=0)) > 0
        return
    with pytest.raises(seqtext.DataError, match="prompt has words outside the model's vocabulary: 'zyzzyva'"):
        token_model.generate("the zyzzyva")
    with pytest.raises(seqtext.DataError, match="prompt must have at least one token for a word model"):
        token_model.generate("")
