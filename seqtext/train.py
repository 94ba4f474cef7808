"""The training loop: cross-entropy, gradient clipping, a learning-rate schedule, validation at fixed
steps, early stopping, and the best and last checkpoints, resumable exactly. One loop trains both
tasks; a small task object says what a batch, a step and a validation are for each.

A run directory holds ``best/`` and ``last/`` checkpoints, ``metrics.jsonl`` (one JSON object per
training log line and per validation) and ``curves.png``. The order of the data depends only on
(seed, epoch), and the trainer state records the position within the epoch and the RNG state, so a run
resumed from ``last/`` takes the same steps with the same losses as one that was never interrupted.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from seqtext import checkpoint
from seqtext.batching import IGNORE_INDEX, LMStreams, collate
from seqtext.errors import ConfigError, DataError, Interrupted
from seqtext.evaluate import evaluate_classifier, evaluate_language_model
from seqtext.models.charlm import CharLM, detach_state
from seqtext.models.classifier import TextClassifier
from seqtext.models.forecaster import Forecaster
from seqtext.pipeline import bucket_sampler, prepare_classification, prepare_corpus
from seqtext.plots import plot_curves
from seqtext.recipe import Recipe, TrainConfig
from seqtext.series import evaluate_forecaster, load_series, step_targets, windows
from seqtext.vectors import load_vectors


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is cuda, but torch sees no CUDA device")
    return torch.device("cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu")


def learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    """Linear warmup over ``warmup_steps``, then constant or cosine decay to 0 at ``total_steps``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return config.lr
    progress = (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)
    return config.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: torch.nn.Module, config: TrainConfig, fused: bool = True) -> torch.optim.Optimizer:
    """AdamW (or SGD). AdamW is the fused kernel, one pass over all the parameters: the default loop of
    small operations per tensor took a third of an SST-2 step on CPU (bench/speed_work.py)."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    # no weight decay on biases and the embedding: decaying rare words' vectors to 0 only forgets them
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and not n.startswith("embedding.")]
    keep = [p for n, p in model.named_parameters() if p.ndim < 2 or n.startswith("embedding.")]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": keep, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, fused=fused)


class Shard:
    """This process's part of every global batch under torchrun: rank ``rank`` of ``world`` processes.

    Each process takes every ``world``-th example (or stream) of the same global batch, so an epoch
    shows every example once, and scales its loss so that DistributedDataParallel's mean of the
    gradients is the gradient of the global batch's mean loss, whatever the split of the batch.
    """

    def __init__(self, rank: int = 0, world: int = 1):
        self.rank, self.world = rank, world

    def take(self, items):
        return items if self.world == 1 else items[self.rank :: self.world]

    def mean(self, total: torch.Tensor, global_count: float) -> torch.Tensor:
        """``total`` summed over this process's part -> its share of the global mean, times ``world``."""
        return total * self.world / global_count


