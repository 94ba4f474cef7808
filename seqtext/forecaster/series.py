"""Numeric series for forecasting: where they come from, how they are split by time, and the windows
and baselines a forecast is scored against.

A series is split by time into train | validation | test, in that order. The scaling statistics are
fitted on the train part only, training windows have their inputs and targets inside the train part,
and a validation or test window's targets lie inside its own part; its inputs are the values before
them, which a forecaster would have seen. Nothing from the tail reaches scaling, training or model
selection.

Series: ``sine`` (a noisy sine wave, the textbook demo, generated from a seed), ``sunspots`` (yearly
mean sunspot numbers 1700-2008, shipped inside statsmodels), or a file (CSV, TSV, JSON Lines, JSON,
Parquet) with a numeric column, one row per time step in order.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from seqtext.errors import ConfigError, DataError
from seqtext.readers import read_records

SPLITS = ("train", "validation", "test")
GENERATED = ("sine",)
PACKAGED = {"sunspots": "yearly mean total sunspot number, 1700-2008 (statsmodels.datasets.sunspots)"}
SERIES = GENERATED + tuple(PACKAGED)


@dataclass
class Series:
    name: str
    values: np.ndarray  # (N,) float64
    time: np.ndarray  # (N,) what each value is indexed by: years for sunspots, else 0..N-1
    bounds: tuple[int, int]  # train is values[:bounds[0]], validation values[bounds[0]:bounds[1]], test the rest

    def part(self, split: str) -> tuple[int, int]:
        """[start, end) of a split's targets."""
        edges = (0, *self.bounds, len(self.values))
        index = SPLITS.index(split)
        return edges[index], edges[index + 1]

    def scaling(self) -> tuple[float, float]:
        """Mean and standard deviation of the train part (a constant part scales by 1)."""
        train = self.values[: self.bounds[0]]
        std = float(train.std())
        return float(train.mean()), std if std > 0 else 1.0


def load_series(recipe, source: str | None = None) -> Series:
    """The recipe's series (``source`` replaces its dataset), split by time by its ``series`` section."""
    config, source = recipe.series, source or recipe.data.dataset
    if source == "sine":
        steps = np.arange(config.length, dtype=np.float64)
        noise = np.random.default_rng(config.noise_seed).normal(0.0, config.noise, config.length)
        values, time = np.sin(2 * math.pi * steps / config.period) + noise, steps
    elif source == "sunspots":
        time, values = _sunspots()
    else:
        values = read_values(source, config.value_column)
        time = np.arange(len(values), dtype=np.float64)
    return Series(str(source), values, time, split_bounds(len(values), config, str(source)))


def split_bounds(n: int, config, name: str) -> tuple[int, int]:
    """Where validation and test begin, with enough values before each for one full window."""
    test_start = n - max(1, round(n * config.test_fraction))
    validation_start = test_start - max(1, round(n * config.validation_fraction))
    if validation_start < config.window + 1:
        raise DataError(
            f"{name}: {n} values are too few for a window of {config.window} and the validation and test parts "
            f"(training needs at least {config.window + 1} values before validation begins)"
        )
    return validation_start, test_start


def read_values(path: str | Path, column: str) -> np.ndarray:
    """The numeric ``column`` of a file as float64; a missing, empty or non-numeric value is an error
    naming its line (or row)."""
    path = Path(path)
    records, columns, unit = read_records(path, [column])
    if not records:
        raise DataError(f"{path}: no rows")
    if columns is None:
        columns = next((list(fields) for _, fields, _ in records if fields is not None), [])
    if column not in columns:
        raise DataError(
            f"{path}: no column {column!r} (columns: {', '.join(map(str, columns)) or 'none'}); set series.value_column"
        )
    values = np.empty(len(records), dtype=np.float64)
    for i, (line, fields, problem) in enumerate(records):
        if problem is None:
            value, problem = _number(fields.get(column), column)
        if problem is not None:
            raise DataError(f"{path}, {unit} {line}: {problem}")
        values[i] = value
    return values


def _number(raw, column: str) -> tuple[float, str | None]:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return math.nan, f"missing value in column {column!r}"
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        return math.nan, f"{raw!r} in column {column!r} is not a number"
    try:
        value = float(raw)
    except ValueError:
        return math.nan, f"{raw!r} in column {column!r} is not a number"
    if not math.isfinite(value):
        return math.nan, f"{raw!r} in column {column!r} is not a finite number"
    return value, None


def _sunspots() -> tuple[np.ndarray, np.ndarray]:
    """(years, yearly mean sunspot numbers)."""
    try:
        from statsmodels.datasets import sunspots
    except ImportError:
        raise ConfigError("the sunspots series ships with statsmodels: pip install 'seqtext[series]'") from None
    table = sunspots.load_pandas().data
    return table["YEAR"].to_numpy(dtype=np.float64), table["SUNACTIVITY"].to_numpy(dtype=np.float64)


