import json
import math
import re

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from seqtext import checkpoint
from seqtext.batching import collate
from seqtext.errors import ConfigError, TrainingError
from seqtext.optim import learning_rate
from seqtext.recipe import TrainConfig, load_recipe
from seqtext.training import train

from .conftest import RECIPES, TINY_MODEL, read_jsonl


def _recipe(sst2_slice, *overrides):
    return load_recipe(RECIPES / "sst2.yaml", ["--data.dataset", str(sst2_slice), *TINY_MODEL, *overrides])


def test_warmup_then_cosine_to_zero():
    config = TrainConfig(lr=1.0, warmup_steps=10, schedule="cosine")
    assert [learning_rate(config, s, 110) for s in (0, 4, 9)] == [0.1, 0.5, 1.0]
    assert learning_rate(config, 60, 110) == pytest.approx(0.5)
    assert learning_rate(config, 110, 110) == pytest.approx(0.0)
    assert learning_rate(TrainConfig(lr=1.0, warmup_steps=0, schedule="constant"), 50, 110) == 1.0


def test_a_run_writes_checkpoints_metrics_and_curves(trained_run):
    assert (trained_run / "best" / "model.safetensors").exists() and (trained_run / "curves.png").stat().st_size > 10_000
    entries = read_jsonl(trained_run / "metrics.jsonl")
    train = [e for e in entries if e["split"] == "train"]
    validation = [e for e in entries if e["split"] == "validation"]
    assert [e["step"] for e in validation] == [6, 12] and [e["step"] for e in train] == [12]
    assert all(math.isfinite(e["grad_norm"]) and e["grad_norm"] > 0 for e in train)
    assert all(e["n"] == 200 for e in validation)


def test_a_resumed_run_takes_the_same_steps_as_an_uninterrupted_one(sst2_slice, tmp_path):
    recipe = _recipe(sst2_slice, "--train.max_steps", "24", "--train.eval_every", "8", "--train.log_every", "1")
    train(recipe, tmp_path / "whole", progress=False)
    train(recipe, tmp_path / "cut", progress=False, should_stop=lambda state: state.step >= 8)
    assert json.loads((tmp_path / "cut" / "last" / "trainer.json").read_text())["step"] == 8  # stopped after step 8
    train(recipe, tmp_path / "cut", resume=True, progress=False)

    def without_timing(run):
        timing = ("tokens_per_s", "elapsed_s")  # wall-clock figures, the only ones allowed to differ
        return [{k: v for k, v in e.items() if k not in timing} for e in read_jsonl(tmp_path / run / "metrics.jsonl")]

    assert without_timing("cut") == without_timing("whole") and len(without_timing("whole")) == 27
    whole, cut = (load_file(tmp_path / run / "last" / "model.safetensors") for run in ("whole", "cut"))
    assert all(torch.equal(whole[name], cut[name]) for name in whole)


def test_an_existing_run_is_never_overwritten(trained_run, sst2_slice):
    before = (trained_run / "last" / "model.safetensors").read_bytes()
    with pytest.raises(TrainingError, match="already holds a run: resume it, or choose another output directory"):
        train(_recipe(sst2_slice), trained_run, progress=False)
    assert (trained_run / "last" / "model.safetensors").read_bytes() == before


def test_early_stopping_when_validation_stops_improving(sst2_slice, tmp_path):
    recipe = _recipe(
        sst2_slice, "--train.lr", "1e-12", "--train.eval_every", "3", "--train.patience", "2", "--train.max_steps", "30"
    )
    result = train(recipe, tmp_path / "run", progress=False, log=lambda message: None)
    assert result["steps"] == 9 and result["best_step"] == 3  # nothing can improve at this learning rate


