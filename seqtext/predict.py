"""Prediction for new texts, and the attention over their words, in the terminal or as a web page.

Each token's attention weight is tied to the characters it came from (the tokenizer's offsets), so the
shading falls on the text as the user wrote it, whatever the tokenizer did to it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import torch
from rich.text import Text

from seqtext.batching import BucketBatchSampler, collate
from seqtext.checkpoint import Checkpoint
from seqtext.errors import DataError
from seqtext.evaluate import MAX_TOKENS, SHAPE_MULTIPLE


@dataclass
class Prediction:
    text: str
    label: str
    probs: dict[str, float]
    spans: list[tuple[int, int]]  # the characters of each token the model read
    weights: list[float] | None  # attention per token (mean over heads for self-attention), or None

    def to_dict(self, explain: bool = False) -> dict:
        result = {"text": self.text, "label": self.label, "probs": self.probs}
        if explain and self.weights is not None:
            result["attention"] = [
                {"token": self.text[start:end], "start": start, "end": end, "weight": weight}
                for (start, end), weight in zip(self.spans, self.weights)
            ]
        return result


@torch.no_grad()
def predict(checkpoint: Checkpoint, texts: list[str], batch_size: int = 128, first: int = 1) -> list[Prediction]:
    """Label, class probabilities and attention for each text. A text with no tokens is an error naming
    its number (counted from ``first``)."""
    model, names = checkpoint.model, checkpoint.label_map.names
    max_length = checkpoint.recipe["data"]["max_length"]
    backend = checkpoint.tokenizer.backend
    if max_length:
        backend.enable_truncation(max_length)
    try:
        encodings = backend.encode_batch(texts, add_special_tokens=False)
    finally:
        backend.no_truncation()
    for number, (text, encoding) in enumerate(zip(texts, encodings), start=first):
        if not encoding.ids:
            raise DataError(f"text {number} ({text[:40]!r}) has no tokens for this model's tokenizer")
    predictions: list[Prediction | None] = [None] * len(texts)
    lengths = [len(e.ids) for e in encodings]
    batches = BucketBatchSampler(lengths, batch_size, max_tokens=MAX_TOKENS, pool_size=max(len(texts), 1), shuffle=False)
    for indices in batches:  # texts of similar length together, at most MAX_TOKENS padded tokens
        batch = collate([(torch.tensor(encodings[i].ids), None) for i in indices], SHAPE_MULTIPLE)
        out = model(batch.ids, batch.lengths, batch.mask)
        probs = torch.softmax(out.logits, dim=1)  # (B, C)
        attention = out.attention
        if attention is not None and attention.ndim == 3:
            attention = attention.mean(1)  # (B, T): self-attention's heads, averaged
        for row, index in enumerate(indices):
            weights = None if attention is None else attention[row, : lengths[index]].tolist()
            predictions[index] = Prediction(
                text=texts[index],
                label=names[int(probs[row].argmax())],
                probs={name: float(p) for name, p in zip(names, probs[row])},
                spans=[tuple(span) for span in encodings[index].offsets],
                weights=weights,
            )
    return predictions


def shaded(prediction: Prediction) -> Text:
    """The text with each token's background as strong as its attention weight (the strongest is full)."""
    text = Text(prediction.text)
    peak = max(prediction.weights) if prediction.weights else 0.0
    for (start, end), weight in zip(prediction.spans, prediction.weights or []):
        strength = weight / peak if peak > 0 else 0.0
        level = int(255 * (1 - strength))
        text.stylize(f"black on rgb(255,{255 - int(90 * strength)},{level})", start, end)
    return text


def html_page(predictions: list[Prediction], title: str = "seqtext attention") -> str:
    """A self-contained page: each text with its label and probability, words shaded by attention."""
    rows = []
    for prediction in predictions:
        peak = max(prediction.weights) if prediction.weights else 0.0
        parts, cursor = [], 0
        for (start, end), weight in zip(prediction.spans, prediction.weights or []):
            parts.append(html.escape(prediction.text[cursor:start]))
            alpha = weight / peak if peak > 0 else 0.0
            word = html.escape(prediction.text[start:end])
            parts.append(f'<span style="background: rgba(255, 140, 0, {alpha:.3f})" title="{weight:.4f}">{word}</span>')
            cursor = end
        parts.append(html.escape(prediction.text[cursor:]))
        probability = prediction.probs[prediction.label]
        rows.append(f"<p><b>{html.escape(prediction.label)}</b> {probability:.3f}<br>{''.join(parts)}</p>")
    style = "body { font-family: sans-serif; max-width: 50em; margin: 2em auto; line-height: 1.8 } span { border-radius: 3px }"
    head = f'<head><meta charset="utf-8"><title>{title}</title><style>{style}</style></head>'
    body = "\n".join([f"<h1>{title}</h1>", *rows])
    return f"<!doctype html>\n<html>{head}\n<body>\n{body}\n</body></html>\n"