def windows(values: np.ndarray, start: int, end: int, window: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (input, target) pair whose ``horizon`` targets lie in [start, end).

    inputs (N, window): the ``window`` values before the first target; targets (N, horizon).
    """
    first = max(start, window)
    count = end - horizon + 1 - first
    if count < 1:
        return np.empty((0, window)), np.empty((0, horizon))
    spans = np.lib.stride_tricks.sliding_window_view(values, window + horizon)[first - window : first - window + count]
    return spans[:, :window].copy(), spans[:, window:].copy()


def step_targets(values: np.ndarray, start: int, end: int, window: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows with a target for every step: inputs (N, window) and targets (N, window, horizon), where
    step s's targets are the ``horizon`` values after input s. All of them lie in [start, end)."""
    inputs, _ = windows(values, start + window - 1, end, window, horizon)
    first = max(start + window - 1, window)
    spans = np.lib.stride_tricks.sliding_window_view(values, horizon)  # spans[t] = values[t : t + horizon]
    index = (first - window + 1) + np.arange(len(inputs))[:, None] + np.arange(window)[None, :]  # (N, window)
    return inputs, spans[index]


def baselines(series: Series, origins: np.ndarray, steps: int, window: int, season: int | None = None) -> dict[str, np.ndarray]:
    """Forecasts (N, steps) of the values from each origin on (``origins`` (N,): the first target's
    index), from the values before it, needing no training beyond a least-squares fit on the train part.

    - last_value: the last value seen, for every step;
    - seasonal: the value one season before each target (when the recipe names a season);
    - autoregression: a linear AR(p) with intercept on the last p values, p = min(window, train windows / 4),
      fitted by least squares on the train part and fed its own predictions for later steps.
    """
    values = series.values
    found = {"last_value": np.repeat(values[origins - 1][:, None], steps, axis=1)}
    if season is not None:
        if origins.min() < season:
            raise ConfigError(f"series.season {season} reaches back before the start of the series")
        history = values[origins[:, None] - season + np.arange(season)[None, :]]  # (N, season)
        for _ in range(steps):  # the target one season back is either observed or already forecast
            history = np.concatenate([history, history[:, -season : -season + 1 or None]], axis=1)
        found["seasonal"] = history[:, season:]
    order = ar_order(series, window)
    train_x, train_y = windows(series.values, 0, series.bounds[0], order, 1)
    design = np.hstack([train_x, np.ones((len(train_x), 1))])
    coefficients, *_ = np.linalg.lstsq(design, train_y[:, 0], rcond=None)
    history = values[origins[:, None] - order + np.arange(order)[None, :]]  # (N, order)
    predictions = []
    for _ in range(steps):
        following = history @ coefficients[:-1] + coefficients[-1]
        predictions.append(following)
        history = np.concatenate([history[:, 1:], following[:, None]], axis=1)
    found["autoregression"] = np.stack(predictions, axis=1)
    return found


def ar_order(series: Series, window: int) -> int:
    """The autoregression baseline's order: the model's window, or fewer when the train part is short."""
    return max(1, min(window, (series.bounds[0] - window) // 4))


def errors(predictions: np.ndarray, targets: np.ndarray) -> dict:
    """RMSE and MAE over all (N, steps) forecasts, and per step."""
    difference = predictions - targets
    return {
        "rmse": float(np.sqrt(np.mean(difference**2))),
        "mae": float(np.mean(np.abs(difference))),
        "rmse_per_step": np.sqrt(np.mean(difference**2, axis=0)).tolist(),
        "mae_per_step": np.mean(np.abs(difference), axis=0).tolist(),
    }


def evaluate_forecaster(
    model,
    series: Series,
    split: str,
    window: int,
    steps: int | None = None,
    strategy: str = "auto",
    season: int | None = None,
    with_baselines: bool = True,
) -> dict:
    """RMSE / MAE of ``model``'s forecasts of ``steps`` values from every window whose targets lie in
    ``split``, beside the baselines computed on the same windows (unless ``with_baselines`` is False, as
    in validation during training); in the series' own units."""
    steps = steps or model.horizon
    strategy = model.strategy_for(steps, strategy)
    start, end = series.part(split)
    inputs, targets = windows(series.values, start, end, window, steps)
    first = max(start, window)  # the time of each window's first target
    if len(inputs) == 0:
        raise DataError(f"{series.name}: the {split} part ({end - start} values) is shorter than a {steps}-step forecast")
    model.eval()
    device = next(model.parameters()).device
    predictions = np.concatenate(
        [
            model.forecast(torch.from_numpy(inputs[i : i + 1024]).to(device), steps, strategy).cpu().numpy()
            for i in range(0, len(inputs), 1024)
        ]
    )
    origins = first + np.arange(len(inputs))
    found = baselines(series, origins, steps, window, season) if with_baselines else {}
    return {
        "split": split,
        "steps": steps,
        "strategy": strategy,
        "n": len(inputs),
        "model": errors(predictions, targets),
        "autoregression_order": ar_order(series, window),
        "baselines": {name: errors(p, targets) for name, p in found.items()},
        "time": series.time[first : first + len(inputs)].tolist(),
        "targets": targets.tolist(),
        "predictions": predictions.tolist(),
    }


def series_summary(recipe) -> dict:
    """What `seqtext data` prints for a forecasting recipe."""
    started = time.perf_counter()
    series = load_series(recipe)
    seconds = time.perf_counter() - started
    window, horizon = recipe.series.window, recipe.model.horizon
    mean, std = series.scaling()
    parts = {split: series.part(split) for split in SPLITS}
    return {
        "dataset": series.name,
        "series": {
            "values": {split: end - start for split, (start, end) in parts.items()},
            "windows": {split: len(windows(series.values, *parts[split], window, horizon)[0]) for split in SPLITS},
            "window": window,
            "horizon": horizon,
            "mean": mean,
            "std": std,
        },
        "seconds": {"load": seconds},
    }