def test_a_nan_loss_stops_with_the_step_and_keeps_the_last_checkpoint(sst2_slice, tmp_path):
    vectors = tmp_path / "nan.txt"
    vectors.write_text("the " + " ".join(["nan"] * 16) + "\n")
    recipe = _recipe(sst2_slice, "--train.vectors", str(vectors), "--train.eval_every", "2")
    with pytest.raises(TrainingError, match="loss became nan at step 1"):
        train(recipe, tmp_path / "from-start", progress=False, log=lambda message: None)
    assert not (tmp_path / "from-start" / "last").exists()  # nothing was saved from a model that never stepped

    # 4 good steps leave last/ at step 4. Resumed at a learning rate that blows the weights up, the first
    # steps are still finite, then the loss is not: all before the next checkpoint, at step 40.
    run = tmp_path / "run"
    train(_recipe(sst2_slice, "--train.max_steps", "4", "--train.eval_every", "2"), run, progress=False)
    before = {p.name: p.read_bytes() for p in (run / "last").iterdir()}
    blow_up = ["--train.max_steps", "40", "--train.eval_every", "40", "--train.log_every", "1", "--train.lr", "1e30"]
    with pytest.raises(TrainingError, match=r"loss became (nan|inf) at step \d+; the last checkpoint is intact") as caught:
        train(_recipe(sst2_slice, *blow_up), run, resume=True, progress=False)
    failed = int(re.search(r"at step (\d+)", str(caught.value)).group(1))
    logged = [e["step"] for e in read_jsonl(run / "metrics.jsonl") if e["split"] == "train"]
    assert failed > 5 and logged[-1] == failed - 1  # the error names the first step that did not finish
    assert {p.name: p.read_bytes() for p in (run / "last").iterdir()} == before
    assert json.loads((run / "last" / "trainer.json").read_text())["step"] == 4
    saved, model = load_file(run / "last" / "model.safetensors"), checkpoint.load(run / "last").model.state_dict()
    assert all(torch.isfinite(saved[name]).all() and torch.equal(model[name], saved[name]) for name in saved)


def test_vectors_wider_than_the_embedding_are_one_line(sst2_slice, tmp_path):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("the " + " ".join(["0.1"] * 20) + "\n")  # an embedding may be wider than its vectors, not narrower
    with pytest.raises(ConfigError, match=r"model.embedding_size is 16, but the vectors are 20 wide: give 20, or more"):
        train(_recipe(sst2_slice, "--train.vectors", str(vectors)), tmp_path / "run", progress=False)


def test_a_time_budget_fits_the_steps_and_the_schedule_to_it(sst2_slice, tmp_path):
    minutes = 0.25  # room for the timed steps on a busy machine too
    recipe = _recipe(sst2_slice, "--train.max_minutes", str(minutes), "--train.epochs", "1000", "--train.warmup_steps", "0")
    recipe.train.eval_every, recipe.train.log_every = 100_000, 1
    notes = []
    result = train(recipe, tmp_path / "run", progress=False, log=notes.append)
    fitted = json.loads((tmp_path / "run" / "last" / "trainer.json").read_text())["fitted_steps"]
    assert re.fullmatch(r"seqtext: [\d.]+ s a step: [\d,]+ steps fit train.max_minutes", notes[0])
    # a third and two thirds of the way it fits again, from the pace since the last fit (validations included)
    first = re.fullmatch(r"seqtext: [\d.]+ s a step since step 25: ([\d,]+) steps fit train.max_minutes", notes[1])
    second = re.fullmatch(r"seqtext: [\d.]+ s a step since step (\d+): ([\d,]+) steps fit train.max_minutes", notes[2])
    assert first and second and int(second[2].replace(",", "")) == fitted
    assert 25 < int(second[1]) < fitted  # from the first refit's step
    assert json.loads((tmp_path / "run" / "last" / "trainer.json").read_text())["refits"] == 2
    assert 25 < fitted < 1000 * 10 and result["steps"] <= fitted  # 10 batches an epoch: far fewer than 1,000 epochs
    logged = [e for e in read_jsonl(tmp_path / "run" / "metrics.jsonl") if e["split"] == "train"]
    assert logged[-1]["elapsed_s"] < minutes * 60 + 5
    assert result["steps"] == fitted or logged[-1]["elapsed_s"] >= minutes * 60  # where it was fitted to, or cut by the clock
    if result["steps"] == fitted:  # the schedule was fitted too: the cosine reached ~0 at the last step
        assert logged[-1]["lr"] < 0.01 * recipe.train.lr