class ClassificationTask:
    """What the loop needs to train a classifier: its data, model, batches, loss and validation."""

    kind = "classifier"
    score_name = "accuracy"
    higher_is_better = True

    def __init__(self, recipe: Recipe, saved: checkpoint.Checkpoint | None, log: Callable[[str], None]):
        self.recipe = recipe
        if saved is not None:
            prepared = prepare_classification(recipe, tokenizer=saved.tokenizer)
            if saved.label_map != prepared.data.label_map:
                ours, theirs = prepared.data.label_map.names, saved.label_map.names
                raise DataError(f"{saved.path}: the data's labels {ours} differ from the run's {theirs}")
            self.model = saved.model
        else:
            prepared = prepare_classification(recipe)
            torch.manual_seed(recipe.seed)
            self.model = TextClassifier(recipe.model, prepared.tokenizer.vocab_size, len(prepared.data.label_map))
            if recipe.train.vectors:
                coverage = load_vectors(recipe.train.vectors, prepared.tokenizer, self.model.embedding.weight)
                log(f"seqtext: word vectors from {recipe.train.vectors} cover {coverage:.1%} of the vocabulary")
        self.runner, self.shard = self.model, Shard()  # runner: the model or its DistributedDataParallel wrapper
        self.tokenizer, self.label_map = prepared.tokenizer, prepared.data.label_map
        self.model_args = {"vocab_size": self.tokenizer.vocab_size, "num_classes": len(self.label_map)}
        self.train_set, self.validation_set = prepared.encoded["train"], prepared.encoded["validation"]
        self.sampler = bucket_sampler(self.train_set, recipe.batching, recipe.seed)
        self.class_weight = None
        if recipe.train.class_weights == "balanced":
            counts = torch.bincount(self.train_set.labels, minlength=len(self.label_map)).double()
            self.class_weight = (counts.sum() / (len(self.label_map) * counts.clamp(min=1))).float()

    def steps_per_epoch(self) -> int:
        return len(self.sampler)

    def epoch(self, epoch: int) -> list[list[int]]:
        self.sampler.set_epoch(epoch)
        return self.sampler.batches()

    def step(self, batch: list[int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """(loss, objective to minimise, counts) for one global batch of text indices."""
        indices = batch
        batch = collate([self.train_set[i] for i in self.shard.take(indices)]).to(device)
        out = self.runner(batch.ids, batch.lengths, batch.mask)
        weight = None if self.class_weight is None else self.class_weight.to(device)
        smoothing = self.recipe.train.label_smoothing
        if self.shard.world == 1:
            loss = F.cross_entropy(out.logits, batch.labels, weight=weight, label_smoothing=smoothing)
        else:
            losses = F.cross_entropy(out.logits, batch.labels, weight=weight, label_smoothing=smoothing, reduction="none")
            labels = self.train_set.labels[indices]
            count = float(len(indices) if weight is None else self.class_weight[labels].sum())
            loss = self.shard.mean(losses.sum(), count)
        objective = loss if out.penalty is None else loss + self.recipe.model.attention_penalty * out.penalty
        correct = int((out.logits.argmax(1) == batch.labels).sum())
        return loss, objective, {"correct": correct, "n": len(batch.labels), "tokens": int(batch.lengths.sum())}

    def validate(self, device: torch.device) -> dict:
        report = evaluate_classifier(self.model, self.validation_set, self.label_map.names, device=device)
        return {key: report[key] for key in ("loss", "accuracy", "macro_f1", "n")}

    def carried(self) -> dict[str, torch.Tensor]:
        return {}  # nothing outlives a step

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        pass


class LanguageModelTask:
    """Truncated back-propagation through time over the corpus as ``batch_size`` contiguous streams.

    The recurrent state is carried from each window to the next and detached, so gradients flow back
    ``bptt`` steps while the state sees the whole stream. Each epoch starts the streams at a seeded offset
    below ``bptt``, so that windows do not always cut the text at the same places.
    """

    kind = "language_model"
    score_name = "loss"
    higher_is_better = False

    def __init__(self, recipe: Recipe, saved: checkpoint.Checkpoint | None, log: Callable[[str], None]):
        self.recipe = recipe
        prepared = prepare_corpus(recipe, tokenizer=saved.tokenizer if saved is not None else None)
        if saved is not None:
            self.model = saved.model
        else:
            torch.manual_seed(recipe.seed)
            self.model = CharLM(recipe.model, prepared.tokenizer.vocab_size)
        self.tokenizer, self.label_map = prepared.tokenizer, None
        self.model_args = {"vocab_size": self.tokenizer.vocab_size}
        self.train_ids, self.validation_ids = prepared.train_ids, prepared.validation_ids
        self.bptt = recipe.batching.bptt
        self.usable = len(self.train_ids) - (self.bptt - 1)  # the same stream length whatever the offset
        self.streams = LMStreams(self.train_ids[: self.usable], recipe.batching.batch_size or 64, self.bptt)
        self.state = None  # this process's streams' state
        self.runner, self.shard = self.model, Shard()

    def steps_per_epoch(self) -> int:
        return len(self.streams)

    def epoch(self, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(self.recipe.seed * 1_000_003 + epoch)
        offset = int(torch.randint(self.bptt, (1,), generator=generator)) if epoch > 0 else 0
        self.state = None
        return list(LMStreams(self.train_ids[offset : offset + self.usable], self.streams.batch_size, self.bptt))

    def step(self, batch: tuple[torch.Tensor, torch.Tensor], device: torch.device) -> tuple[torch.Tensor, torch.Tensor, dict]:
        inputs, targets = self.shard.take(batch[0]).to(device), self.shard.take(batch[1]).to(device)  # (B, T)
        logits, state = self.runner(inputs, self.state)  # (B, T, V)
        self.state = detach_state(state)
        if self.shard.world == 1:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)
        else:
            total = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX, reduction="sum")
            loss = self.shard.mean(total, float((batch[1] != IGNORE_INDEX).sum()))
        valid = targets != IGNORE_INDEX
        correct, n = int((logits.argmax(-1) == targets)[valid].sum()), int(valid.sum())
        return loss, loss, {"correct": correct, "n": n, "tokens": n}

    def validate(self, device: torch.device) -> dict:
        report = evaluate_language_model(self.model, self.validation_ids, device=device)
        return {key: report[key] for key in ("loss", "bpc", "perplexity", "accuracy", "n_chars")}

    def carried(self) -> dict[str, torch.Tensor]:
        """The state of every stream (L, B, H), gathered from all processes (a collective under torchrun)."""
        state = None if self.state is None else [s.cpu() for s in self.state]
        if self.shard.world > 1:
            parts = [None] * self.shard.world
            dist.all_gather_object(parts, state)
            if parts[0] is not None:
                state = [torch.empty(s.shape[0], self.streams.batch_size, s.shape[2]) for s in parts[0]]
                for rank, part in enumerate(parts):
                    for whole, mine in zip(state, part):
                        whole[:, rank :: self.shard.world] = mine
        return {} if state is None else {f"state.{i}": s for i, s in enumerate(state)}

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        states = [tensors[k] for k in sorted(tensors) if k.startswith("state.")]
        self.state = tuple(s[:, self.shard.rank :: self.shard.world].contiguous() for s in states) if states else None


class ForecastingTask:
    """Windows of a numeric series, shuffled each epoch; mean squared error in scaled units.

    The scaling comes from the train part alone and travels with the model. The best checkpoint is the
    one with the lowest validation RMSE of the model's own horizon, in the series' units.
    """

    kind = "forecaster"
    score_name = "rmse"
    higher_is_better = False

    def __init__(self, recipe: Recipe, saved: checkpoint.Checkpoint | None, log: Callable[[str], None]):
        self.recipe, self.series = recipe, load_series(recipe)
        if saved is not None:
            self.model = saved.model
        else:
            torch.manual_seed(recipe.seed)
            self.model = Forecaster(recipe.model, *self.series.scaling())
        self.tokenizer, self.label_map, self.model_args = None, None, {}
        self.runner, self.shard = self.model, Shard()
        config, horizon = recipe.series, recipe.model.horizon
        pairs = step_targets if config.per_step_loss else windows
        inputs, targets = pairs(self.series.values, 0, self.series.bounds[0], config.window, horizon)
        if len(inputs) == 0:
            raise DataError(
                f"{self.series.name}: the train part is too short for a window of {config.window} and horizon {horizon}"
            )
        with torch.no_grad():
            self.inputs = self.model.normalize(torch.from_numpy(inputs))
            self.targets = self.model.normalize(torch.from_numpy(targets))
        self.batch_size = recipe.batching.batch_size or 64

    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.inputs) / self.batch_size)

    def epoch(self, epoch: int) -> list[torch.Tensor]:
        generator = torch.Generator().manual_seed(self.recipe.seed * 1000 + epoch)
        return list(torch.randperm(len(self.inputs), generator=generator).split(self.batch_size))

    def step(self, batch: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, dict]:
        mine = self.shard.take(batch)
        inputs, targets = self.inputs[mine].to(device), self.targets[mine].to(device)
        outputs = self.runner(inputs)  # (B, T, horizon)
        if not self.recipe.series.per_step_loss:
            outputs = outputs[:, -1]  # (B, horizon)
        if self.shard.world == 1:
            loss = F.mse_loss(outputs, targets)
        else:
            loss = self.shard.mean(((outputs - targets) ** 2).sum(), float(len(batch) * targets[0].numel()))
        return loss, loss, {"n": len(batch), "tokens": inputs.numel()}

    def validate(self, device: torch.device) -> dict:
        report = evaluate_forecaster(self.model, self.series, "validation", self.recipe.series.window, with_baselines=False)
        return {
            "loss": report["model"]["rmse"] ** 2,
            "rmse": report["model"]["rmse"],
            "mae": report["model"]["mae"],
            "n": report["n"],
        }

    def carried(self) -> dict[str, torch.Tensor]:
        return {}

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        pass


