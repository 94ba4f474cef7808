"""bf16 mixed precision (seqtext/precision.py): train.precision for training, precision= for loading, and
--precision for the commands. Weights stay fp32, so a bf16 run's checkpoint loads in either precision; the
quality of a short real run and of predictions agrees with fp32 within the tolerances stated here."""

import json

import pytest
import torch
from safetensors.torch import load_file

import seqtext
from seqtext import precision
from seqtext.cli import main
from seqtext.recipe import load_recipe
from seqtext.training import train

from .conftest import RECIPES, TINY_MODEL


def test_auto_resolves_to_a_concrete_precision_and_says_what_it_measured():
    chosen, why = precision.resolve("auto", "cpu")
    speedup = precision.bf16_speedup("cpu")
    assert chosen == ("bf16" if speedup >= precision.AUTO_MARGIN else "fp32")
    assert why == f"an LSTM step measured {speedup:.2f}x as fast in bf16 on this cpu"
    assert precision.resolve("fp32", "cpu") == ("fp32", "as asked") and precision.resolve("bf16", "cpu")[0] == "bf16"
    with pytest.raises(seqtext.SeqtextError, match="train.precision must be fp32, bf16 or auto, not 'fp16'"):
        precision.resolve("fp16", "cpu", "train.precision")


def test_autocast_runs_the_encoder_in_bf16_and_keeps_softmax_and_losses_in_float32():
    from seqtext.classifier.model import ClassifierConfig, TextClassifier

    torch.manual_seed(0)
    config = ClassifierConfig(embedding_size=8, hidden_size=8, attention_size=8)
    model = TextClassifier(config, vocab_size=20, num_classes=3).eval()
    ids = torch.randint(4, 20, (2, 7))
    lengths = torch.tensor([7, 4])
    mask = torch.arange(7)[None, :] < lengths[:, None]
    with precision.autocast("bf16", "cpu"):
        out = model(ids, lengths, mask)
    assert out.logits.dtype == torch.bfloat16  # the encoder and the output layer ran in bf16
    assert out.attention.dtype == torch.float32 and torch.allclose(out.attention.sum(1), torch.ones(2))
    assert (out.attention[1, 4:] == 0).all()  # padding gets exactly nothing
    fp32 = model(ids, lengths, mask)
    assert torch.allclose(out.logits.float(), fp32.logits, atol=0.05)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_the_adaptive_softmax_scores_in_float32_under_bf16():
    from seqtext.language_model.model import LanguageModelConfig, RecurrentLanguageModel

    torch.manual_seed(0)
    config = LanguageModelConfig(embedding_size=16, hidden_size=16, num_layers=1, output="adaptive", adaptive_cutoffs=[10])
    model = RecurrentLanguageModel(config, vocab_size=40).eval()
    ids, targets = torch.randint(0, 40, (2, 9)), torch.randint(0, 40, (2, 9))
    with precision.autocast("bf16", "cpu"):
        losses, _, _ = model.token_losses(ids, targets)
        log_probs, _ = model(ids)
    assert losses.dtype == torch.float32 and log_probs.dtype == torch.float32
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(2, 9), atol=1e-5)  # a distribution, to fp32 rounding
    assert torch.allclose(losses, model.token_losses(ids, targets)[0], atol=0.05)


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory, sst2_slice):
    """The same short SST-2 run (600 sentences, 60 steps, seed 0) in fp32 and in bf16."""
    runs = {}
    for name in ("fp32", "bf16"):
        runs[name] = tmp_path_factory.mktemp("precision") / name
        overrides = ["--data.dataset", str(sst2_slice), "--train.max_steps", "60", "--train.eval_every", "30",
                     "--train.precision", name, *TINY_MODEL]  # fmt: skip
        train(load_recipe(RECIPES / "sst2.yaml", overrides), runs[name], progress=False)
    return runs


