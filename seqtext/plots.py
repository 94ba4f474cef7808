"""Pictures: training curves and confusion matrices as PNG files (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_curves(history: list[dict], path: str | Path) -> None:
    """Loss and accuracy against step, for the training log lines and the validation runs."""
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(10, 4))
    for split, style in (("train", "-"), ("validation", "o-")):
        entries = [e for e in history if e["split"] == split]
        if entries:
            steps = [e["step"] for e in entries]
            loss_axes.plot(steps, [e["loss"] for e in entries], style, label=split, markersize=3)
            accuracy_axes.plot(steps, [e["accuracy"] for e in entries], style, label=split, markersize=3)
    for axes, name in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
        axes.set_xlabel("step")
        axes.set_ylabel(name)
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_confusion(confusion: list[list[int]], labels: list[str], path: str | Path, title: str = "") -> None:
    """Rows are the true labels, columns the predicted ones; each cell shows its count."""
    size = max(4, 0.8 * len(labels) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    image = axes.imshow(confusion, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    peak = max(max(row) for row in confusion) or 1
    for i, row in enumerate(confusion):
        for j, count in enumerate(row):
            axes.text(j, i, str(count), ha="center", va="center", color="white" if count > peak / 2 else "black")
    if title:
        axes.set_title(title)
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