TASKS = {"classification": ClassificationTask, "language_model": LanguageModelTask, "forecasting": ForecastingTask}


def train(
    recipe: Recipe,
    out_dir: str | Path,
    resume: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
    should_stop: Callable[[dict], bool] | None = None,
) -> dict:
    """Train the recipe's model into ``out_dir``; returns the best validation figures and paths.

    ``resume`` continues from ``out_dir/last``. ``should_stop(state)`` is asked after every checkpoint
    and ends the run there when it answers True (as an interruption would).
    """
    out_dir = Path(out_dir)
    log = log or (lambda message: print(message, file=sys.stderr))
    config = recipe.train
    shard, started_group = _join_process_group(config.device)
    main = shard.rank == 0  # only the first process writes logs and checkpoints
    device = pick_device(config.device)
    if device.type == "cuda" and shard.world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    task_class = TASKS[recipe.task]
    saved = None
    if main:
        checkpoint.recover(out_dir / "last")
        checkpoint.recover(out_dir / "best")
    _barrier(shard)
    if resume:
        saved = checkpoint.load(out_dir / "last", kind=task_class.kind)
    elif (out_dir / "last").exists():
        raise ConfigError(f"{out_dir} already holds a run: continue it with --resume, or choose another --out")
    _barrier(shard)  # every process has checked before the first one writes
    task = task_class(recipe, saved, log)
    model = task.model.to(device)
    if shard.world > 1:
        task.shard = shard
        task.runner = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = make_optimizer(model, config)
    state = {
        "step": 0,
        "epoch": 0,
        "batch": 0,
        "best_score": None,
        "best_step": None,
        "evals_since_best": 0,
        "seconds": 0.0,
    }
    carried = None
    if resume:
        state = checkpoint.load_trainer_state(out_dir / "last", optimizer)
        carried = {k: v.to(device) for k, v in state.pop("tensors").items()}
    total_steps = min(config.max_steps or math.inf, config.epochs * task.steps_per_epoch())
    higher_is_better = task.higher_is_better
    started = time.perf_counter() - state["seconds"]  # wall time of the run, across resumes
    metrics_path = out_dir / "metrics.jsonl"
    history = _history_until(metrics_path, state["step"])  # a resumed run forgets what came after its checkpoint
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        metrics_file = metrics_path.open("w", encoding="utf-8")
    else:
        metrics_file = open(os.devnull, "w")  # noqa: SIM115 (closed with the real one)
    metrics_file.writelines(json.dumps(entry) + "\n" for entry in history)

    def record(entry: dict) -> None:
        history.append(entry)
        metrics_file.write(json.dumps(entry) + "\n")
        metrics_file.flush()

    def save(kind: str) -> None:
        tensors = task.carried() if kind == "last" else None  # every process takes part: it may gather
        if not main:
            return
        checkpoint.save(
            out_dir / kind,
            kind=task.kind,
            model=model,
            model_args=task.model_args,
            recipe=recipe.to_dict(),
            tokenizer=task.tokenizer,
            label_map=task.label_map,
            optimizer=optimizer if kind == "last" else None,
            trainer=state if kind == "last" else None,
            tensors=tensors,
        )

    show = main and (sys.stderr.isatty() if progress is None else progress)
    bar = tqdm(total=total_steps, initial=state["step"], disable=not show, file=sys.stderr, dynamic_ncols=True, unit="step")
    window = _new_window()
    stop = state["step"] >= total_steps
    signals = []  # SIGINT / SIGTERM received: finish the step, save last/ and stop
    handled = (signal.SIGINT, signal.SIGTERM) if threading.current_thread() is threading.main_thread() else ()
    previous = {number: signal.signal(number, lambda number, frame: signals.append(number)) for number in handled}
    try:
        while not stop:
            batches = task.epoch(state["epoch"])
            if carried is not None:  # resuming within an epoch: the state it had reached
                task.restore(carried)
                carried = None
            for index in range(state["batch"], len(batches)):
                lr = learning_rate(config, state["step"], total_steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                model.train()
                loss, objective, counts = task.step(batches[index], device)
                optimizer.zero_grad(set_to_none=True)
                objective.backward()
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm if config.clip_norm > 0 else math.inf)
                nonfinite, interrupted = _any(shard, [not bool(torch.isfinite(loss)), bool(signals)], device)
                if nonfinite:
                    raise DataError(f"loss became {loss.item()} at step {state['step'] + 1}; the last checkpoint is intact")
                optimizer.step()
                state["step"] += 1
                state["batch"] = index + 1
                window["loss"] += loss.item()
                window["norm"] += norm.item()
                window["steps"] += 1
                for key, value in counts.items():
                    window[key] += value
                bar.update(1)
                if state["step"] % config.log_every == 0 or state["step"] == total_steps:
                    seconds = time.perf_counter() - window["start"]
                    entry = {
                        "split": "train",
                        "step": state["step"],
                        "epoch": state["epoch"],
                        "loss": window["loss"] / window["steps"],
                        **({"accuracy": window["correct"] / max(1, window["n"])} if "correct" in counts else {}),
                        "lr": lr,
                        "grad_norm": window["norm"] / window["steps"],  # before clipping
                        "tokens_per_s": window["tokens"] / seconds,
                        "elapsed_s": time.perf_counter() - started,
                    }
                    record(entry)
                    shown = {"acc": f"{entry['accuracy']:.3f}"} if "accuracy" in entry else {}
                    bar.set_postfix(loss=f"{entry['loss']:.3f}", **shown, tok_s=f"{entry['tokens_per_s']:,.0f}")
                    window = _new_window()
                if state["step"] % config.eval_every == 0 or state["step"] == total_steps:
                    report = _from_main(shard, task.validate(device))  # every process decides alike
                    state["seconds"] = time.perf_counter() - started
                    where = {"split": "validation", "step": state["step"], "epoch": state["epoch"]}
                    record({**where, **report, "elapsed_s": state["seconds"]})
                    score, best = report[task.score_name], state["best_score"]
                    if best is None or (score > best if higher_is_better else score < best):
                        state.update(best_score=score, best_step=state["step"], evals_since_best=0, best=report)
                        save("best")
                    else:
                        state["evals_since_best"] += 1
                    save("last")
                    if main:
                        plot_curves(history, out_dir / "curves.png")
                    window["start"] = time.perf_counter()  # validation time is not training throughput
                    if config.patience is not None and state["evals_since_best"] >= config.patience:
                        name, runs = task.score_name, config.patience
                        log(f"seqtext: stopping early at step {state['step']}: no better validation {name} in {runs} runs")
                        stop = True
                    if should_stop is not None and should_stop(state):
                        stop = True
                if interrupted:
                    state["seconds"] = time.perf_counter() - started
                    save("last")
                    raise Interrupted(
                        f"interrupted at step {state['step']}; the run is saved in {out_dir / 'last'}: "
                        f"continue it with `seqtext train --resume {out_dir}`"
                    )
                if stop or state["step"] >= total_steps:
                    stop = True
                    break
            else:
                state["epoch"] += 1
                state["batch"] = 0
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        bar.close()
        metrics_file.close()
        if started_group:
            dist.destroy_process_group()
    return {
        "run": str(out_dir),
        "best": str(out_dir / "best"),
        "best_step": state["best_step"],
        "steps": state["step"],
        **state.get("best", {}),
    }