@pytest.mark.parametrize(("max_epochs", "epochs"), [(None, 4), (3, 3), (1, 1)])
def test_min_steps_adds_epochs_to_small_data_up_to_max_epochs(sst2_slice, tmp_path, max_epochs, epochs):
    # 600 rows in batches of 64: 10 steps an epoch; 35 steps need 4 epochs
    extra = [] if max_epochs is None else ["--train.max_epochs", str(max_epochs)]
    recipe = _recipe(sst2_slice, "--train.epochs", "1", "--train.min_steps", "35", "--train.eval_every", "1000", *extra)
    notes = []
    result = train(recipe, tmp_path / "run", progress=False, log=notes.append)
    assert result["steps"] == epochs * 10
    said = [note for note in notes if "train.min_steps" in note]
    capped = "" if max_epochs is None else f" (train.max_epochs {max_epochs})"
    expected = f"seqtext: 10 steps an epoch: {epochs} epochs instead of 1, to reach train.min_steps 35{capped}"
    assert said == ([] if epochs == 1 else [expected])


def test_with_separate_losses_the_encoder_trains_as_if_the_ngrams_were_not_there(sst2_slice, tmp_path):
    common = ["--data.dataset", str(sst2_slice), "--train.max_steps", "8", "--train.eval_every", "8", "--train.clip_norm", "0",
              *TINY_MODEL]  # fmt: skip  # no clipping: the global norm would mix the two halves' gradients
    runs = {
        "alone": [],
        "separate": ["--model.ngrams", "2", "--model.ngram_buckets", "5000", "--model.ngram_loss", "separate"],
        "joint": ["--model.ngrams", "2", "--model.ngram_buckets", "5000"],
    }
    weights = {}
    for name, extra in runs.items():
        train(load_recipe(RECIPES / "sst2.yaml", [*common, *extra]), tmp_path / name, progress=False)
        weights[name] = load_file(tmp_path / name / "last" / "model.safetensors")
    assert weights["separate"]["ngrams.weight.weight"].abs().sum() > 0  # the n-grams learnt too
    encoder = sorted(weights["alone"])
    assert all(torch.equal(weights["separate"][k], weights["alone"][k]) for k in encoder)
    assert not torch.equal(weights["joint"]["head.weight"], weights["alone"]["head.weight"])


def test_adversarial_training_moves_each_text_the_way_that_raises_its_loss_most(sst2_slice):
    from seqtext.classifier.task import ClassifierTask

    epsilon = 0.5
    recipe = _recipe(sst2_slice, "--train.adversarial", str(epsilon), "--model.embedding_dropout", "0", "--model.dropout", "0")
    task = ClassifierTask(recipe, None, lambda message: None)
    batch = collate([task.train_set[i] for i in task.epoch(0)[0]])
    loss, objective, _ = task.step(task.epoch(0)[0], torch.device("cpu"))
    loss, objective = loss.detach(), objective.detach()
    adversarial = float(objective - loss)  # the same batch, each text's embeddings moved by epsilon
    assert adversarial > float(loss)
    # a random move of the same size per text raises the loss far less than the adversarial one
    torch.manual_seed(0)
    noise = torch.randn(*batch.ids.shape, recipe.model.embedding_size) * batch.mask[..., None]
    noise = epsilon * noise / noise.flatten(1).norm(dim=1)[:, None, None]
    with torch.no_grad():
        moved = task.model(batch.ids, batch.lengths, batch.mask, perturbation=noise)
        randomly = float(F.cross_entropy(moved.logits, batch.labels))
    assert randomly - float(loss) < 0.5 * (adversarial - float(loss))
    recipe.train.adversarial = 0.0
    loss, objective, _ = task.step(task.epoch(0)[0], torch.device("cpu"))
    assert torch.equal(loss, objective)


def test_adversarial_must_be_a_finite_size(sst2_slice):
    with pytest.raises(ConfigError, match=r"train.adversarial must be a finite number, at least 0, not -1.0"):
        _recipe(sst2_slice, "--train.adversarial", "-1")
