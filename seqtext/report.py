"""Terminal output for people: the data summary, evaluation reports, predictions. Machines get --json."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def _console() -> Console:
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
    _console().print(table)


def print_evaluation(report: dict, description: str) -> None:
    """Headline figures, a per-class table and the confusion matrix (rows: truth, columns: predicted)."""
    console = _console()
    console.print(
        f"[bold]{description}[/bold]: {report['n']:,} examples · accuracy {report['accuracy']:.4f} · "
        f"macro-F1 {report['macro_f1']:.4f} · loss {report['loss']:.4f}"
    )
    per_class = Table("label", "precision", "recall", "F1", "support", box=None)
    for name, row in report["per_class"].items():
        per_class.add_row(name, f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1']:.4f}", f"{row['support']:,}")
    console.print(per_class)
    confusion = Table("true \\ predicted", *report["labels"], box=None)
    for name, row in zip(report["labels"], report["confusion"]):
        confusion.add_row(name, *(f"{count:,}" for count in row))
    console.print(confusion)
    for name, baseline in report.get("baselines", {}).items():
        console.print(
            f"[bold]{name}[/bold] (fitted on {baseline['fitted_on']} in {baseline['fit_seconds']:.0f} s, C={baseline['C']}), "
            f"the same examples: accuracy {baseline['accuracy']:.4f} · macro-F1 {baseline['macro_f1']:.4f} · "
            f"seqtext {report['accuracy'] - baseline['accuracy']:+.4f} accuracy, "
            f"{report['macro_f1'] - baseline['macro_f1']:+.4f} macro-F1"
        )


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
    _console().print(table)


def print_forecast_evaluation(report: dict, description: str) -> None:
    """RMSE and MAE of the model beside each baseline (columns); per forecast step when there are several."""
    console = _console()
    console.print(f"[bold]{description}[/bold]: {report['n']:,} forecasts of {report['steps']} step(s), {report['strategy']}")
    predictors = {"model": report["model"], **report["baselines"]}
    names = [f"AR({report['autoregression_order']})" if name == "autoregression" else name for name in predictors]
    table = Table("", *names, box=None)
    table.add_row("RMSE", *(f"{row['rmse']:.4f}" for row in predictors.values()))
    table.add_row("MAE", *(f"{row['mae']:.4f}" for row in predictors.values()))
    steps = report["steps"] if report["steps"] > 1 else 0
    for h in range(steps) if steps <= 24 else sorted({0, 1, 2, steps // 4, steps // 2, 3 * steps // 4, steps - 1}):
        table.add_row(f"RMSE h={h + 1}", *(f"{row['rmse_per_step'][h]:.4f}" for row in predictors.values()))
    console.print(table)


def print_predictions(predictions: list, explain: bool = False) -> None:
    """One line a text: label, its probability and the text, tab-separated; a text with nothing to read (a
    blank line) gets ``-`` for both, so that output lines stay in step with input lines. With ``explain``
    the text is shaded by attention on a terminal (rich then lays the columns out with spaces), and
    elsewhere (a pipe, a file) each word is followed by its weight: ``great(0.62)``."""
    from rich.text import Text

    from seqtext.predict import shaded, weighted

    console = _console()
    for prediction in predictions:
        if prediction.error is not None:
            print(f"-\t-\t{prediction.text}")
            continue
        probability = prediction.probs[prediction.label]
        if explain and console.is_terminal:
            console.print(Text(f"{prediction.label:<10} {probability:.3f}  ").append_text(shaded(prediction)))
        elif explain:
            print(f"{prediction.label}\t{probability:.3f}\t{weighted(prediction)}")
        else:
            print(f"{prediction.label}\t{probability:.3f}\t{prediction.text}")


def print_card(card: dict) -> None:
    """A checkpoint's model card, as `seqtext info` prints it: one field a row."""
    from seqtext.card import card_lines

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for name, value in card_lines(card):
        table.add_row(name, value)
    _console().print(table)