def train_classifier(recipe: Recipe, out_dir: str | Path, **options) -> dict:
    """``train`` for a classification recipe (an error for any other task)."""
    if recipe.task != "classification":
        raise ConfigError(f"a {recipe.task} recipe does not train a classifier")
    return train(recipe, out_dir, **options)


def _join_process_group(device: str) -> tuple[Shard, bool]:
    """Under torchrun (WORLD_SIZE > 1), join the process group: nccl on GPUs, gloo on CPUs.
    Returns this process's shard and whether this call started the group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Shard(), False
    started = not dist.is_initialized()
    if started:
        dist.init_process_group("nccl" if device != "cpu" and torch.cuda.is_available() else "gloo")
    return Shard(dist.get_rank(), dist.get_world_size()), started


def _barrier(shard: Shard) -> None:
    if shard.world > 1:
        dist.barrier()


def _any(shard: Shard, flags: list[bool], device: torch.device) -> list[bool]:
    """Each flag, true if it is true in any process (one collective for all of them)."""
    if shard.world == 1:
        return flags
    tensor = torch.tensor(flags, dtype=torch.int32, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return [bool(x) for x in tensor.tolist()]


def _from_main(shard: Shard, value):
    """The first process's ``value`` in every process."""
    if shard.world == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _new_window() -> dict:
    """Running sums between two training log lines."""
    return {"loss": 0.0, "norm": 0.0, "steps": 0, "correct": 0, "n": 0, "tokens": 0, "start": time.perf_counter()}


def _history_until(path: Path, step: int) -> list[dict]:
    """The log up to ``step``. A line cut short by a crash is dropped: it came after the checkpoint."""
    if not path.exists() or step == 0:
        return []
    entries = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("step"), int) and entry["step"] <= step:
            entries.append(entry)
    return entries
