"""A language model's evaluation, printed for people."""

from __future__ import annotations

from rich.table import Table

from seqtext.report import terminal


def print_language_model_evaluation(report: dict, description: str) -> None:
    table = Table(title=description, show_header=False, box=None)
    if "bpc" in report:
        rows = (
            ("loss", f"{report['loss']:.4f} nats/char"),
            ("bits per character", f"{report['bpc']:.4f}"),
            ("perplexity", f"{report['perplexity']:.3f}"),
            *([("next-character accuracy", f"{report['accuracy']:.4f}")] if "accuracy" in report else []),
            ("characters scored", f"{report['n_chars']:,}"),
        )
    else:  # a word or BPE model: figures per token, no bits per character
        rows = (
            ("loss", f"{report['loss']:.4f} nats/token"),
            ("perplexity", f"{report['perplexity']:.3f}"),
            *([("next-token accuracy", f"{report['accuracy']:.4f}")] if "accuracy" in report else []),
            ("tokens scored", f"{report['n_tokens']:,}"),
        )
    for name, value in rows:
        table.add_row(name, value)
    terminal().print(table)
