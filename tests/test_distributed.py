"""Training under torchrun: two CPU processes (gloo) against one process with the same global batch."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from seqtext.batching import BucketBatchSampler
from seqtext.distributed import Shard

from .conftest import RECIPES, TINY_LM, TINY_MODEL, read_jsonl

STEPS = 12
NO_DROPOUT = ["--model.dropout", "0", "--model.embedding_dropout", "0"]


LAUNCHER = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
ENVIRONMENT = {**os.environ, "OMP_NUM_THREADS": "1"}


def _command(kind, data, run, processes, *extra):
    if kind == "classifier":
        recipe, options = RECIPES / "sst2.yaml", [*TINY_MODEL, *NO_DROPOUT, "--batching.batch_size", "16"]
    else:
        recipe, options = RECIPES / "shakespeare.yaml", [*TINY_LM, "--model.dropout", "0", "--batching.batch_size", "6"]
    if kind == "adaptive_word_lm":  # the review encoder's output layer, whose rare clusters may get no target
        options += ["--tokenizer.kind", "word", "--tokenizer.path", "null", "--tokenizer.vocab_size", "null"]
        options += ["--model.output", "adaptive", "--model.adaptive_cutoffs", "[50, 200]"]
    arguments = ["train", str(recipe), "--data", str(data), "--out", str(run), "--max-steps", str(STEPS), *options]
    arguments += ["--train.eval_every", "6", "--train.log_every", "1", *extra]
    return [*LAUNCHER, f"--nproc_per_node={processes}", "-m", "seqtext", *arguments]


def _train(kind, data, run, processes, *extra):
    result = subprocess.run(_command(kind, data, run, processes, *extra), capture_output=True, text=True, env=ENVIRONMENT)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["classifier", "language_model", "adaptive_word_lm"])
def test_two_processes_train_what_one_process_trains_with_the_same_global_batch(kind, tmp_path, sst2_slice, shakespeare_slice):
    data = sst2_slice if kind == "classifier" else shakespeare_slice
    # plain SGD: unlike Adam, its step grows with the gradient, so a wrongly scaled or unsharded loss shows
    sgd = ["--train.optimizer", "sgd", "--train.lr", "0.5", "--train.momentum", "0"]
    one = _train(kind, data, tmp_path / "one", 1, *sgd)
    two = _train(kind, data, tmp_path / "two", 2, *sgd)
    assert one.stdout.count("best validation") == 1 and two.stdout.count("best validation") == 1  # only rank 0 reports
    ours, theirs = (load_file(str(tmp_path / run / "last" / "model.safetensors")) for run in ("two", "one"))
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], rtol=0, atol=2e-5, msg=name)
    logs = [read_jsonl(tmp_path / run / "metrics.jsonl") for run in ("two", "one")]
    validations = [[e["loss"] for e in log if e["split"] == "validation"] for log in logs]
    assert len(validations[0]) == 2 and validations[0] == pytest.approx(validations[1], abs=1e-4)
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["best", "curves.png", "last", "metrics.jsonl"]


@pytest.mark.slow
def test_a_run_killed_and_resumed_under_torchrun_ends_where_an_uninterrupted_one_does(tmp_path, sst2_slice):
    _train("classifier", sst2_slice, tmp_path / "whole", 2)
    run = tmp_path / "cut"
    process = subprocess.Popen(_command("classifier", sst2_slice, run, 2), env=ENVIRONMENT, start_new_session=True)
    deadline = time.monotonic() + 120
    while process.poll() is None and not _logged_past(run, 7):  # the checkpoint of step 6 is written
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)  # torchrun and both of its processes
    process.wait()
    launcher = _command("classifier", sst2_slice, run, 2)[: len(LAUNCHER) + 3]  # torchrun ... -m seqtext
    result = subprocess.run([*launcher, "train", "--resume", str(run)], capture_output=True, text=True, env=ENVIRONMENT)
    assert result.returncode == 0, result.stderr[-3000:]
    whole, cut = (load_file(str(tmp_path / name / "last" / "model.safetensors")) for name in ("whole", "cut"))
    # to float rounding, as in test_faults.py: a process now and then rounds one step differently
    assert all(torch.allclose(whole[k], cut[k], rtol=1e-4, atol=1e-6) for k in whole)


def _logged_past(run, step) -> bool:
    try:
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return bool(lines) and json.loads(lines[-1])["step"] >= step
    except (OSError, ValueError):
        return False


def test_shards_split_every_global_batch_so_an_epoch_sees_each_example_once():
    lengths = torch.randint(1, 40, (203,))
    batches = BucketBatchSampler(lengths, 16, seed=3).batches()
    shards = [Shard(rank, 3) for rank in range(3)]
    seen = [i for batch in batches for shard in shards for i in shard.take(batch)]
    assert sorted(seen) == list(range(203))
    for batch in batches:
        parts = [shard.take(batch) for shard in shards]
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
