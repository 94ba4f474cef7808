"""The shared training loop on a language model: truncated BPTT with the state carried, resumed exactly."""

import math

import pytest
import torch
from safetensors.torch import load_file

from seqtext.recipe import load_recipe
from seqtext.training import train

from .conftest import RECIPES, TINY_LM, read_jsonl


def _recipe(path, *overrides):
    return load_recipe(RECIPES / "shakespeare.yaml", ["--data.dataset", str(path), *TINY_LM, *overrides])


def test_a_language_model_run_logs_loss_and_keeps_the_lowest_validation_loss(shakespeare_slice, tmp_path):
    recipe = _recipe(shakespeare_slice, "--train.max_steps", "12", "--train.eval_every", "4", "--train.warmup_steps", "0")
    result = train(recipe, tmp_path / "run", progress=False)
    validation = [e for e in read_jsonl(tmp_path / "run" / "metrics.jsonl") if e["split"] == "validation"]
    assert [e["step"] for e in validation] == [4, 8, 12]
    best = min(validation, key=lambda e: e["loss"])
    assert result["loss"] == best["loss"] and result["best_step"] == best["step"]
    assert all(e["bpc"] == pytest.approx(e["loss"] / math.log(2)) and e["n_chars"] == 1999 for e in validation)
    assert validation[-1]["loss"] < math.log(69)  # better than uniform over the 69 characters


def test_a_resumed_language_model_run_takes_the_same_steps(shakespeare_slice, tmp_path):
    recipe = _recipe(shakespeare_slice, "--train.max_steps", "20", "--train.eval_every", "7", "--train.log_every", "1")
    train(recipe, tmp_path / "whole", progress=False)
    train(recipe, tmp_path / "cut", progress=False, should_stop=lambda state: state.step >= 7)
    carried = load_file(tmp_path / "cut" / "last" / "trainer.safetensors")
    assert carried["task.state.0"].shape == (2, 4, 16)  # the recurrent state the next window continues from
    train(recipe, tmp_path / "cut", resume=True, progress=False)

    def without_timing(run):
        timing = ("tokens_per_s", "elapsed_s")
        return [{k: v for k, v in e.items() if k not in timing} for e in read_jsonl(tmp_path / run / "metrics.jsonl")]

    assert without_timing("cut") == without_timing("whole") and len(without_timing("whole")) == 23
    whole, cut = (load_file(tmp_path / run / "last" / "model.safetensors") for run in ("whole", "cut"))
    assert all(torch.equal(whole[name], cut[name]) for name in whole)
