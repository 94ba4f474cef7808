"""Forecasting a numeric series with the classifier's recurrent encoder and a linear regression head.

The model reads a window of past values, scaled by statistics of the training part of the series that
it keeps as buffers, and emits ``horizon`` values at every time step: ``forward`` gives (B, T, horizon),
the shape of sequence labelling with per-step targets, and the forecast from a window is its last
step's output. The encoder runs forward in time only, so step t's output depends on values up to t.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from seqtext.errors import ConfigError
from seqtext.nn import RecurrentEncoder


@dataclass
class ForecasterConfig:
    cell: str = "lstm"  # lstm or gru
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0  # between recurrent layers
    horizon: int = 1  # values predicted at once (direct multi-step); longer forecasts feed predictions back

    def __post_init__(self):
        if self.cell not in ("lstm", "gru"):
            raise ConfigError(f"model.cell must be one of lstm, gru, not {self.cell!r}")
        for name in ("hidden_size", "num_layers", "horizon"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be at least 1, not {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), not {self.dropout}")

    def sizes(self) -> dict[str, int]:
        """The sizes the module is built with, each some weight's dimension: a checkpoint checks them
        against its weights before building anything (seqtext/checkpoint.py)."""
        return {"hidden_size": self.hidden_size, "horizon": self.horizon}


class Forecaster(nn.Module):
    def __init__(self, config: ForecasterConfig, center: float = 0.0, scale: float = 1.0):
        super().__init__()
        self.config = config
        self.encoder = RecurrentEncoder(
            1, config.hidden_size, config.num_layers, bidirectional=False, cell=config.cell, dropout=config.dropout
        )
        self.head = nn.Linear(config.hidden_size, config.horizon)
        # the training part's mean and standard deviation: saved with the weights, so a checkpoint scales by itself
        self.register_buffer("center", torch.tensor(float(center), dtype=torch.float64))
        self.register_buffer("scale", torch.tensor(float(scale), dtype=torch.float64))

    @property
    def horizon(self) -> int:
        return self.config.horizon

    def normalize(self, values: torch.Tensor) -> torch.Tensor:
        return ((values.double() - self.center) / self.scale).to(self.head.weight.dtype)

    def denormalize(self, values: torch.Tensor) -> torch.Tensor:
        return values.double() * self.scale + self.center

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T) scaled values -> (B, T, horizon) scaled predictions of the values after each step."""
        batch, steps = x.shape
        lengths = torch.full((batch,), steps, dtype=torch.long, device=x.device)
        mask = torch.ones(batch, steps, dtype=torch.bool, device=x.device)
        h = self.encoder(x[:, :, None], lengths, mask)  # (B, T, H)
        return self.head(h)  # (B, T, horizon)

    def strategy_for(self, steps: int, strategy: str = "auto") -> str:
        """``auto`` made concrete: direct when the model's horizon covers ``steps``, else recursive."""
        if strategy == "auto":
            return "direct" if steps <= self.horizon else "recursive"
        return strategy

    @torch.no_grad()
    def forecast(self, history: torch.Tensor, steps: int | None = None, strategy: str = "auto") -> torch.Tensor:
        """The next ``steps`` values after each row of ``history`` (B, T), both in the series' own units.

        ``direct`` takes the model's ``horizon`` outputs at once (``steps`` <= horizon); ``recursive`` predicts
        one value, appends it to the window and predicts again. ``auto`` is direct when it can be.
        Returns (B, steps) as float64.
        """
        steps = steps or self.horizon
        strategy = self.strategy_for(steps, strategy)
        if strategy == "direct":
            if steps > self.horizon:
                raise ConfigError(
                    f"a direct forecast of {steps} steps needs a model of horizon >= {steps}, not {self.horizon}", "strategy"
                )
            return self.denormalize(self(self.normalize(history))[:, -1, :steps])
        if strategy != "recursive":
            raise ConfigError(f"strategy must be auto, direct or recursive, not {strategy!r}", "strategy")
        window = self.normalize(history)
        predictions = []
        for _ in range(steps):
            following = self(window)[:, -1, :1]  # (B, 1)
            predictions.append(following)
            window = torch.cat([window[:, 1:], following], dim=1)
        return self.denormalize(torch.cat(predictions, dim=1))
