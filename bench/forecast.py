"""Held-out forecasting error of the sine and sunspots recipes against last-value, seasonal and AR baselines.

For each recipe and seed: train the one-step model (the recipe) and a direct model of horizon H
(``--model.horizon H``), each keeping its best validation checkpoint; then score, on the test tail only,
the one-step forecasts and the H-step forecasts made recursively (the one-step model fed its own
predictions) and directly. Baselines are computed on the same windows.

    python bench/forecast.py [--seeds 0 1 2] [--horizon 10] [--png-dir DIR]

The plots go to DIR/sine_forecast.png and DIR/sunspots_forecast.png (default: bench/, the tracked ones).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import write_section  # noqa: E402
from seqtext import checkpoint  # noqa: E402
from seqtext.forecaster.series import evaluate_forecaster, load_series  # noqa: E402
from seqtext.plots import plot_forecast  # noqa: E402
from seqtext.recipe import load_recipe  # noqa: E402
from seqtext.training import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ("sine", "sunspots")


def trained(name: str, seed: int, overrides: list[str], base: Path) -> tuple[object, float]:
    recipe = load_recipe(ROOT / "recipes" / f"{name}.yaml", ["--seed", str(seed), *overrides])
    started = time.perf_counter()
    result = train(recipe, base / f"{name}-{seed}-{'-'.join(overrides) or 'recipe'}", progress=False)
    return checkpoint.load(result["best"]).model, time.perf_counter() - started


def mean(values: list[float]) -> str:
    return f"{statistics.mean(values):.4f}"


def multi_step(name: str, recursive: list[dict], direct: list[dict], horizon: int, order) -> list[str]:
    """Table rows of test RMSE at the first, middle and last forecast step: the models (mean over seeds) and the baselines."""
    steps = sorted({0, horizon // 2 - 1, horizon - 1})
    multi = [
        ("model, recursive", [[r["model"]["rmse_per_step"][h] for r in recursive] for h in steps]),
        ("model, direct", [[r["model"]["rmse_per_step"][h] for r in direct] for h in steps]),
    ]
    multi += [
        (label, [[recursive[0]["baselines"][key]["rmse_per_step"][h]] for h in steps])
        for key, label in (("last_value", "last value"), ("seasonal", "seasonal"), ("autoregression", f"AR({order})"))
    ]
    return [f"| {name} | {label} | {recursive[0]['n']} | {' | '.join(mean(c) for c in cells)} |" for label, cells in multi]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--horizon", type=int, default=10)
    parser.add_argument("--png-dir", default=str(ROOT / "bench"), help="where NAME_forecast.png goes (default bench/)")
    args = parser.parse_args()
    Path(args.png_dir).mkdir(parents=True, exist_ok=True)
    base, horizon = Path(tempfile.mkdtemp(prefix="seqtext-forecast-")), args.horizon
    one_step_rows, multi_step_rows = [], []
    for name in RECIPES:
        recipe = load_recipe(ROOT / "recipes" / f"{name}.yaml")
        series, window, season = load_series(recipe), recipe.series.window, recipe.series.season
        one, recursive, direct, seconds = [], [], [], []
        for seed in args.seeds:
            model, took = trained(name, seed, [], base)
            seconds.append(took)
            one.append(evaluate_forecaster(model, series, "test", window, 1, "direct", season))
            recursive.append(evaluate_forecaster(model, series, "test", window, horizon, "recursive", season))
            if seed == args.seeds[0]:
                title = f"{name} test tail, seed {seed}: one-step model, {horizon} steps recursively"
                plot_forecast(recursive[-1], Path(args.png_dir) / f"{name}_forecast.png", title=title)
            model, _ = trained(name, seed, ["--model.horizon", str(horizon)], base)
            direct.append(evaluate_forecaster(model, series, "test", window, horizon, "direct", season))
            print(f"{name} seed {seed}: one-step test RMSE {one[-1]['model']['rmse']:.4f} ({took:.0f} s)", flush=True)
        baselines = one[0]["baselines"]
        order = one[0]["autoregression_order"]
        per_seed = " / ".join(f"{r['model']['rmse']:.4f}" for r in one)
        one_step_rows.append(
            f"| {name} | {one[0]['n']} | {per_seed} | **{mean([r['model']['rmse'] for r in one])}** | "
            f"{baselines['last_value']['rmse']:.4f} | {baselines['seasonal']['rmse']:.4f} ({season}) | "
            f"{baselines['autoregression']['rmse']:.4f} ({order}) | {statistics.mean(seconds):.0f} s |"
        )
        multi_step_rows += multi_step(name, recursive, direct, horizon, order)
    seeds = " ".join(map(str, args.seeds))
    header = " | ".join(f"h={h + 1}" for h in sorted({0, horizon // 2 - 1, horizon - 1}))
    body = f"""## Forecasting: sine and sunspots against baselines

`python bench/forecast.py --seeds {seeds} --horizon {horizon}`. Each recipe trains once per seed and keeps its best
validation checkpoint; RMSE is in the series' own units on the test tail, which neither scaling, training nor
model selection saw (sine: the last 300 of 2,000 values; sunspots: 1978-2008). Baselines see the same windows.

One step ahead (test RMSE; the model's per seed {seeds}, then their mean):

| recipe | forecasts | model per seed | model mean | last value | seasonal (period) | AR (order) | training time |
|---|---:|---|---:|---:|---:|---:|---:|
{chr(10).join(one_step_rows)}

{horizon} steps ahead, test RMSE at forecast step h (models: mean over seeds). Recursive feeds the one-step
model its own predictions; direct is a second model trained with `--model.horizon {horizon}`. Both are scored
on the windows whose {horizon} targets all lie in the test tail, fewer than the one-step windows above:

| recipe | forecaster | forecasts | {header} |
|---|---|---:|{"---:|" * len(header.split(" | "))}
{chr(10).join(multi_step_rows)}
"""
    write_section("forecast", body)
    print(body)


if __name__ == "__main__":
    main()