def test_a_bf16_run_validates_like_fp32_and_its_card_says_so(short_runs):
    cards = {name: json.loads((run / "best" / "card.json").read_text()) for name, run in short_runs.items()}
    assert cards["bf16"]["precision"] == {"trained": "bf16", "asked": "bf16", "why": "as asked"}
    assert cards["fp32"]["precision"]["trained"] == "fp32"
    figures = {name: [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
               for name, run in short_runs.items()}  # fmt: skip
    validation = {name: [e for e in entries if e["split"] == "validation"] for name, entries in figures.items()}
    assert [e["step"] for e in validation["bf16"]] == [e["step"] for e in validation["fp32"]] == [30, 60]
    for ours, theirs in zip(validation["bf16"], validation["fp32"]):  # 200 sentences: 0.03 is six of them
        assert abs(ours["accuracy"] - theirs["accuracy"]) <= 0.03, (ours, theirs)
        assert abs(ours["loss"] - theirs["loss"]) <= 0.02, (ours, theirs)
    weights = seqtext.load(short_runs["bf16"]).module.state_dict()
    assert all(w.dtype in (torch.float32, torch.bool, torch.int64) for w in weights.values())  # saved as fp32


def test_a_checkpoint_loads_in_either_precision_and_predicts_alike(short_runs, sst2_slice):
    texts = [json.loads(line)["text"] for line in (sst2_slice / "validation.jsonl").read_text().splitlines()]
    fp32 = seqtext.load(short_runs["bf16"]).predict(texts)
    bf16 = seqtext.load(short_runs["bf16"], precision="bf16").predict(texts)
    same = sum(a.label == b.label for a, b in zip(fp32, bf16))
    assert same >= 0.97 * len(texts)  # labels agree but where a text sits on the boundary
    for a, b in zip(fp32, bf16):
        assert abs(a.probs["positive"] - b.probs["positive"]) < 0.05
        assert abs(sum(w for _, w in b.attention) - 1.0) < 1e-5
    with pytest.raises(seqtext.SeqtextError, match="int8 or precision bf16, not both"):
        seqtext.load(short_runs["bf16"], int8=True, precision="bf16")


def test_commands_take_precision(short_runs, capsys):
    run = str(short_runs["fp32"])
    assert main(["evaluate", run, "--split", "validation", "--json", "--precision", "bf16"]) == 0
    bf16 = json.loads(capsys.readouterr().out)
    assert main(["evaluate", run, "--split", "validation", "--json"]) == 0
    fp32 = json.loads(capsys.readouterr().out)
    assert abs(bf16["accuracy"] - fp32["accuracy"]) <= 0.015 and bf16["n"] == fp32["n"] == 200
    assert main(["predict", run, "--precision", "bf16", "--json", "a gorgeous, witty movie"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] in ("negative", "positive")
    assert main(["predict", run, "--precision", "fp16", "x"]) == 2
    assert "--precision: invalid choice: 'fp16'" in capsys.readouterr().err


def test_bf16_generation_is_seeded_and_scores_like_fp32(lm_run):
    model = seqtext.load(lm_run, precision="bf16")
    text = model.generate("ROMEO:", length=200, seed=3)
    assert len(text) == 200 and text == model.generate("ROMEO:", length=200, seed=3)
    assert "".join(model.generate("ROMEO:", length=200, seed=3, stream=True)) == text
    reference = seqtext.load(lm_run)
    ours, theirs = reference.score("ROMEO:" + text), reference.score("ROMEO:" + reference.generate("ROMEO:", length=200, seed=3))
    assert abs(ours["loss"] - theirs["loss"]) < 0.35  # a sample as likely, to the fp32 model, as an fp32 sample
    assert abs(model.score(text)["loss"] - reference.score(text)["loss"]) < 0.02


@pytest.mark.parametrize(
    ("recipe", "overrides"),
    [
        ("sine.yaml", ["--model.hidden_size", "16"]),  # a forecaster: its series is float64, its loss MSE
        ("reviews-lm.yaml", ["--data.dataset", "{text}", "--model.embedding_size", "16", "--model.hidden_size", "16",
                             "--tokenizer.vocab_size", "300", "--model.adaptive_cutoffs", "[100]", "--train.max_minutes", "null",
                             "--data.corpus_splits", "train",
                             "--batching.batch_size", "4", "--batching.bptt", "16"]),  # a word LM, its adaptive softmax
    ],
)  # fmt: skip
def test_every_kind_trains_in_bf16_and_its_losses_stay_float32(recipe, overrides, tmp_path, shakespeare_slice):
    overrides = [o.replace("{text}", str(shakespeare_slice)) for o in overrides]
    base = ["--train.max_steps", "6", "--train.eval_every", "3", "--train.precision", "bf16", *overrides]
    result = train(load_recipe(RECIPES / recipe, base), tmp_path / "run", progress=False)
    entries = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    validation = [e for e in entries if e["split"] == "validation"]
    assert [e["step"] for e in validation] == [3, 6] and all(e["loss"] == e["loss"] < 1e6 for e in validation)
    assert result["steps"] == 6
    card = json.loads((tmp_path / "run" / "best" / "card.json").read_text())
    assert card["precision"]["trained"] == "bf16"
    saved = load_file(str(tmp_path / "run" / "last" / "trainer.safetensors"))
    carried = {k: v for k, v in saved.items() if k.startswith("task.")}
    assert all(v.dtype == torch.float32 for v in carried.values())  # a language model's state, saved as fp32
    assert ("task.state.0" in carried) == (recipe == "reviews-lm.yaml")


def test_a_resumed_auto_run_keeps_its_first_choice_and_the_bag_it_chose(sst2_slice, tmp_path):
    from seqtext.recipe import for_data

    def recipe(steps):
        overrides = ["--train.max_steps", str(steps), "--train.eval_every", "2", "--train.precision", "auto", *TINY_MODEL,
                     "--model.embedding_size", "50", "--model.vectors_vocab", "100", "--model.ngram_buckets", "64"]  # fmt: skip
        return for_data(None, overrides, str(sst2_slice))

    train(recipe(2), tmp_path / "run", progress=False)
    first = json.loads((tmp_path / "run" / "last" / "card.json").read_text())["precision"]
    train(recipe(4), tmp_path / "run", resume=True, progress=False)  # the recipe given again, ngrams: auto in it
    card = json.loads((tmp_path / "run" / "last" / "card.json").read_text())
    assert first["asked"] == "auto" and first["trained"] in ("fp32", "bf16")
    assert card["precision"] == {"trained": first["trained"], "asked": "auto", "why": "as the run chose when it started"}
    assert card["recipe"]["model"]["ngrams"] == 2 and seqtext.load(tmp_path / "run" / "last").recipe.model.ngrams == 2


def test_auto_measures_under_no_grad_int8_keeps_fp32_and_autocast_wants_a_concrete_precision(short_runs):
    with torch.no_grad():
        assert precision.bf16_speedup.__wrapped__("cpu") > 0
    with torch.inference_mode():
        assert precision.bf16_speedup.__wrapped__("cpu") > 0
    assert seqtext.load(short_runs["fp32"], int8=True, precision="auto").precision == "fp32"
    with pytest.raises(seqtext.SeqtextError, match="precision must be fp32 or bf16 here"):
        precision.autocast("auto", "cpu")


def test_info_shows_the_precision_a_model_trained_in(short_runs, capsys):
    assert main(["info", str(short_runs["bf16"])]) == 0
    assert "trained in bf16" in capsys.readouterr().out
