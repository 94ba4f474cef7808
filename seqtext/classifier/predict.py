"""Prediction for new texts, and the attention over their words, in the terminal or as a web page.

Each token's attention weight is tied to the characters it came from (the tokenizer's offsets), so the
shading falls on the text as the user wrote it, whatever the tokenizer did to it.
"""

from __future__ import annotations

import html
import unicodedata
from dataclasses import dataclass, field

import torch
from rich.text import Text

from seqtext.batching import MAX_TOKENS, SHAPE_MULTIPLE, BucketBatchSampler, collate
from seqtext.classifier.model import TextClassifier
from seqtext.tokenizer import Tokenizer

NO_TOKENS = "has no tokens for this model's tokenizer"
EMPTY = "is empty"
INVISIBLE = "Cf"  # Unicode's format characters: zero-width spaces and joiners, byte order marks, soft hyphens


def readable_problem(text: str) -> str | None:
    """Why no model can read ``text``, as the words that follow its name (``texts[3] is empty``), or None.

    A lone surrogate (``'\\ud800'``, or ``'\\udcff'`` for a byte Python could not decode) is no character, and
    the tokenizer cannot take it: the problem names it and its position (from 0). A text with nothing
    visible, only whitespace and format characters (``'\\u200b'``, ``'\\ufeff'``), is empty.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        return f"holds {text[err.start]!r} at character {err.start}, which is not a Unicode character"
    if all(char.isspace() or unicodedata.category(char) == INVISIBLE for char in text.strip()):  # to the first visible one
        return EMPTY
    return None


@dataclass
class Prediction:
    """A text's label and class probabilities, and the attention over its tokens; or, for a text the model
    cannot read (nothing visible, no tokens, not Unicode), ``error`` and no label."""

    text: str
    label: str | None
    probs: dict[str, float] | None
    spans: list[tuple[int, int]] = field(repr=False)  # the characters of each token the model read
    weights: list[float] | None = field(repr=False)  # attention per token (mean over heads for self-attention), or None
    error: str | None = None

    @property
    def attention(self) -> list[tuple[str, float]] | None:
        """(token text, weight) for each token the model read, or None for a model without attention."""
        if self.weights is None:
            return None
        return [(self.text[start:end], weight) for (start, end), weight in zip(self.spans, self.weights)]

    def to_dict(self, explain: bool = False) -> dict:
        if self.error is not None:
            return {"text": self.text, "error": self.error}
        result = {"text": self.text, "label": self.label, "probs": self.probs}
        if explain and self.weights is not None:
            result["attention"] = [
                {"token": self.text[start:end], "start": start, "end": end, "weight": weight}
                for (start, end), weight in zip(self.spans, self.weights)
            ]
        return result


@torch.no_grad()
def predict(
    model: TextClassifier,
    tokenizer: Tokenizer,
    names: tuple[str, ...],
    texts: list[str],
    max_length: int | None = None,
    batch_size: int = 128,
) -> list[Prediction]:
    """Label, class probabilities and attention for each text, on the model's device. A text with no
    tokens gets a Prediction with ``error`` set; the others are labelled as usual.

    Nothing shared is changed (the tokenizer truncates per call), so threads may predict at once.
    """
    device = next(model.parameters()).device

    def forward(ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        ids, lengths = ids.to(device), lengths.to(device)
        out = model(ids, lengths, torch.arange(ids.shape[1], device=device) < lengths[:, None])
        probs = torch.softmax(out.logits.float(), dim=1).cpu()  # (B, C)
        attention = out.attention
        if attention is not None and attention.ndim == 3:
            attention = attention.mean(1)  # (B, T): self-attention's heads, averaged
        return probs, None if attention is None else attention.float().cpu()

    return predict_with(forward, tokenizer, names, texts, max_length, batch_size)


@torch.no_grad()
def predict_with(forward, tokenizer: Tokenizer, names: tuple[str, ...], texts: list[str], max_length=None, batch_size=128):
    """``predict`` through ``forward(ids (B, T), lengths (B,)) -> (probs (B, C), attention (B, T) or None)``
    on the CPU: a PyTorch module's, or an exported graph's (seqtext/export.py). A text ``readable_problem``
    finds fault with is not tokenized: an empty one (nothing visible) gets the error of a text with no tokens."""
    problems = [readable_problem(text) for text in texts]
    encodings = tokenizer.encode_with_offsets(["" if problem else text for text, problem in zip(texts, problems)], max_length)
    errors = [NO_TOKENS if problem in (None, EMPTY) else problem for problem in problems]  # until labelled, below
    predictions = [Prediction(text, None, None, [], None, error) for text, error in zip(texts, errors)]
    readable = [i for i, (ids, _) in enumerate(encodings) if ids]
    lengths = [len(encodings[i][0]) for i in readable]
    batches = BucketBatchSampler(lengths, batch_size, max_tokens=MAX_TOKENS, pool_size=max(len(lengths), 1), shuffle=False)
    for rows in batches if readable else []:  # texts of similar length together, at most MAX_TOKENS padded tokens
        indices = [readable[row] for row in rows]
        batch = collate([(torch.tensor(encodings[i][0]), None) for i in indices], SHAPE_MULTIPLE)
        probs, attention = forward(batch.ids, batch.lengths)
        for row, index in enumerate(indices):
            ids, offsets = encodings[index]
            predictions[index] = Prediction(
                text=texts[index],
                label=names[int(probs[row].argmax())],
                probs={name: float(p) for name, p in zip(names, probs[row])},
                spans=[tuple(span) for span in offsets],
                weights=None if attention is None else attention[row, : len(ids)].tolist(),
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


def weighted(prediction: Prediction) -> str:
    """The text with each token followed by its attention weight, for output that is not a terminal:
    ``a great(0.62) film(0.11)``."""
    parts, cursor = [], 0
    for (_, end), weight in zip(prediction.spans, prediction.weights or []):
        parts.append(f"{prediction.text[cursor:end]}({weight:.2f})")
        cursor = end
    return "".join(parts) + prediction.text[cursor:]


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
