"""Terminal output for people that every kind shares: the data summary and the model card (each kind's
evaluation and predictions print from its own package). Machines get --json."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def terminal() -> Console:
    return Console(soft_wrap=True, highlight=False)


def print_data_summary(summary: dict) -> None:
    """The summary of `seqtext data`, as a two-column table."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("dataset", summary["dataset"])
    if "tokenizer" in summary:
        tok = summary["tokenizer"]
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
    elif "series" in summary:
        s = summary["series"]
        table.add_row("values", " · ".join(f"{split} {n:,}" for split, n in s["values"].items()))
        table.add_row("windows", " · ".join(f"{split} {n:,}" for split, n in s["windows"].items()) + f" (window {s['window']})")
        table.add_row("scaling (train part)", f"mean {s['mean']:.4g}, standard deviation {s['std']:.4g}")
    else:
        s = summary["streams"]
        table.add_row("tokens", " · ".join(f"{split} {n:,}" for split, n in summary["tokens"].items()))
        table.add_row("streams", f"{s['count']} rows of {s['length']:,}, read in {s['windows']:,} windows of {s['bptt']}")
    table.add_row("time", seconds)
    terminal().print(table)


def print_card(card: dict) -> None:
    """A checkpoint's model card, as `seqtext info` prints it: one field a row."""
    from seqtext.card import card_lines

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for name, value in card_lines(card):
        table.add_row(name, value)
    terminal().print(table)
