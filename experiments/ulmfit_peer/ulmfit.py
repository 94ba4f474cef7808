"""A peer for seqtext on IMDB: fastai's ULMFiT (AWD-LSTM), trained from scratch within wall-time budgets.

As in fastai's IMDB tutorial, but with ``pretrained=False`` (no WikiText-103 weights offline): an AWD-LSTM
language model on the texts of seqtext's IMDB train split and the 50,000 unlabelled reviews (never a test
text; the validation split's texts only with --lm-validation-texts, as seqtext's recipes/reviews-lm.yaml
reads all 25,000 train reviews), its encoder under a classifier trained with gradual unfreezing (the head,
then the top two and three layer groups, then all, with discriminative learning rates), the classifier
checkpoint picked by validation accuracy and scored once on the test split. Tokens and vocabulary are
fastai's defaults: its spaCy word tokenizer (``spacy.blank``, no model download) and rules, the language
model's vocabulary (at most 60,000 tokens seen at least --min-freq times) shared with the classifier.
Each fit is a one-cycle schedule driven by the share of its budget spent, so that it ends when time does,
whatever the speed. The budgets count training batches only; tokenizing and the validation and test
passes come on top, and the JSON line gives the minutes of each. At fastai's sizes (400/1152/3 layers,
a 60,000-word softmax) two CPU cores see a few percent of an epoch in 48 minutes and take hours over the
validation and test passes: give smaller sizes there.

It needs its own virtual environment, apart from seqtext's::

    python3 -m venv /work/venvs/ulmfit
    /work/venvs/ulmfit/bin/pip install --no-deps -r experiments/ulmfit_peer/requirements.txt

First write seqtext's split (10% of IMDB train held out, stratified by label and seeded) with seqtext's
environment, so that both see the very same rows::

    SEQTEXT_DATA=/work/shared/data HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 \\
        .venv/bin/python experiments/ulmfit_peer/ulmfit.py --write-splits /tmp/ulmfit-splits [--seed 0]

then train and score (one JSON line at the end; --limit N for a smoke test on N rows of each split)::

    /work/venvs/ulmfit/bin/python experiments/ulmfit_peer/ulmfit.py --splits /tmp/ulmfit-splits \\
        --lm-minutes 48 --clf-minutes 30 --seed 0 [--json out.json] [--limit N]

Without --splits it holds out its own stratified, seeded 10%, which are not seqtext's rows.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import write_section  # noqa: E402  (torch only: either environment has it)

SPLITS = ("train", "validation", "test")
VALIDATION_FRACTION = 0.1  # as recipes/imdb.yaml holds out
# Gradual unfreezing as in fastai's IMDB tutorial: (layer groups trained, from the top, 0 for all; the
# top group's learning rate as a share of --clf-lr; share of the budget, after the tutorial's 1, 1, 1, 2 epochs).
STAGES = ((-1, 1.0, 1), (-2, 0.5, 1), (-3, 0.25, 1), (0, 0.05, 2))
LAYER_DECAY = 2.6**4  # the bottom group's learning rate is the top one's divided by this
EPOCH_CAP = 10_000  # fits end on time, not on epochs
REPORT_SECONDS = 300


def write_splits(folder: Path, seed: int) -> None:
    """seqtext's IMDB splits as jsonl, labels by name (run with seqtext's environment)."""
    from seqtext.classifier.data import load_labelled
    from seqtext.recipe import load_recipe

    data = load_labelled(load_recipe(ROOT / "recipes" / "imdb.yaml", {"seed": seed}))
    names = data.label_map.names
    folder.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        table = data.splits[split]
        with open(folder / f"{split}.jsonl", "w", encoding="utf-8") as out:
            for text, label in zip(table["text"], table["label"]):
                out.write(json.dumps({"text": text, "label": names[label]}) + "\n")
        print(f"{folder / split}.jsonl: {len(table):,} rows")


def read_jsonl(path: Path) -> list[dict]:
    with (gzip.open if path.suffix == ".gz" else open)(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def hold_out(rows: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(train, validation): ``fraction`` of each label's rows held out at random."""
    rng = random.Random(seed)
    train, validation = [], []
    for label in sorted({row["label"] for row in rows}):
        members = [row for row in rows if row["label"] == label]
        rng.shuffle(members)
        cut = round(fraction * len(members))
        validation += members[:cut]
        train += members[cut:]
    return train, validation


