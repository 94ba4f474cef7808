"""Forecasting: series loading and splitting by time, windows, baselines, the forecaster, and the CLI."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from seqtext.cli import main
from seqtext.errors import ConfigError, DataError
from seqtext.forecaster.model import Forecaster, ForecasterConfig
from seqtext.forecaster.series import Series, baselines, errors, load_series, read_values, step_targets, windows
from seqtext.recipe import load_recipe
from seqtext.training import train

from .conftest import RECIPES


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _write_csv(path, values, header="date,value"):
    rows = [header] + [f"2020-{i:04d},{v}" for i, v in enumerate(values)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_windows_read_only_the_past_and_keep_targets_inside_their_part():
    values = np.arange(100, dtype=np.float64)  # each value is its own index
    for start, end in ((0, 70), (70, 85), (85, 100)):
        inputs, targets = windows(values, start, end, window=8, horizon=3)
        assert targets.min() == max(start, 8) and targets.max() == end - 1
        assert len(inputs) == end - 3 + 1 - max(start, 8)
        np.testing.assert_array_equal(inputs[:, -1] + 1, targets[:, 0])  # the window ends just before its targets
        np.testing.assert_array_equal(np.diff(np.concatenate([inputs, targets], axis=1), axis=1), 1)


def test_per_step_targets_are_the_values_after_each_step():
    values = np.arange(60, dtype=np.float64)
    inputs, targets = step_targets(values, 0, 40, window=5, horizon=2)
    assert inputs.shape == (40 - 5 - 2 + 1, 5) and targets.shape == (len(inputs), 5, 2)
    np.testing.assert_array_equal(targets[:, :, 0], inputs + 1)
    np.testing.assert_array_equal(targets[:, :, 1], inputs + 2)
    assert targets.max() == 39 and inputs.min() == 0


def test_the_sine_series_splits_by_time_and_scales_by_its_train_part():
    series = load_series(load_recipe(RECIPES / "sine.yaml"))
    assert len(series.values) == 2000 and series.bounds == (1400, 1700)
    assert series.part("test") == (1700, 2000)
    mean, std = series.scaling()
    assert mean == pytest.approx(series.values[:1400].mean(), abs=0) and std == pytest.approx(series.values[:1400].std(), abs=0)
    again = load_series(load_recipe(RECIPES / "sine.yaml", ["--seed", "5"]))  # the training seed leaves the data alone
    np.testing.assert_array_equal(series.values, again.values)


def test_sunspots_ships_inside_statsmodels_and_splits_by_year():
    series = load_series(load_recipe(RECIPES / "sunspots.yaml"))
    assert len(series.values) == 309 and series.time[0] == 1700 and series.time[-1] == 2008
    assert series.bounds == (247, 278) and series.time[247] == 1947 and series.time[278] == 1978


def test_baselines_match_hand_computed_forecasts():
    values = np.array([1.0, 5.0, 2.0, 6.0, 3.0, 7.0, 4.0, 8.0, 5.0, 9.0, 6.0, 10.0])
    series = Series("zigzag", values, np.arange(12.0), (8, 10))
    found = baselines(series, np.array([8, 10]), steps=2, window=2, season=2)
    np.testing.assert_array_equal(found["last_value"], [[8.0, 8.0], [9.0, 9.0]])
    np.testing.assert_array_equal(found["seasonal"], [[4.0, 8.0], [5.0, 9.0]])  # the value two steps back
    found = baselines(series, np.array([10]), steps=3, window=2, season=2)
    np.testing.assert_array_equal(found["seasonal"], [[5.0, 9.0, 5.0]])  # past the season it repeats its own forecast


def test_the_autoregression_baseline_recovers_an_exact_ar2_process():
    values = [1.0, 0.5]
    for _ in range(200):
        values.append(0.6 * values[-1] - 0.3 * values[-2] + 1.0)
    series = Series("ar2", np.array(values), np.arange(202.0), (150, 180))
    predicted = baselines(series, np.arange(180, 195), steps=4, window=2)["autoregression"]
    truth = np.stack([series.values[t : t + 4] for t in range(180, 195)])
    np.testing.assert_allclose(predicted, truth, atol=1e-9)


def test_errors_are_rmse_and_mae_overall_and_per_step():
    found = errors(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[0.0, 2.0], [3.0, 0.0]]))
    assert found["rmse"] == pytest.approx(np.sqrt(17 / 4)) and found["mae"] == pytest.approx(5 / 4)
    assert found["rmse_per_step"] == pytest.approx([np.sqrt(0.5), np.sqrt(8.0)])
    assert found["mae_per_step"] == pytest.approx([0.5, 2.0])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_forecaster_emits_an_output_per_step_that_reads_only_the_past(cell):
    torch.manual_seed(0)
    model = Forecaster(ForecasterConfig(cell=cell, hidden_size=8, num_layers=2, horizon=3)).double().eval()
    x = torch.randn(4, 10, dtype=torch.float64)
    out = model(x)
    assert out.shape == (4, 10, 3)
    changed = x.clone()
    changed[:, 6] += 1.0
    after = model(changed)
    torch.testing.assert_close(after[:, :6], out[:, :6], rtol=0, atol=0)
    assert (after[:, 6:] - out[:, 6:]).abs().amin(dim=(0, 2)).gt(0).all()


def test_recursive_forecasts_feed_predictions_back_and_direct_ones_read_the_last_step():
    torch.manual_seed(0)
    one = Forecaster(ForecasterConfig(hidden_size=8), center=3.0, scale=2.0).eval()
    history = torch.randn(5, 12, dtype=torch.float64) * 2 + 3
    window, expected = history.clone(), []
    for _ in range(3):
        following = one(one.normalize(window))[:, -1, 0].double() * 2 + 3
        expected.append(following)
        window = torch.cat([window[:, 1:], following[:, None]], dim=1)
    torch.testing.assert_close(one.forecast(history, 3), torch.stack(expected, dim=1), rtol=0, atol=1e-6)
    three = Forecaster(ForecasterConfig(hidden_size=8, horizon=3)).eval()
    torch.testing.assert_close(three.forecast(history, 2), three(three.normalize(history))[:, -1, :2].double(), rtol=0, atol=0)
    with pytest.raises(ConfigError, match="needs a model of horizon >= 4"):
        three.forecast(history, 4, strategy="direct")


def test_the_test_tail_leaks_into_neither_scaling_nor_training(tmp_path):
    """Two files equal in their train part and different after it scale alike and train to bit-identical weights."""
    rng = np.random.default_rng(0)
    head = np.sin(np.arange(300) / 5) + rng.normal(0, 0.1, 300)
    files = []
    for name, tail in (("a", rng.normal(0, 1, 100)), ("b", rng.normal(50, 10, 100))):
        files.append(_write_csv(tmp_path / f"{name}.csv", np.concatenate([head, tail])))
    weights = []
    for path in files:
        recipe = load_recipe(
            RECIPES / "sine.yaml",
            ["--data.dataset", str(path), "--series.window", "10", "--series.season", "null", "--train.max_steps", "12"],
        )
        series = load_series(recipe)
        assert series.scaling() == (head[:280].mean(), head[:280].std())
        assert series.bounds == (280, 340)  # 400 values: validation and test 60 each; the files differ from 300 on
        train(recipe, tmp_path / path.stem, progress=False)
        weights.append(load_file(str(tmp_path / path.stem / "last" / "model.safetensors")))
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        torch.testing.assert_close(weights[0][key], weights[1][key], rtol=0, atol=0)


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ("date,value\n1,0.5\n2,abc\n3,0.7\n", "line 3: 'abc' in column 'value' is not a number"),
        ("date,value\n1,0.5\n2,0.6\n3,\n", "line 4: missing value in column 'value'"),
        ("date,value\n1,0.5\n2,nan\n", "line 3: 'nan' in column 'value' is not a finite number"),
        ("date,value\n1,0.5\n2\n", "line 3: expected 2 fields, found 1"),
        ("date,level\n1,0.5\n", "no column 'value' (columns: date, level); set series.value_column"),
    ],
)
def test_bad_values_in_a_csv_name_the_row(tmp_path, rows, problem):
    path = tmp_path / "series.csv"
    path.write_text(rows)
    with pytest.raises(DataError) as caught:
        read_values(path, "value")
    assert str(caught.value) == (f"{path}, {problem}" if problem.startswith("line") else f"{path}: {problem}")


def test_jsonl_series_read_numbers_and_name_a_null_row(tmp_path):
    path = tmp_path / "series.jsonl"
    path.write_text('{"value": 1}\n{"value": 2.5}\n')
    np.testing.assert_array_equal(read_values(path, "value"), [1.0, 2.5])
    path.write_text('{"value": 1}\n{"value": null}\n')
    with pytest.raises(DataError, match=r"series.jsonl, line 2: missing value in column 'value'"):
        read_values(path, "value")


def test_training_on_a_bad_csv_is_one_line_and_writes_nothing(tmp_path, capsys):
    path = _write_csv(tmp_path / "bad.csv", [0.1 * i for i in range(50)] + ["twelve"] + [0.0] * 50)
    code, out, err = _run(capsys, "train", RECIPES / "sine.yaml", "--data", path, "--out", tmp_path / "run")
    assert code == 2 and out == ""
    assert err == f"seqtext: error: {path}, line 52: 'twelve' in column 'value' is not a number\n"
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_sine_recipe_beats_the_last_value_baseline_through_the_cli(tmp_path, capsys):
    """The seeded sine recipe, trained in full: its test RMSE is well below repeating the last value."""
    run = tmp_path / "sine"
    code, out, _ = _run(capsys, "train", RECIPES / "sine.yaml", "--out", run)
    assert code == 0 and "best validation RMSE" in out
    code, out, _ = _run(capsys, "evaluate", run, "--json", "--plot", tmp_path / "sine.png")
    report = json.loads(out)
    assert code == 0 and report["split"] == "test" and report["n"] == 300
    last_value = report["baselines"]["last_value"]["rmse"]
    assert report["model"]["rmse"] < 0.75 * last_value, (report["model"]["rmse"], last_value)
    assert (tmp_path / "sine.png").read_bytes()[:4] == b"\x89PNG"
    code, out, _ = _run(capsys, "evaluate", run, "--horizon", "5", "--json")
    report = json.loads(out)
    assert report["strategy"] == "recursive" and report["n"] == 296
    assert len(report["model"]["rmse_per_step"]) == 5 == len(report["baselines"]["seasonal"]["rmse_per_step"])
    code, out, _ = _run(capsys, "evaluate", run, "--horizon", "5")
    assert code == 0 and "RMSE h=5" in out and "AR(40)" in out


@pytest.fixture(scope="module")
def sine_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "sine"
    assert main(["train", str(RECIPES / "sine.yaml"), "--out", str(run), "--max-steps", "2"]) == 0
    return run


def test_horizon_and_strategy_are_refused_for_a_classifier(trained_run, capsys):
    code, _, err = _run(capsys, "evaluate", trained_run, "--horizon", "3")
    assert code == 2 and err == "seqtext: error: --horizon and --strategy are for forecasters, not a classifier\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--horizon", "0"], "--horizon must be at least 1, not 0"),
        (["--split", "dev"], "--split must be one of train, validation, test for a forecaster, not 'dev'"),
        (["--strategy", "direct", "--horizon", "3"], "a direct forecast of 3 steps needs a model of horizon >= 3, not 1"),
    ],
)
def test_forecaster_evaluation_rejects_bad_options(sine_run, capsys, argv, message):
    code, out, err = _run(capsys, "evaluate", sine_run, *argv)
    assert code == 2 and out == "" and err == f"seqtext: error: {message}\n"


def test_data_summarises_a_series(capsys):
    code, out, _ = _run(capsys, "data", RECIPES / "sunspots.yaml", "--json")
    summary = json.loads(out)["series"]
    assert code == 0 and summary["values"] == {"train": 247, "validation": 31, "test": 31}
    assert summary["windows"] == {"train": 227, "validation": 31, "test": 31}


@pytest.mark.parametrize("per_step", [False, True])
def test_a_resumed_forecaster_run_ends_with_the_same_weights(tmp_path, per_step):
    options = ["--train.max_steps", "30", "--train.eval_every", "10", "--series.per_step_loss", str(per_step).lower()]
    recipe = load_recipe(RECIPES / "sine.yaml", ["--model.horizon", "3", *options])
    whole = train(recipe, tmp_path / "whole", progress=False)
    train(recipe, tmp_path / "cut", progress=False, should_stop=lambda state: state.step >= 10)
    cut = train(recipe, tmp_path / "cut", resume=True, progress=False)
    assert cut["rmse"] == whole["rmse"] and cut["steps"] == whole["steps"] == 30
    first, second = (load_file(str(tmp_path / run / "last" / "model.safetensors")) for run in ("whole", "cut"))
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    assert first["center"].item() == load_series(recipe).scaling()[0]  # the scaling travels with the weights
