"""A forecaster's evaluation, printed for people."""

from __future__ import annotations

from rich.table import Table

from seqtext.report import terminal


def print_forecast_evaluation(report: dict, description: str) -> None:
    """RMSE and MAE of the model beside each baseline (columns); per forecast step when there are several."""
    console = terminal()
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
