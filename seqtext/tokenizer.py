"""Tokenizers on Hugging Face ``tokenizers``: character, word and byte-level BPE, saved as one tokenizer.json.

Every seqtext tokenizer has the same four special tokens at the same ids, so models and batching can
rely on them: ``<pad>`` 0, ``<unk>`` 1, ``<bos>`` 2, ``<eos>`` 3. A special token written in the text
itself (a review that says "<unk>") is read as ordinary text, never as the special id.

- ``char``: every character a token; ``decode(encode(text)) == text`` for any text in the vocabulary.
- ``word``: ``<br />`` to a space, NFKC, optional lowercasing, words and punctuation runs; a vocabulary cut by frequency and size.
- ``bpe``: byte-level BPE (as GPT-2): no unknown tokens, and decode gives the normalised text back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import tokenizers
import torch
from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

from seqtext.errors import ConfigError, DataError

SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(len(SPECIAL_TOKENS))
KINDS = ("char", "word", "bpe")
_LINE_BREAK_TAG = "<br />"  # IMDB's reviews keep their HTML line breaks; a literal is 3x faster than a regex


class Tokenizer:
    """A trained ``tokenizers.Tokenizer`` with seqtext's special tokens, and encoding helpers."""

    def __init__(self, backend: tokenizers.Tokenizer):
        for expected, token in enumerate(SPECIAL_TOKENS):
            if backend.token_to_id(token) != expected:
                raise DataError(f"not a seqtext tokenizer: {token} must have id {expected}")
        backend.encode_special_tokens = True  # not saved in tokenizer.json, so set on every load
        backend.no_truncation()  # truncation is done per call (encode_with_offsets), never by this setting
        backend.no_padding()
        self.backend = backend
        spec = json.loads(backend.to_str())
        model, pre = spec["model"]["type"], (spec.get("pre_tokenizer") or {}).get("type")
        self.kind = "bpe" if model == "BPE" else "char" if pre == "Split" else "word"

    @classmethod
    def train(
        cls,
        kind: str,
        texts: Iterable[str],
        *,
        vocab_size: int | None = None,
        min_freq: int = 1,
        lowercase: bool = False,
    ) -> Tokenizer:
        """Train a tokenizer of ``kind`` on ``texts``.

        ``vocab_size`` caps the vocabulary, special tokens included (required for ``bpe``); tokens seen
        fewer than ``min_freq`` times are left out.
        """
        if kind not in KINDS:
            raise ConfigError(f"tokenizer kind must be one of {', '.join(KINDS)}, not {kind!r}")
        if kind == "bpe" and vocab_size is None:
            raise ConfigError("a bpe tokenizer needs a vocab_size")
        if vocab_size is not None and vocab_size <= len(SPECIAL_TOKENS):
            raise ConfigError(f"vocab_size must be more than {len(SPECIAL_TOKENS)}, not {vocab_size}")
        if min_freq < 1:
            raise ConfigError(f"min_freq must be at least 1, not {min_freq}")
        limit = vocab_size or 1 << 30
        steps = [normalizers.Replace(_LINE_BREAK_TAG, " "), normalizers.NFKC()] if kind != "char" else []
        if lowercase:
            steps.append(normalizers.Lowercase())
        if kind == "bpe":
            backend = tokenizers.Tokenizer(models.BPE())
            backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            backend.decoder = decoders.ByteLevel()
            trainer = trainers.BpeTrainer(
                vocab_size=limit,
                min_frequency=min_freq,
                special_tokens=list(SPECIAL_TOKENS),
                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                show_progress=False,
            )
        else:
            backend = tokenizers.Tokenizer(models.WordLevel(unk_token="<unk>"))
            if kind == "char":
                backend.pre_tokenizer = pre_tokenizers.Split(tokenizers.Regex(r"[\s\S]"), behavior="isolated")
                backend.decoder = decoders.Fuse()  # join characters back without spaces
            else:
                backend.pre_tokenizer = pre_tokenizers.Whitespace()  # decode joins words with spaces
            trainer = trainers.WordLevelTrainer(
                vocab_size=limit, min_frequency=min_freq, special_tokens=list(SPECIAL_TOKENS), show_progress=False
            )
        if steps:
            backend.normalizer = normalizers.Sequence(steps)
        backend.train_from_iterator(texts, trainer)
        return cls(backend)

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size()

    def token_to_id(self, token: str) -> int | None:
        return self.backend.token_to_id(token)

    def id_to_token(self, token_id: int) -> str | None:
        return self.backend.id_to_token(token_id)

    def encode(self, text: str, max_length: int | None = None) -> list[int]:
        """The ids of one text, truncated to ``max_length`` tokens when given."""
        if not isinstance(text, str):
            raise DataError(f"text must be a string, not {type(text).__name__}")
        return self.encode_batch([text], max_length)[0]

    def encode_batch(self, texts: list[str], max_length: int | None = None) -> list[list[int]]:
        """Ids for each text (in parallel, in Rust), truncated to ``max_length`` tokens when given."""
        return [ids for ids, _ in self.encode_with_offsets(texts, max_length)]

    def encode_with_offsets(
        self, texts: list[str], max_length: int | None = None
    ) -> list[tuple[list[int], list[tuple[int, int]]]]:
        """(ids, the (start, end) characters of each token) for each text, truncated to ``max_length`` tokens.

        Truncation keeps the first tokens, as the backend's own does without special tokens; it is done
        here rather than by switching the shared backend's setting, so that threads can encode at once.
        """
        if max_length is not None and max_length < 1:
            raise ConfigError(f"max_length must be at least 1, not {max_length}", parameter="max_length")
        if isinstance(texts, str):
            raise DataError("texts must be a list of strings, not one string")
        stop = max_length  # None keeps every token
        encodings = self.backend.encode_batch(texts, add_special_tokens=False)
        return [(encoding.ids[:stop], encoding.offsets[:stop]) for encoding in encodings]

    def encode_corpus(self, text: str) -> torch.Tensor:
        """A whole corpus as one id stream (N,), encoded line by line in parallel rather than as one long string."""
        lines = text.splitlines(keepends=True)
        ids = [i for encoding in self.backend.encode_batch(lines, add_special_tokens=False) for i in encoding.ids]
        return torch.tensor(ids, dtype=torch.long)

    def decode(self, ids: Iterable[int]) -> str:
        """Text for ``ids``; special tokens (padding, unknowns) are left out."""
        return self.backend.decode(list(ids), skip_special_tokens=True)

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.backend.save(str(path), pretty=False)

    @classmethod
    def load(cls, path: str | Path, text: str | None = None) -> Tokenizer:
        """The tokenizer saved at ``path``. ``text`` is that file's content when the caller has read it
        already: a checkpoint reads its files itself, within limits (seqtext/checkpoint.py)."""
        path = Path(path)
        if text is None and not path.is_file():
            raise DataError(f"{path}: no such tokenizer file")
        try:
            backend = tokenizers.Tokenizer.from_str(text) if text is not None else tokenizers.Tokenizer.from_file(str(path))
        except Exception as err:  # tokenizers raises a bare Exception for malformed JSON
            raise DataError(f"{path}: not a tokenizer file ({str(err).splitlines()[0]})") from None
        count, top = backend.get_vocab_size(), max(backend.get_vocab().values(), default=0)
        if top >= count:  # ids with gaps: serialising (as __init__ does) walks every id up to the largest, 16 s for 10**9
            raise DataError(f"{path}: token id {top} is past the vocabulary's {count} tokens (ids must have no gaps)")
        try:
            return cls(backend)
        except DataError as err:
            raise DataError(f"{path}: {err}") from None
