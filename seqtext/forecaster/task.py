"""Training a forecaster: windows of a numeric series, shuffled each epoch; mean squared error in scaled units.

The scaling comes from the train part alone and travels with the model. The best checkpoint is the one
with the lowest validation RMSE of the model's own horizon, in the series' units.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from seqtext.checkpoint import Checkpoint
from seqtext.distributed import Shard
from seqtext.errors import ConfigError, DataError
from seqtext.forecaster.model import Forecaster
from seqtext.forecaster.series import SPLITS, evaluate_forecaster, load_series, step_targets, windows
from seqtext.recipe import Recipe


class ForecasterTask:
    kind = "forecaster"
    score_name = "rmse"
    higher_is_better = False

    def __init__(self, recipe: Recipe, saved: Checkpoint | None, log: Callable[[str], None], data=None):
        if data is not None:
            raise ConfigError("a forecaster reads its series from the recipe's series file; it takes no in-memory data")
        self.recipe, self.series = recipe, load_series(recipe)
        if saved is not None:
            self.model = saved.model
        else:
            torch.manual_seed(recipe.seed)
            self.model = Forecaster(recipe.model, *self.series.scaling())
        self.tokenizer, self.label_map, self.model_args = None, None, {}
        self.runner, self.shard = self.model, Shard()
        config, horizon = recipe.series, recipe.model.horizon
        pairs = step_targets if config.per_step_loss else windows
        inputs, targets = pairs(self.series.values, 0, self.series.bounds[0], config.window, horizon)
        if len(inputs) == 0:
            raise DataError(
                f"{self.series.name}: the train part is too short for a window of {config.window} and horizon {horizon}"
            )
        with torch.no_grad():
            self.inputs = self.model.normalize(torch.from_numpy(inputs))
            self.targets = self.model.normalize(torch.from_numpy(targets))
        self.batch_size = recipe.batching.batch_size

    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.inputs) / self.batch_size)

    def epoch(self, epoch: int) -> list[torch.Tensor]:
        generator = torch.Generator().manual_seed(self.recipe.seed * 1000 + epoch)
        return list(torch.randperm(len(self.inputs), generator=generator).split(self.batch_size))

    def step(self, batch: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, dict]:
        mine = self.shard.take(batch)
        inputs, targets = self.inputs[mine].to(device), self.targets[mine].to(device)
        outputs = self.runner(inputs)  # (B, T, horizon)
        if not self.recipe.series.per_step_loss:
            outputs = outputs[:, -1]  # (B, horizon)
        if self.shard.world == 1:
            loss = F.mse_loss(outputs, targets)
        else:
            loss = self.shard.mean(((outputs - targets) ** 2).sum(), float(len(batch) * targets[0].numel()))
        return loss, loss, {"n": len(batch), "tokens": inputs.numel()}

    def validate(self, device: torch.device) -> dict:
        report = evaluate_forecaster(self.model, self.series, "validation", self.recipe.series.window, with_baselines=False)
        return {
            "loss": report["model"]["rmse"] ** 2,
            "rmse": report["model"]["rmse"],
            "mae": report["model"]["mae"],
            "n": report["n"],
        }

    def carried(self) -> dict[str, torch.Tensor]:
        return {}

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        pass

    def data_summary(self) -> dict:
        values = {split: self.series.part(split)[1] - self.series.part(split)[0] for split in SPLITS}
        return {"source": self.series.name, "values": values}

    @staticmethod
    def describe(result: dict) -> str:
        return f"best validation RMSE {result['rmse']:.4f}, MAE {result['mae']:.4f}"