def load_rows(args) -> tuple[dict[str, list[dict]], list[str], str]:
    """(labelled splits, unlabelled texts, where the split came from), each cut to --limit rows at random."""
    data = Path(args.data)
    if args.splits:
        splits = {split: read_jsonl(Path(args.splits) / f"{split}.jsonl") for split in SPLITS}
        source = f"seqtext ({args.splits})"
    else:
        train, validation = hold_out(read_jsonl(data / "train.jsonl.gz"), VALIDATION_FRACTION, args.seed)
        splits = {"train": train, "validation": validation, "test": read_jsonl(data / "test.jsonl.gz")}
        source = f"own stratified {VALIDATION_FRACTION:.0%} of train, seed {args.seed}"
    unsup = [row["text"] for row in read_jsonl(data / "unsup.jsonl.gz")]
    if args.limit:
        rng = random.Random(args.seed)  # a sample, not the head: the test file is sorted by label
        splits = {name: rng.sample(rows, min(args.limit, len(rows))) for name, rows in splits.items()}
        unsup = rng.sample(unsup, min(args.limit, len(unsup)))
    return splits, unsup, source


def fastai_callbacks():
    """The callbacks below, defined on demand so that --write-splits runs without fastai."""
    from fastai.callback.core import Callback, CancelFitException, CancelTrainException
    from fastai.callback.tracker import SaveModelCallback

    class TimeBudget(Callback):
        """Ends a fit once its training batches have taken ``seconds``, the epoch under way still validated,
        and sets the schedules' progress to the share of the budget spent. Says how far it is every few
        minutes, since an epoch on IMDB can outlast the whole budget."""

        order = SaveModelCallback.order + 1  # ends the fit after the checkpoint has seen the last epoch
        run_valid = False

        def __init__(self, label: str, seconds: float):
            self.label, self.seconds, self.spent, self.batches, self.tokens = label, seconds, 0.0, 0, 0
            self.reported = time.perf_counter()

        def progress(self) -> float:
            return min(1.0, (self.spent + time.perf_counter() - self.started) / self.seconds)

        def before_train(self):
            self.started = time.perf_counter()
            self.learn.pct_train = self.progress()

        def after_batch(self):
            self.batches += 1
            self.tokens += self.xb[0].numel()
            self.learn.pct_train = self.progress()
            if time.perf_counter() - self.reported >= REPORT_SECONDS:
                self.reported = time.perf_counter()
                print(
                    f"{self.label}: {self.learn.pct_train:.0%} of {self.seconds / 60:g} min, {self.batches:,} batches, "
                    f"train loss {float(self.learn.smooth_loss):.4f}",
                    flush=True,
                )
            if self.learn.pct_train >= 1:
                raise CancelTrainException

        def after_cancel_train(self):
            # The Recorder drops the train loss of a cancelled epoch, which shifts the columns that
            # SaveModelCallback reads its metric from.
            self.recorder.cancel_train = False

        def after_train(self):
            self.spent += time.perf_counter() - self.started

        def after_epoch(self):
            if self.spent >= self.seconds:
                raise CancelFitException

    class KeepBest(SaveModelCallback):
        """SaveModelCallback across the unfreezing stages, which go on from the latest weights: the best are
        loaded once, after the last stage."""

        def after_fit(self, **kwargs):
            self.run = True

    return TimeBudget, KeepBest


