"""Held-out accuracy of seqtext's recipe against the tutorial-style baseline of train_throughput.py, in one run.

The throughput benchmark shows the baseline is slower; this one checks that seqtext's speed costs no
accuracy. Both train the recipe's sizes, optimizer, schedule and epochs with the same seed; each keeps
its best validation state and is scored once on the test split.

- seqtext: the recipe itself (`seqtext train recipes/NAME.yaml`, length-bucketed batches).
- baseline: ``TutorialClassifier`` (a packed bidirectional ``nn.LSTM``) on random batches padded to the
  dataset's longest sequence, reshuffled every epoch.

    python bench/baseline_quality.py sst2 [--seed 0] [--epochs N]
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import write_section  # noqa: E402
from bench.train_throughput import TutorialClassifier, pad_to  # noqa: E402
from seqtext import checkpoint  # noqa: E402
from seqtext.batching import collate  # noqa: E402
from seqtext.classifier.data import prepare_classification  # noqa: E402
from seqtext.classifier.evaluation import evaluate_classifier  # noqa: E402
from seqtext.optim import learning_rate, make_optimizer  # noqa: E402
from seqtext.recipe import load_recipe  # noqa: E402
from seqtext.training import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def train_baseline(recipe, prepared) -> dict:
    """The tutorial loop: random batches padded to the longest text, validation every ``eval_every`` steps."""
    train_set, validation_set, test_set = (prepared.encoded[s] for s in ("train", "validation", "test"))
    names = prepared.data.label_map.names
    config, size = recipe.model, recipe.batching.batch_size
    torch.manual_seed(recipe.seed)
    model = TutorialClassifier(
        prepared.tokenizer.vocab_size,
        config.embedding_size,
        config.hidden_size,
        config.attention_size,
        len(names),
        config.dropout,
    )
    optimizer = make_optimizer(model, recipe.train)
    steps_per_epoch = len(train_set) // size
    total = recipe.train.epochs * steps_per_epoch
    longest = int(train_set.lengths.max())
    best, step = {"accuracy": -1.0}, 0
    for epoch in range(recipe.train.epochs):
        order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(recipe.seed * 1000 + epoch)).tolist()
        for first in range(0, steps_per_epoch * size, size):
            batch = collate([train_set[i] for i in order[first : first + size]])
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(recipe.train, step, total)
            model.train()
            loss = F.cross_entropy(model(*pad_to(batch, longest)).logits, batch.labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.train.clip_norm or math.inf)
            optimizer.step()
            step += 1
            if step % recipe.train.eval_every == 0 or step == total:
                accuracy = evaluate_classifier(model, validation_set, names)["accuracy"]
                if accuracy > best["accuracy"]:
                    best = {"accuracy": accuracy, "step": step, "state": copy.deepcopy(model.state_dict())}
                print(f"baseline step {step}/{total}: validation {accuracy:.4f}", flush=True)
    model.load_state_dict(best["state"])
    test = evaluate_classifier(model, test_set, names)
    return {"validation": best["accuracy"], "best_step": best["step"], "steps": step, "test": test}


def train_seqtext(recipe, base: Path) -> dict:
    result = train(recipe, base / "seqtext", progress=False)
    model = checkpoint.load(result["best"])
    prepared = prepare_classification(recipe, ("test",), tokenizer=model.tokenizer)
    test = evaluate_classifier(model.model, prepared.encoded["test"], model.label_map.names)
    return {
        "validation": result["accuracy"],
        "best_step": result["best_step"],
        "steps": result["steps"],
        "test": test,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", help="a classification recipe name in recipes/ (sst2, imdb)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="train both for this many epochs instead of the recipe's")
    args = parser.parse_args()
    overrides = ["--seed", str(args.seed)] + (["--train.epochs", str(args.epochs)] if args.epochs else [])
    recipe = load_recipe(ROOT / "recipes" / f"{args.recipe}.yaml", overrides)
    results = {
        "seqtext": train_seqtext(recipe, Path(tempfile.mkdtemp(prefix="seqtext-baseline-quality-"))),
        "baseline": train_baseline(recipe, prepare_classification(recipe, ("train", "validation", "test"))),
    }
    rows = []
    for name, r in results.items():
        rows.append(
            f"| {name} | {r['validation']:.4f} | **{r['test']['accuracy']:.4f}** | {r['test']['macro_f1']:.4f} | "
            f"{r['best_step']:,} of {r['steps']:,} |"
        )
        print(rows[-1], flush=True)
    epochs = f" --epochs {args.epochs}" if args.epochs else ""
    body = f"""## Accuracy against the tutorial-style baseline: {args.recipe}

`python bench/baseline_quality.py {args.recipe} --seed {args.seed}{epochs}`: both train {recipe.train.epochs} epochs of
{args.recipe}'s recipe (sizes, AdamW, schedule, clipping, seed {args.seed}); each keeps its best validation state, scored
once on the {results["seqtext"]["test"]["n"]:,} test examples. The baseline is train_throughput.py's: random batches padded to
the longest text, a packed bidirectional `nn.LSTM`. Speed is train_throughput.py's to measure; this run may share the machine.

| | best validation accuracy | test accuracy | test macro-F1 | best step of steps |
|---|---:|---:|---:|---|
{chr(10).join(rows)}
"""
    write_section(f"baseline_quality_{args.recipe}", body)
    print(body)


if __name__ == "__main__":
    main()
