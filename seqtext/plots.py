"""Pictures: training curves, confusion matrices and forecasts as PNG files (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_curves(history: list[dict], path: str | Path) -> None:
    """Loss and a second measure (accuracy, or a forecaster's RMSE) against step, for the training log
    lines and the validation runs."""
    measure = next((m for m in ("accuracy", "rmse") if any(m in e for e in history)), None)
    figure, (loss_axes, measure_axes) = plt.subplots(1, 2, figsize=(10, 4))
    for split, style in (("train", "-"), ("validation", "o-")):
        entries = [e for e in history if e["split"] == split]
        if entries:
            loss_axes.plot([e["step"] for e in entries], [e["loss"] for e in entries], style, label=split, markersize=3)
        measured = [e for e in entries if measure in e]
        if measured:
            measure_axes.plot([e["step"] for e in measured], [e[measure] for e in measured], style, label=split, markersize=3)
    for axes, name in ((loss_axes, "loss"), (measure_axes, measure or "")):
        axes.set_xlabel("step")
        axes.set_ylabel(name)
        axes.grid(alpha=0.3)
        if axes.lines:
            axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_forecast(result: dict, path: str | Path, title: str = "") -> None:
    """Truth against the model's forecasts over the evaluated part: the first forecast step of every
    window, and for multi-step forecasts also the last, drawn at the time it predicts."""
    figure, axes = plt.subplots(figsize=(11, 4))
    time, targets, predictions = result["time"], result["targets"], result["predictions"]
    steps = result["steps"]
    truth = [t[0] for t in targets] + list(targets[-1][1:])  # through the last window's last target
    axes.plot(list(time) + [time[-1] + h for h in range(1, steps)], truth, "k-", linewidth=1.2, label="truth")
    axes.plot(time, [p[0] for p in predictions], "-", color="tab:blue", label="forecast, 1 step ahead")
    if steps > 1:
        shifted = [t + steps - 1 for t in time]
        axes.plot(shifted, [p[-1] for p in predictions], "--", color="tab:orange", label=f"forecast, {steps} steps ahead")
    axes.set_xlabel("time")
    axes.set_ylabel("value")
    axes.grid(alpha=0.3)
    axes.legend()
    if title:
        axes.set_title(title)
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
