"""The text classifier: an embedding (word vectors when given) and a recurrent encoder with a pooling,
an n-gram bag beside them, trained with cross-entropy.

``model`` (config and module), ``data`` (labelled splits, encoded), ``task`` (training), ``evaluation``
(accuracy, macro-F1, per class, confusion), ``predict`` (labels and attention), ``report``, ``export``,
``baselines`` (NBSVM-bi) and ``api`` (``seqtext.load``'s ``Classifier``).
"""

from seqtext.classifier.model import ClassifierConfig, TextClassifier
from seqtext.kinds import Kind

KIND = Kind(
    "classifier",
    ClassifierConfig,
    TextClassifier,
    task="seqtext.classifier.task:ClassifierTask",
    api="seqtext.classifier.api:Classifier",
    report="seqtext.classifier.report:print_evaluation",
    aliases=("classification",),
    summary="seqtext.classifier.data:classification_summary",
    texts="seqtext.classifier.data:labelled_texts",
    route="classify",
    worker_per_core=True,
    export="seqtext.classifier.export:classifier_graph",
    exported="seqtext.classifier.export:ExportedClassifier",
    token_batches=True,
    int8=True,
    renamed=(("attention.", "pooling.attention."),),  # the attention poolings, before nn.POOLINGS
)
