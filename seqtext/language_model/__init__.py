"""The recurrent language model over characters, words or BPE pieces, forward or backward, with a full,
tied or adaptive output layer.

``model`` (config, module, ``OutputLayer``), ``data`` (a corpus as id streams), ``task`` (training with
truncated backpropagation through time), ``evaluation`` (perplexity, bits per character), ``generate``
(temperature, top-k, top-p), ``report``, ``export`` and ``api`` (``seqtext.load``'s ``LanguageModel``).
"""

from seqtext.kinds import Kind
from seqtext.language_model.model import LanguageModelConfig, RecurrentLanguageModel

KIND = Kind(
    "language_model",
    LanguageModelConfig,
    RecurrentLanguageModel,
    task="seqtext.language_model.task:LanguageModelTask",
    api="seqtext.language_model.api:LanguageModel",
    report="seqtext.language_model.report:print_language_model_evaluation",
    renamed=(("head.", "output.head."), ("projection.", "output.projection.")),  # before OutputLayer
    summary="seqtext.language_model.data:corpus_summary",
    texts="seqtext.language_model.data:corpus_tokenizer_texts",
    route="generate",
    export="seqtext.language_model.export:language_model_graph",
    exported="seqtext.language_model.export:ExportedLanguageModel",
    int8=True,
)
