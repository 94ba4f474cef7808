"""``seqtext.load`` of a forecaster: ``forecast``, ``evaluate``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from seqtext.api import Model
from seqtext.errors import ConfigError, DataError


class Forecaster(Model):
    """A forecaster of a numeric series: ``forecast`` the values after a history."""

    kind = "forecaster"
    evaluate_options = ("horizon", "strategy")

    def forecast(self, history, steps: int | None = None, strategy: str = "auto") -> np.ndarray:
        """The ``steps`` values (default: the model's horizon) after ``history`` (T,), or after each row of
        (B, T), in the series' units. ``strategy``: direct (the model's outputs at once), recursive (feed
        predictions back), auto (direct when the horizon allows)."""
        try:
            values = np.asarray(history, dtype=np.float64)
        except (TypeError, ValueError):
            values = np.array([])
        if values.ndim not in (1, 2) or values.shape[-1] == 0 or not np.isfinite(values).all():
            raise DataError("history must be a non-empty (T,) or (B, T) array of finite numbers", "history")
        if steps is not None and (not isinstance(steps, int) or steps < 1):
            raise ConfigError(f"steps must be an integer of at least 1, not {steps!r}", "steps")
        rows = torch.from_numpy(np.atleast_2d(values)).to(self.device)  # float64: normalize() avoids cancellation
        with self._autocast():
            predicted = self.module.forecast(rows, steps, strategy).cpu().numpy()
        return predicted[0] if values.ndim == 1 else predicted

    def plot(self, result: dict, path: str | Path) -> None:
        from seqtext.plots import plot_forecast

        plot_forecast(result, path, title=result["data"])

    def _evaluate(self, data, split, horizon=None, strategy=None) -> tuple[dict, str]:
        from seqtext.forecaster.series import SPLITS, evaluate_forecaster, load_series

        split = split or "test"
        if data is not None and not isinstance(data, (str, Path)):
            raise DataError(f"data must be a series file or a named series, not {type(data).__name__}", "data")
        if strategy not in (None, "auto", "direct", "recursive"):
            raise ConfigError(f"strategy must be auto, direct or recursive, not {strategy!r}", "strategy")
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {', '.join(SPLITS)} for a forecaster, not {split!r}", "split")
        if horizon is not None and (not isinstance(horizon, int) or horizon < 1):
            raise ConfigError(f"horizon must be at least 1, not {horizon!r}", "horizon")
        recipe = self.recipe
        series = load_series(recipe, data)
        window, season = recipe.series.window, recipe.series.season
        result = evaluate_forecaster(self.module, series, split, window, horizon, strategy or "auto", season)
        start, end = series.part(split)
        description = f"{series.name}, {split} part: {end - start:,} values ({series.time[start]:g} to {series.time[end - 1]:g})"
        return result, description
