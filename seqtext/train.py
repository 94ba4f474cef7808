"""The training loop: cross-entropy, gradient clipping, a learning-rate schedule, validation at fixed
steps, early stopping, and the best and last checkpoints, resumable exactly.

A run directory holds ``best/`` and ``last/`` checkpoints, ``metrics.jsonl`` (one JSON object per
training log line and per validation) and ``curves.png``. The order of the data depends only on
(seed, epoch), and the trainer state records the position within the epoch and the RNG state, so a run
resumed from ``last/`` takes the same steps with the same losses as one that was never interrupted.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from seqtext import checkpoint
from seqtext.batching import collate
from seqtext.errors import ConfigError, DataError
from seqtext.evaluate import evaluate_classifier
from seqtext.models.classifier import TextClassifier
from seqtext.pipeline import bucket_sampler, prepare_classification
from seqtext.plots import plot_curves
from seqtext.recipe import Recipe, TrainConfig
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


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    # no weight decay on biases and the embedding: decaying rare words' vectors to 0 only forgets them
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and not n.startswith("embedding.")]
    keep = [p for n, p in model.named_parameters() if p.ndim < 2 or n.startswith("embedding.")]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": keep, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr)


def train_classifier(
    recipe: Recipe,
    out_dir: str | Path,
    resume: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
    should_stop: Callable[[dict], bool] | None = None,
) -> dict:
    """Train the recipe's classifier into ``out_dir``; returns the best validation figures and paths.

    ``resume`` continues from ``out_dir/last``. ``should_stop(state)`` is asked after every checkpoint
    and ends the run there when it answers True (as an interruption would).
    """
    out_dir = Path(out_dir)
    log = log or (lambda message: print(message, file=sys.stderr))
    config = recipe.train
    device = pick_device(config.device)
    trainer_state = None
    if resume:
        saved = checkpoint.load(out_dir / "last", kind="classifier")
        prepared = prepare_classification(recipe, tokenizer=saved.tokenizer)
        if saved.label_map != prepared.data.label_map:
            raise DataError(
                f"{out_dir}: the data's labels {prepared.data.label_map.names} differ from the run's {saved.label_map.names}"
            )
        model = saved.model
    else:
        if (out_dir / "last").exists():
            raise ConfigError(f"{out_dir} already holds a run: continue it with --resume, or choose another --out")
        prepared = prepare_classification(recipe)
        torch.manual_seed(recipe.seed)
        model = TextClassifier(recipe.model, prepared.tokenizer.vocab_size, len(prepared.data.label_map))
        if config.vectors:
            coverage = load_vectors(config.vectors, prepared.tokenizer, model.embedding.weight)
            log(f"seqtext: word vectors from {config.vectors} cover {coverage:.1%} of the vocabulary")
    model.to(device)
    optimizer = make_optimizer(model, config)
    if resume:
        trainer_state = checkpoint.load_trainer_state(out_dir / "last", optimizer)
    names = prepared.data.label_map.names
    train_set, validation_set = prepared.encoded["train"], prepared.encoded["validation"]
    sampler = bucket_sampler(train_set, recipe.batching, recipe.seed)
    total_steps = min(config.max_steps or math.inf, config.epochs * len(sampler))
    class_weight = None
    if config.class_weights == "balanced":
        counts = torch.bincount(train_set.labels, minlength=len(names)).double()
        class_weight = (counts.sum() / (len(names) * counts.clamp(min=1))).float().to(device)
    state = trainer_state or {
        "step": 0,
        "epoch": 0,
        "batch": 0,
        "best_accuracy": None,
        "best_step": None,
        "evals_since_best": 0,
        "seconds": 0.0,
    }
    started = time.perf_counter() - state["seconds"]  # wall time of the run, across resumes
    model_args = {"vocab_size": prepared.tokenizer.vocab_size, "num_classes": len(names)}
    metrics_path = out_dir / "metrics.jsonl"
    out_dir.mkdir(parents=True, exist_ok=True)
    history = _history_until(metrics_path, state["step"])  # a resumed run forgets what came after its checkpoint
    metrics_file = metrics_path.open("w", encoding="utf-8")
    metrics_file.writelines(json.dumps(entry) + "\n" for entry in history)

    def record(entry: dict) -> None:
        history.append(entry)
        metrics_file.write(json.dumps(entry) + "\n")
        metrics_file.flush()

    def save(kind: str) -> None:
        checkpoint.save(
            out_dir / kind,
            kind="classifier",
            model=model,
            model_args=model_args,
            recipe=recipe.to_dict(),
            tokenizer=prepared.tokenizer,
            label_map=prepared.data.label_map,
            optimizer=optimizer if kind == "last" else None,
            trainer=state if kind == "last" else None,
        )

    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=total_steps, initial=state["step"], disable=not show, file=sys.stderr, dynamic_ncols=True, unit="step")
    window = {"loss": 0.0, "correct": 0, "n": 0, "tokens": 0, "norm": 0.0, "steps": 0, "start": time.perf_counter()}
    stop = state["step"] >= total_steps
    try:
        while not stop:
            sampler.set_epoch(state["epoch"])
            batches = sampler.batches()
            for index in range(state["batch"], len(batches)):
                batch = collate([train_set[i] for i in batches[index]]).to(device)
                lr = learning_rate(config, state["step"], total_steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                model.train()
                out = model(batch.ids, batch.lengths, batch.mask)
                loss = F.cross_entropy(out.logits, batch.labels, weight=class_weight, label_smoothing=config.label_smoothing)
                objective = loss if out.penalty is None else loss + recipe.model.attention_penalty * out.penalty
                optimizer.zero_grad(set_to_none=True)
                objective.backward()
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm if config.clip_norm > 0 else math.inf)
                if not torch.isfinite(loss):
                    raise DataError(f"loss became {loss.item()} at step {state['step'] + 1}; the last checkpoint is intact")
                optimizer.step()
                state["step"] += 1
                state["batch"] = index + 1
                window["loss"] += loss.item()
                window["correct"] += (out.logits.argmax(1) == batch.labels).sum().item()
                window["n"] += len(batch.labels)
                window["tokens"] += int(batch.lengths.sum())
                window["norm"] += norm.item()
                window["steps"] += 1
                bar.update(1)
                if state["step"] % config.log_every == 0 or state["step"] == total_steps:
                    seconds = time.perf_counter() - window["start"]
                    entry = {
                        "split": "train",
                        "step": state["step"],
                        "epoch": state["epoch"],
                        "loss": window["loss"] / window["steps"],
                        "accuracy": window["correct"] / window["n"],
                        "lr": lr,
                        "grad_norm": window["norm"] / window["steps"],  # before clipping
                        "tokens_per_s": window["tokens"] / seconds,
                        "elapsed_s": time.perf_counter() - started,
                    }
                    record(entry)
                    bar.set_postfix(
                        loss=f"{entry['loss']:.3f}", acc=f"{entry['accuracy']:.3f}", tok_s=f"{entry['tokens_per_s']:,.0f}"
                    )
                    window = {
                        "loss": 0.0,
                        "correct": 0,
                        "n": 0,
                        "tokens": 0,
                        "norm": 0.0,
                        "steps": 0,
                        "start": time.perf_counter(),
                    }
                if state["step"] % config.eval_every == 0 or state["step"] == total_steps:
                    report = evaluate_classifier(model, validation_set, names, device=device)
                    state["seconds"] = time.perf_counter() - started
                    record(
                        {
                            "split": "validation",
                            "step": state["step"],
                            "epoch": state["epoch"],
                            **_headline(report),
                            "elapsed_s": state["seconds"],
                        }
                    )
                    if state["best_accuracy"] is None or report["accuracy"] > state["best_accuracy"]:
                        state.update(
                            best_accuracy=report["accuracy"], best_step=state["step"], evals_since_best=0, best=_headline(report)
                        )
                        save("best")
                    else:
                        state["evals_since_best"] += 1
                    save("last")
                    plot_curves(history, out_dir / "curves.png")
                    window["start"] = time.perf_counter()  # validation time is not training throughput
                    if config.patience is not None and state["evals_since_best"] >= config.patience:
                        runs = config.patience
                        log(f"seqtext: stopping early at step {state['step']}: no better validation accuracy in {runs} runs")
                        stop = True
                    if should_stop is not None and should_stop(state):
                        stop = True
                if stop or state["step"] >= total_steps:
                    stop = True
                    break
            else:
                state["epoch"] += 1
                state["batch"] = 0
    finally:
        bar.close()
        metrics_file.close()
    return {
        "run": str(out_dir),
        "best": str(out_dir / "best"),
        "best_step": state["best_step"],
        "steps": state["step"],
        **state.get("best", {}),
    }


def _headline(report: dict) -> dict:
    return {key: report[key] for key in ("loss", "accuracy", "macro_f1", "n")}


def _history_until(path: Path, step: int) -> list[dict]:
    if not path.exists() or step == 0:
        return []
    entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [entry for entry in entries if entry["step"] <= step]