def train(args, work: Path) -> dict:
    """Both stages and the test score, the learners' files under ``work``."""
    import fastai
    import pandas as pd
    import torch
    from fastai.text.all import (
        AWD_LSTM,
        CategoryBlock,
        ColReader,
        ColSplitter,
        DataBlock,
        Perplexity,
        RandomSplitter,
        TextBlock,
        accuracy,
        awd_lstm_clas_config,
        awd_lstm_lm_config,
        language_model_learner,
        set_seed,
        text_classifier_learner,
        tokenize_df,
    )

    TimeBudget, KeepBest = fastai_callbacks()
    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    workers = args.threads if args.threads > 1 else 0  # 0: tokenize in this process
    sizes = {k: v for k, v in {"emb_sz": args.emb_size, "n_hid": args.hidden_size, "n_layers": args.layers}.items() if v}
    lm_config, clas_config = {**awd_lstm_lm_config, **sizes}, {**awd_lstm_clas_config, **sizes}
    splits, unsup, source = load_rows(args)
    minutes = {}

    started = time.perf_counter()
    lm_splits = ("train", "validation") if args.lm_validation_texts else ("train",)
    lm_texts = pd.DataFrame({"text": [row["text"] for split in lm_splits for row in splits[split]] + unsup})
    lm_block = TextBlock.from_df("text", is_lm=True, seq_len=args.bptt, min_freq=args.min_freq, n_workers=workers)
    lm_dls = DataBlock(
        blocks=lm_block, get_x=ColReader("text"), splitter=RandomSplitter(args.lm_valid_pct, seed=args.seed)
    ).dataloaders(lm_texts, path=work, bs=args.bs)
    labelled = pd.DataFrame(
        [{**row, "is_valid": split == "validation"} for split in ("train", "validation") for row in splits[split]]
    )
    clas_block = TextBlock.from_df("text", vocab=lm_dls.vocab, seq_len=args.bptt, n_workers=workers)
    clas_dls = DataBlock(
        blocks=(clas_block, CategoryBlock), get_x=ColReader("text"), get_y=ColReader("label"), splitter=ColSplitter("is_valid")
    ).dataloaders(labelled, path=work, bs=args.bs)
    # Tokenized in bulk as the blocks above are; test_dl would tokenize one review at a time.
    test_tokens, _ = tokenize_df(pd.DataFrame(splits["test"]), "text", n_workers=workers)
    minutes["tokenize"] = (time.perf_counter() - started) / 60
    for stage, dls in (("language model", lm_dls), ("classifier", clas_dls)):
        if not len(dls.train):  # whole batches only: the fit would validate over and over, never training
            raise SystemExit(f"{stage}: too few training rows for a batch of {args.bs}")

    started = time.perf_counter()
    lm = language_model_learner(
        lm_dls, AWD_LSTM, config=lm_config, drop_mult=0.3, pretrained=False, metrics=[accuracy, Perplexity()], wd=0.1
    )
    lm_budget = TimeBudget("language model", args.lm_minutes * 60)
    # div=10 as fastai's example of an AWD-LSTM language model from scratch (examples/train_wt2.py)
    with lm.no_bar():  # a progress bar redrawn at every batch swamps a log; the epochs and reports are printed
        lm.fit_one_cycle(EPOCH_CAP, args.lm_lr, div=10, cbs=lm_budget)
    lm_record = dict(zip(lm.recorder.metric_names[1:], lm.recorder.values[-1]))
    lm.save_encoder("encoder")
    minutes["lm"] = (time.perf_counter() - started) / 60
    minutes["lm_training"] = lm_budget.spent / 60

    started = time.perf_counter()
    clf = text_classifier_learner(
        clas_dls, AWD_LSTM, seq_len=args.bptt, config=clas_config, drop_mult=0.5, pretrained=False, metrics=accuracy
    )
    clf.load_encoder("encoder")
    best = KeepBest(monitor="accuracy", fname="classifier", reset_on_fit=False)
    weight = sum(share for *_, share in STAGES)
    clf_budgets = [TimeBudget(f"classifier stage {i}", args.clf_minutes * 60 * w / weight) for i, (*_, w) in enumerate(STAGES, 1)]
    for (groups, lr_share, _), budget in zip(STAGES, clf_budgets):
        clf.freeze_to(groups)
        lr = args.clf_lr * lr_share
        with clf.no_bar():
            clf.fit_one_cycle(EPOCH_CAP, lr if groups == -1 else slice(lr / LAYER_DECAY, lr), cbs=[budget, best])
    clf.load("classifier", weights_only=False)
    minutes["clf"] = (time.perf_counter() - started) / 60
    minutes["clf_training"] = sum(budget.spent for budget in clf_budgets) / 60

    started = time.perf_counter()
    with clf.no_bar():
        test_accuracy = clf.validate(dl=clf.dls.test_dl(test_tokens, with_labels=True))[1]
    minutes["test"] = (time.perf_counter() - started) / 60

    return {
        "peer": "fastai ULMFiT (AWD_LSTM, pretrained=False)",
        "test_accuracy": round(float(test_accuracy), 4),
        "validation_accuracy": round(float(best.best), 4),
        "lm_validation_perplexity": round(float(lm_record["perplexity"]), 2),
        "lm_validation_accuracy": round(float(lm_record["accuracy"]), 4),
        "minutes": {k: round(v, 2) for k, v in minutes.items()},
        "budget_minutes": {"lm": args.lm_minutes, "clf": args.clf_minutes},
        "lm_tokens_seen": lm_budget.tokens,
        "lm_epochs": round(lm_budget.batches / len(lm_dls.train), 3),
        "clf_batches": [budget.batches for budget in clf_budgets],
        "model": {
            "emb_size": lm_config["emb_sz"],
            "hidden_size": lm_config["n_hid"],
            "layers": lm_config["n_layers"],
            "vocab_size": len(lm_dls.vocab),
            "lm_parameters": sum(p.numel() for p in lm.model.parameters()),
            "clf_parameters": sum(p.numel() for p in clf.model.parameters()),
        },
        "rows": {**{k: len(v) for k, v in splits.items()}, "unsup": len(unsup), "lm_validation": len(lm_dls.valid_ds)},
        "lm_texts": "+".join((*lm_splits, "unsup")),
        "splits": source,
        "batch_size": args.bs,
        "bptt": args.bptt,
        "min_freq": args.min_freq,
        "lr": {"lm": args.lm_lr, "clf": args.clf_lr},
        "seed": args.seed,
        "torch_threads": torch.get_num_threads(),
        "versions": {"fastai": fastai.__version__, "torch": torch.__version__},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write-splits", metavar="DIR", help="write seqtext's split to DIR and stop (seqtext's environment)")
    parser.add_argument("--splits", metavar="DIR", help="train/validation/test.jsonl from --write-splits")
    parser.add_argument(
        "--data", default=str(Path(os.environ.get("SEQTEXT_DATA", "/work/shared/data")) / "imdb"), help="holds unsup.jsonl.gz"
    )
    parser.add_argument("--lm-minutes", type=float, default=48.0)
    parser.add_argument("--clf-minutes", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, help="N rows of each split and N unlabelled ones, for a smoke test")
    parser.add_argument("--json", help="also write the result here")
    parser.add_argument("--no-write", action="store_true", help="leave bench/RESULTS.md alone (--limit always does)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads, and tokenizing processes")
    parser.add_argument("--emb-size", type=int, help="AWD_LSTM emb_sz (fastai: 400)")
    parser.add_argument("--hidden-size", type=int, help="AWD_LSTM n_hid (fastai: 1152)")
    parser.add_argument("--layers", type=int, help="AWD_LSTM n_layers (fastai: 3)")
    parser.add_argument("--bs", type=int, default=64, help="batch size of both stages (fastai's default)")
    parser.add_argument("--bptt", type=int, default=72, help="sequence length (fastai's default)")
    parser.add_argument("--min-freq", type=int, default=3, help="vocabulary cut (fastai's default)")
    parser.add_argument(
        "--lm-valid-pct", type=float, default=0.01, help="share of the LM texts it validates on (seqtext's reviews-lm: 1%%)"
    )
    parser.add_argument(
        "--lm-validation-texts",
        action="store_true",
        help="the validation split's texts (not labels) in the LM too, as fastai's tutorial and seqtext's reviews-lm have them",
    )
    parser.add_argument("--lm-lr", type=float, default=5e-3, help="as fastai's examples/train_wt2.py, from scratch")
    parser.add_argument("--clf-lr", type=float, default=2e-2, help="the first stage's; later stages take 1/2, 1/4, 1/20 of it")
    args = parser.parse_args()
    if args.write_splits:
        write_splits(Path(args.write_splits), args.seed)
        return
    with tempfile.TemporaryDirectory(prefix="ulmfit-") as work:
        result = train(args, Path(work))
    line = json.dumps(result)
    print(line, flush=True)
    if args.json:
        Path(args.json).write_text(line + "\n")
    if not (args.limit or args.no_write):
        write_section("ulmfit", report(result, sys.argv[1:]))


