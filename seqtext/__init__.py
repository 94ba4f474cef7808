"""seqtext: sequence models on text, on PyTorch.

The pipeline, module by module: ``data`` (datasets, label maps) -> ``tokenizer`` -> ``batching`` ->
models -> training -> evaluation and generation. ``pipeline`` ties the first three to a ``recipe``.
"""

__version__ = "0.1.0"
