"""The training loop: cross-entropy, gradient clipping, a learning-rate schedule, validation at fixed
steps, early stopping, and the best and last checkpoints, resumable exactly. One loop trains every kind
of model; its task (its package's ``task``, a ``kinds.Task``) says what a batch, a step and a validation are.

A run directory holds ``best/`` and ``last/`` checkpoints, ``metrics.jsonl`` (one JSON object per
training log line and per validation) and ``curves.png``. The order of the data depends only on
(seed, epoch), and the trainer state records the position within the epoch and the RNG state, so a run
resumed from ``last/`` takes the same steps with the same losses as one that was never interrupted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from seqtext import checkpoint, kinds, precision
from seqtext.card import model_card
from seqtext.data import IN_MEMORY
from seqtext.distributed import join_process_group, process_device
from seqtext.errors import CheckpointError, ConfigError, Interrupted, TrainingError
from seqtext.optim import learning_rate, make_optimizer, set_learning_rate, unfreeze_for_epoch
from seqtext.plots import plot_curves
from seqtext.progress import progress_bar
from seqtext.recipe import Recipe


@dataclass
class TrainState:
    """What a run carries from step to step, saved in ``last/trainer.json`` and read back on resume."""

    step: int = 0  # optimizer steps taken
    epoch: int = 0
    batch: int = 0  # batches of the current epoch done
    best_score: float | None = None
    best_step: int | None = None
    evals_since_best: int = 0
    seconds: float = 0.0  # wall time of the run, across resumes
    best: dict = field(default_factory=dict)  # the best validation's figures
    latest: dict = field(default_factory=dict)  # the latest validation's figures
    fitted_steps: int | None = None  # the steps a time budget (train.max_minutes) allows, once measured
    refits: int = 0  # fitted again from the pace since the last fit, a third and two thirds of the way

    @classmethod
    def from_saved(cls, saved: dict, where: Path) -> TrainState:
        missing = [key for key in ("step", "epoch", "batch") if not isinstance(saved.get(key), int)]
        if missing:
            raise CheckpointError(f"{where}/trainer.json: no {', '.join(missing)}: cannot resume")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in saved.items() if key in known})

    def improves(self, score: float, higher_is_better: bool) -> bool:
        best = self.best_score
        return best is None or (score > best if higher_is_better else score < best)


FIT_FROM, FIT_UNTIL = 5, 25  # steps timed to fit a run to train.max_minutes (the first few are slower)
REFIT_AT = (1 / 3, 2 / 3)  # of the fitted steps: fit again from the pace since the last fit, validations included


@dataclass
class _Window:
    """Running sums between two training log lines."""

    loss: float = 0.0
    norm: float = 0.0
    steps: int = 0
    correct: int = 0
    n: int = 0
    tokens: int = 0
    start: float = field(default_factory=time.perf_counter)


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is cuda, but torch sees no CUDA device", parameter="train.device")
    return torch.device("cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu")


def train(
    recipe: Recipe,
    out_dir: str | Path,
    resume: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
    should_stop: Callable[[TrainState], bool] | None = None,
    data=None,
    notes: tuple[str, ...] = (),
) -> dict:
    """Train the recipe's model into ``out_dir``; returns the best validation figures and paths.

    ``resume`` continues from ``out_dir/last``. ``data`` (in-memory splits) replaces the recipe's dataset.
    ``should_stop(state)`` is asked after every validation and ends the run there when it answers True.
    ``progress`` shows a bar (default: when stderr is a terminal or a notebook). ``notes`` are logged once
    the data has loaded (what was decided about the recipe: a bad file is then still a one-line error).
    """
    if data is not None:  # what the run's recipe records: the data itself is not saved
        recipe = dataclasses.replace(recipe, data=dataclasses.replace(recipe.data, dataset=IN_MEMORY))
    log = log or (lambda message: print(message, file=sys.stderr))
    run = Run(recipe, Path(out_dir), resume, log, data)
    for note in notes if run.shard.main else ():
        log(note)
    try:
        with _signals_caught() as signals, progress_bar(run.total_steps, run.state.step, run.shard.main and progress) as bar:
            stop = run.state.step >= run.total_steps
            while not stop:
                batches = run.start_epoch()
                for index in range(run.state.batch, len(batches)):
                    interrupted = run.step(batches[index], index, bool(signals))
                    bar.total = run.total_steps  # a time budget fits it after a few steps
                    bar.update(1)
                    finished = run.state.step >= run.total_steps or run.out_of_time()
                    if run.state.step % run.config.log_every == 0 or finished:
                        bar.set_postfix(run.log_window())
                    if run.state.step % run.config.eval_every == 0 or finished:
                        stop = run.validate_and_save()
                        stop = stop or (should_stop is not None and should_stop(run.state))
                    if interrupted:
                        run.save_and_interrupt()
                    if stop or finished:
                        stop = True
                        break
                else:
                    run.state.epoch += 1
                    run.state.batch = 0
        run.shard.barrier()  # the first process has saved its checkpoints before any process reads them
    finally:
        run.close()
    state = run.state
    return {
        "run": str(run.out_dir),
        "best": str(run.out_dir / "best"),
        "best_step": state.best_step,
        "steps": state.step,
        **state.best,
    }


class Run:
    """One training run's parts: its task, model, optimizer, state, log file and process group. ``train``
    drives it; a benchmark takes its steps one at a time (``start_epoch``, then ``step``) to time the
    library's own training step."""

    def __init__(self, recipe: Recipe, out_dir: Path, resume: bool, log: Callable[[str], None], data):
        self.recipe, self.config, self.out_dir, self.log = recipe, recipe.train, out_dir, log
        self.shard, self.started_group = join_process_group(self.config.device)
        self.device = process_device(pick_device(self.config.device), self.shard)
        kind = kinds.get(recipe.kind)
        saved = self._saved_run(kind.name, resume)
        self.precision, why = self._precision(saved)
        if self.config.precision == "auto" and self.shard.main:
            log(f"seqtext: train.precision auto -> {self.precision}: {why}")
        self.precision_card = {"trained": self.precision, "asked": self.config.precision, "why": why}
        self.task = kind.load("task")(recipe, saved, log, data)
        self.model = self.task.model.to(self.device)
        if self.shard.world > 1:
            self.task.shard = self.shard
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            # an adaptive softmax's cluster that no target of a batch falls in gets no gradient that step
            unused = getattr(self.model, "adaptive", False)
            self.task.runner = DistributedDataParallel(self.model, device_ids=device_ids, find_unused_parameters=unused)
        if self.config.unfreeze and self.shard.world > 1:
            raise ConfigError(
                "train.unfreeze changes which weights train each epoch, which DistributedDataParallel cannot follow"
            )
        self.optimizer = make_optimizer(self.model, self.config)
        self.state, self.carried = TrainState(), None
        if resume:
            saved_state = checkpoint.load_trainer_state(out_dir / "last", self.optimizer)
            self.carried = {k: v.to(self.device) for k, v in saved_state.pop("tensors").items()}
            self.state = TrainState.from_saved(saved_state, out_dir / "last")
        self._epoch_steps = self._epochs(log) * self.task.steps_per_epoch()
        self.total_steps = min(self.config.max_steps or math.inf, self._epoch_steps)
        if self.state.fitted_steps is not None:
            self.total_steps = min(self.total_steps, self.state.fitted_steps)
        self.started = time.perf_counter() - self.state.seconds
        # train.max_minutes: the steps at which _fit_to_budget reads the clock, and its last reading (step, time)
        self.fit_steps, self.last_fit = {FIT_FROM, FIT_UNTIL}, None
        self.history = _history_until(out_dir / "metrics.jsonl", self.state.step)  # forget what came after the checkpoint
        if self.shard.main:
            out_dir.mkdir(parents=True, exist_ok=True)
            self.metrics = (out_dir / "metrics.jsonl").open("w", encoding="utf-8")
        else:
            self.metrics = open(os.devnull, "w")  # noqa: SIM115 (closed in close())
        self.metrics.writelines(json.dumps(entry) + "\n" for entry in self.history)
        self.window, self.lr = _Window(), self.config.lr

    def _epochs(self, log) -> int:
        """``train.epochs``, raised towards ``train.min_steps`` on small data but not past ``train.max_epochs``
        (said once, with why)."""
        per_epoch, epochs = self.task.steps_per_epoch(), self.config.epochs
        if self.config.min_steps and epochs * per_epoch < self.config.min_steps:
            needed = math.ceil(self.config.min_steps / per_epoch)
            epochs = max(epochs, min(needed, self.config.max_epochs or needed))
        if epochs > self.config.epochs:
            capped = f" (train.max_epochs {self.config.max_epochs})" if epochs < needed else ""
            log(f"seqtext: {per_epoch:,} steps an epoch: {epochs} epochs instead of {self.config.epochs}, "
                f"to reach train.min_steps {self.config.min_steps:,}{capped}")  # fmt: skip
        return epochs

    def _precision(self, saved: checkpoint.Checkpoint | None) -> tuple[str, str]:
        """train.precision made concrete, and why. A resumed ``auto`` run keeps what it chose when it started
        (measured again, it might switch halfway); every process takes the first one's choice."""
        before = ((saved.card.get("precision") or {}) if saved is not None else {}).get("trained")
        if self.config.precision == "auto" and before in ("fp32", "bf16"):
            return before, "as the run chose when it started"
        return self.shard.from_main(precision.resolve(self.config.precision, self.device, "train.precision"))

    def _saved_run(self, kind: str, resume: bool) -> checkpoint.Checkpoint | None:
        """The checkpoint to resume from (``resume``), or None after checking that the directory holds no run."""
        if self.shard.main:  # finish a save that a crash cut short
            checkpoint.recover(self.out_dir / "last")
            checkpoint.recover(self.out_dir / "best")
        self.shard.barrier()
        saved = None
        if resume:
            saved = checkpoint.load(self.out_dir / "last", kind=kind)
        elif (self.out_dir / "last").exists():
            raise TrainingError(f"{self.out_dir} already holds a run: resume it, or choose another output directory", "resume")
        self.shard.barrier()  # every process has checked before the first one writes
        return saved

    def start_epoch(self) -> list:
        if self.config.unfreeze:
            unfreeze_for_epoch(self.model, self.state.epoch)
        batches = self.task.epoch(self.state.epoch)
        if self.carried is not None:  # resuming within an epoch: the state it had reached
            self.task.restore(self.carried)
            self.carried = None
        return batches

    def step(self, batch, index: int, signalled: bool) -> bool:
        """One optimizer step; returns whether any process was asked to stop."""
        self.lr = learning_rate(self.config, self.state.step, self.total_steps)
        set_learning_rate(self.optimizer, self.lr)
        self.model.train()
        with precision.autocast(self.precision, self.device):
            loss, objective, counts = self.task.step(batch, self.device)
        self.optimizer.zero_grad(set_to_none=True)
        objective.backward()
        clip = self.config.clip_norm if self.config.clip_norm > 0 else math.inf
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        nonfinite, interrupted = self.shard.any([not bool(torch.isfinite(loss)), signalled], self.device)
        if nonfinite:
            step = self.state.step + 1
            raise TrainingError(f"loss became {loss.item()} at step {step}; the last checkpoint is intact")
        self.optimizer.step()
        self.state.step += 1
        self.state.batch = index + 1
        window = self.window
        window.loss += loss.item()
        window.norm += norm.item()
        window.steps += 1
        window.correct += counts.get("correct", 0)
        window.n += counts["n"]
        window.tokens += counts["tokens"]
        self.has_accuracy = "correct" in counts
        self._fit_to_budget()
        return interrupted

    def _fit_to_budget(self) -> None:
        """With ``train.max_minutes``: time steps FIT_FROM to FIT_UNTIL, then fit the run (and so the
        learning-rate schedule, which decays to 0 at the last step) to the minutes left, keeping a tenth
        for validation and checkpoints. A third and two thirds of the way, fit it again from the pace since
        the last fit, validations and checkpoints included: steps get faster as a run goes on, and one fit
        from the first steps left a sixth of a 30-minute budget unused. Every process fits alike (the first
        one's measure, at the same steps)."""
        step = self.state.step
        if self.config.max_minutes is None or self.state.refits == len(REFIT_AT) or step not in self.fit_steps:
            return  # the clock is read only at the steps that time or fit
        now = time.perf_counter()
        left = self.config.max_minutes * 60 - (now - self.started)
        if self.state.fitted_steps is None and step == FIT_FROM:
            self.last_fit = (step, now)
        elif self.state.fitted_steps is None and self.last_fit:
            per_step = (now - self.last_fit[1]) / (FIT_UNTIL - FIT_FROM)
            self._fit(step, now, int(0.9 * left / per_step), f"{per_step:.3f} s a step")
        elif self.state.fitted_steps is not None and self.last_fit:
            last_step, last_clock = self.last_fit
            per_step = (now - last_clock) / (step - last_step)
            self.state.refits += 1
            self._fit(step, now, int(0.97 * left / per_step), f"{per_step:.3f} s a step since step {last_step}")

    def _fit(self, step: int, now: float, more: int, pace: str) -> None:
        self.state.fitted_steps = self.shard.from_main(step + max(0, more))
        self.total_steps = min(self.config.max_steps or math.inf, self._epoch_steps, self.state.fitted_steps)
        self.log(f"seqtext: {pace}: {self.total_steps:,} steps fit train.max_minutes")
        if self.state.refits < len(REFIT_AT):
            at = FIT_UNTIL + int(REFIT_AT[self.state.refits] * (self.state.fitted_steps - FIT_UNTIL))
            self.last_fit, self.fit_steps = (step, now), {max(step + 1, at)}

    def out_of_time(self) -> bool:
        """Past ``train.max_minutes`` of training (across resumes): the run validates, saves and stops."""
        if self.config.max_minutes is None:
            return False
        over = time.perf_counter() - self.started > self.config.max_minutes * 60
        return self.shard.any([over], self.device)[0]

    def log_window(self) -> dict:
        """Write the training log line for the steps since the last one; returns what the progress bar shows."""
        window, state = self.window, self.state
        seconds = time.perf_counter() - window.start
        entry = {
            "split": "train",
            "step": state.step,
            "epoch": state.epoch,
            "loss": window.loss / window.steps,
            **({"accuracy": window.correct / max(1, window.n)} if self.has_accuracy else {}),
            "lr": self.lr,
            "grad_norm": window.norm / window.steps,  # before clipping
            "tokens_per_s": window.tokens / seconds,
            "elapsed_s": time.perf_counter() - self.started,
        }
        self._record(entry)
        self.window = _Window()
        shown = {"acc": f"{entry['accuracy']:.3f}"} if "accuracy" in entry else {}
        return {"loss": f"{entry['loss']:.3f}", **shown, "tok_s": f"{entry['tokens_per_s']:,.0f}"}

    def validate_and_save(self) -> bool:
        """Validate, save ``best/`` when it is better and ``last/`` always; returns whether to stop early."""
        state, task = self.state, self.task
        with precision.autocast(self.precision, self.device):
            report = self.shard.from_main(task.validate(self.device))  # every process decides alike
        state.seconds = time.perf_counter() - self.started
        self._record({"split": "validation", "step": state.step, "epoch": state.epoch, **report, "elapsed_s": state.seconds})
        state.latest = {"step": state.step, **report}
        if state.improves(report[task.score_name], task.higher_is_better):
            state.best_score, state.best_step, state.evals_since_best, state.best = report[task.score_name], state.step, 0, report
            self._save("best")
        else:
            state.evals_since_best += 1
        self._save("last")
        if self.shard.main:
            plot_curves(self.history, self.out_dir / "curves.png")
        self.window.start = time.perf_counter()  # validation time is not training throughput
        patience = self.config.patience
        if patience is not None and state.evals_since_best >= patience:
            self.log(f"seqtext: stopping early at step {state.step}: no better validation {task.score_name} in {patience} runs")
            return True
        return False

    def save_and_interrupt(self) -> None:
        self.state.seconds = time.perf_counter() - self.started
        self._save("last")
        raise Interrupted(
            f"interrupted at step {self.state.step}; the run is saved in {self.out_dir / 'last'}", str(self.out_dir)
        )

    def _save(self, which: str) -> None:
        tensors = self.task.carried() if which == "last" else None  # every process takes part: it may gather
        if not self.shard.main:
            return
        state, task = self.state, self.task
        figures = {"step": state.best_step, **state.best} if which == "best" else state.latest
        card = model_card(task.kind, self.recipe.to_dict(), task.tokenizer, task.label_map, task.data_summary(), figures)
        card["precision"] = self.precision_card
        checkpoint.save(
            self.out_dir / which,
            kind=task.kind,
            model=self.model,
            model_args=task.model_args,
            recipe=self.recipe.to_dict(),
            tokenizer=task.tokenizer,
            label_map=task.label_map,
            optimizer=self.optimizer if which == "last" else None,
            trainer=dataclasses.asdict(state) if which == "last" else None,
            tensors=tensors,
            card=card,
        )

    def _record(self, entry: dict) -> None:
        self.history.append(entry)
        self.metrics.write(json.dumps(entry) + "\n")
        self.metrics.flush()

    def close(self) -> None:
        if hasattr(self, "metrics"):
            self.metrics.close()
        if self.started_group:
            dist.destroy_process_group()


@contextlib.contextmanager
def _signals_caught() -> Iterator[list[int]]:
    """SIGINT and SIGTERM, while training, are noted in the list rather than raised: the loop finishes its
    step, saves ``last/`` and stops. The previous handlers come back afterwards."""
    received: list[int] = []
    handled = (signal.SIGINT, signal.SIGTERM) if threading.current_thread() is threading.main_thread() else ()
    previous = {number: signal.signal(number, lambda number, frame: received.append(number)) for number in handled}
    try:
        yield received
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


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