def report(result: dict, argv: list[str]) -> str:
    """The RESULTS.md section: the scores, the budget as spent, and what was trained."""
    minutes, model = result["minutes"], result["model"]
    return "\n".join(
        [
            "### Peer: fastai's ULMFiT on IMDB, from scratch at seqtext's budget",
            "",
            f"`{Path(sys.executable).parent.parent}/bin/python experiments/ulmfit_peer/ulmfit.py {' '.join(argv)}` (fastai "
            f"{result['versions']['fastai']}, torch {result['versions']['torch']}, {result['torch_threads']} threads, "
            f"seed {result['seed']}; rows: {result['splits']}).",
            "",
            "| | value |",
            "|---|---:|",
            f"| test accuracy (best validation checkpoint) | {result['test_accuracy']:.4f} |",
            f"| validation accuracy | {result['validation_accuracy']:.4f} |",
            f"| language model validation perplexity | {result['lm_validation_perplexity']:.2f} |",
            f"| language model epochs ({result['lm_tokens_seen']:,} tokens) | {result['lm_epochs']:.3f} |",
            f"| minutes: tokenize / LM (training) / classifier (training) / test | {minutes['tokenize']:.1f} / "
            f"{minutes['lm']:.1f} ({minutes['lm_training']:.1f}) / {minutes['clf']:.1f} ({minutes['clf_training']:.1f}) / "
            f"{minutes['test']:.1f} |",
            "",
            f"AWD_LSTM with embedding {model['emb_size']}, hidden {model['hidden_size']}, {model['layers']} layers, "
            f"{model['vocab_size']:,} words (fastai's vocabulary: min_freq {result['min_freq']}); "
            f"{model['lm_parameters']:,} parameters in the language model, {model['clf_parameters']:,} in the classifier; "
            f"batch {result['batch_size']}, bptt {result['bptt']}; the language model read {result['lm_texts']}. "
            f"Classifier batches per unfreezing stage: {', '.join(f'{b:,}' for b in result['clf_batches'])}.",
        ]
    )


if __name__ == "__main__":
    main()
