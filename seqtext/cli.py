"""``seqtext <command>``: maps arguments to the functions that do the work, and errors to one line.

Results go to stdout (``--json`` for machines), progress and warnings to stderr. A user error prints
``seqtext: error: <one line>`` and exits with status 2; nothing is written before arguments and inputs
have been checked.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from seqtext.errors import ConfigError, SeqtextError
from seqtext.readers import BAD_ROW_POLICIES, FORMATS

RECIPE_SUFFIXES = (".yaml", ".yml")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage and the error; one line is enough
        raise ConfigError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="seqtext", description="Sequence models on text: data, tokenizers, batching.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    data = commands.add_parser(
        "data",
        help="load a dataset, build or load its tokenizer, bucket it into batches, and summarise",
        description="Load a dataset, build or load its tokenizer, bucket it into batches, and print a summary. "
        "Extra options --SECTION.FIELD VALUE override the recipe (e.g. --batching.batch_size 32).",
    )
    _add_source_options(data)
    data.add_argument("--json", action="store_true", help="print the summary as JSON")

    tokenizer = commands.add_parser(
        "tokenizer",
        help="train a tokenizer on a dataset's train split and save it as tokenizer.json",
        description="Train the tokenizer a recipe describes (or --tokenizer.kind etc.) on the train split and save it. "
        "`make vocab` rebuilds every vocabulary in vocab/ this way.",
    )
    _add_source_options(tokenizer)
    tokenizer.add_argument("--out", help="where to write the tokenizer (default: the recipe's tokenizer.path)")
    return parser


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        metavar="RECIPE_OR_DATA",
        help="a recipe (.yaml), a named dataset (sst2, imdb, trec, tinyshakespeare), a file, "
        "a folder of split files, or a Hub id",
    )
    parser.add_argument("--data-dir", help="folder holding the named datasets (default: $SEQTEXT_DATA, else the Hub)")
    parser.add_argument("--on-bad-rows", choices=BAD_ROW_POLICIES, help="stop at the first bad row (default) or skip and count")
    parser.add_argument("--seed", type=int, help="seed for the validation hold-out and batch order (default: the recipe's, 0)")


def main(argv: list[str] | None = None) -> int:
    try:
        args, extra = build_parser().parse_known_args(argv)
        return _run(args, extra)
    except SeqtextError as err:
        print(f"seqtext: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("seqtext: interrupted", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace, extra: list[str]) -> int:
    from seqtext import pipeline

    recipe = _recipe(args, extra)
    if args.command == "tokenizer":
        return _train_tokenizer(recipe, args.out)
    if recipe.task == "language_model":
        summary = pipeline.corpus_summary(pipeline.prepare_corpus(recipe), recipe)
    else:
        summary = pipeline.classification_summary(pipeline.prepare_classification(recipe), recipe)
        for split, n in summary["skipped_rows"].items():
            print(f"seqtext: skipped {n:,} bad rows in {split}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_summary(summary)
    return 0


def _recipe(args: argparse.Namespace, extra: list[str]):
    from seqtext.recipe import load_recipe

    overrides = list(extra)
    for option, key in (("data_dir", "data.data_dir"), ("on_bad_rows", "data.on_bad_rows"), ("seed", "seed")):
        value = getattr(args, option)
        if value is not None:
            overrides += [f"--{key}", str(value)]
    if Path(args.source).suffix.lower() in RECIPE_SUFFIXES:
        return load_recipe(args.source, overrides)
    return load_recipe(None, overrides, base=_base_for(args.source))


def _base_for(source: str) -> dict:
    """Defaults for a dataset given without a recipe: a corpus gets a character language model's settings."""
    from seqtext.data import NAMED_DATASETS

    named = NAMED_DATASETS.get(source)
    suffixes = [s.lower() for s in Path(source).suffixes if s.lower() != ".gz"]
    is_corpus = (named is not None and named.corpus_file is not None) or (suffixes and FORMATS.get(suffixes[-1]) == "text")
    if is_corpus:
        return {
            "task": "language_model",
            "data": {"dataset": source},
            "tokenizer": {"kind": "char", "lowercase": False, "vocab_size": None},
        }
    return {"data": {"dataset": source}}


def _train_tokenizer(recipe, out: str | None) -> int:
    from seqtext import pipeline

    target = out or recipe.tokenizer.path
    if target is None:
        raise ConfigError("give --out FILE, or a recipe with tokenizer.path")
    if recipe.task == "language_model":
        texts = [pipeline.load_corpus_parts(recipe)[0]]
    else:
        texts = pipeline.load_labelled(recipe).splits["train"]["text"]
    tokenizer = pipeline.train_tokenizer(recipe.tokenizer, texts)
    tokenizer.save(target)
    print(f"{target}: {tokenizer.kind} tokenizer, {tokenizer.vocab_size:,} tokens")
    return 0


def _print_summary(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    tok = summary["tokenizer"]
    table.add_row("dataset", summary["dataset"])
    table.add_row("tokenizer", f"{tok['kind']}, {tok['vocab_size']:,} tokens ({tok['source']})")
    seconds = " · ".join(f"{stage} {value:.2f}s" for stage, value in summary["seconds"].items())
    if "splits" in summary:
        table.add_row("splits", " · ".join(f"{split} {n:,}" for split, n in summary["splits"].items()))
        table.add_row("labels (train)", " · ".join(f"{name} {n:,}" for name, n in summary["labels"].items()))
        t, b = summary["train_tokens"], summary["batches"]
        cut = f", {t['truncated']:,} truncated" if t["truncated"] else ""
        table.add_row("train tokens", f"{t['total']:,} (mean {t['mean']:.1f}, max {t['max']:,}{cut})")
        size = f"≤{b['max_tokens']:,} tokens" if b["max_tokens"] else f"{b['batch_size']} texts"
        table.add_row("batches", f"{b['count']:,} of {size}, length-bucketed")
        table.add_row(
            "padding efficiency",
            f"{b['padding_efficiency']:.3f} (random batches: {b['random_batches_padding_efficiency']:.3f})",
        )
    else:
        s = summary["streams"]
        table.add_row("tokens", " · ".join(f"{split} {n:,}" for split, n in summary["tokens"].items()))
        table.add_row("streams", f"{s['count']} rows of {s['length']:,}, read in {s['windows']:,} windows of {s['bptt']}")
    table.add_row("time", seconds)
    Console(soft_wrap=True).print(table)
