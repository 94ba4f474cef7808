"""A classifier's evaluation and predictions, printed for people."""

from __future__ import annotations

from rich.table import Table

from seqtext.report import terminal


def print_evaluation(report: dict, description: str) -> None:
    """Headline figures, a per-class table and the confusion matrix (rows: truth, columns: predicted)."""
    console = terminal()
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


def print_predictions(predictions: list, explain: bool = False) -> None:
    """One line a text: label, its probability and the text, tab-separated; a text with nothing to read (a
    blank line) gets ``-`` for both, so that output lines stay in step with input lines. With ``explain``
    the text is shaded by attention on a terminal (rich then lays the columns out with spaces), and
    elsewhere (a pipe, a file) each word is followed by its weight: ``great(0.62)``."""
    from rich.text import Text

    from seqtext.classifier.predict import shaded, weighted

    console = terminal()
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
