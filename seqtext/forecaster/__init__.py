"""The forecaster of a numeric series: a recurrent encoder over a window of values, predicting the next
``horizon`` values at once.

``model`` (config and module), ``series`` (the series, its parts, windows and evaluation against the
naive baselines), ``task`` (training), ``report`` and ``api`` (``seqtext.load``'s ``Forecaster``).
"""

from seqtext.forecaster.model import Forecaster, ForecasterConfig
from seqtext.kinds import Kind

KIND = Kind(
    "forecaster",
    ForecasterConfig,
    Forecaster,
    task="seqtext.forecaster.task:ForecasterTask",
    api="seqtext.forecaster.api:Forecaster",
    report="seqtext.forecaster.report:print_forecast_evaluation",
    aliases=("forecasting",),
    text=False,
    sections=("data", "batching", "model", "train", "series"),
    summary="seqtext.forecaster.series:series_summary",
)
