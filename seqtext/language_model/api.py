"""``seqtext.load`` of a language model: ``generate``, ``score``, ``evaluate``."""

from __future__ import annotations

from seqtext.api import Model
from seqtext.errors import ConfigError, DataError


class LanguageModel(Model):
    """A language model: ``generate`` continues a prompt, ``score`` measures a text."""

    kind = "language_model"
    evaluate_options = ("data_dir",)

    @property
    def unit(self) -> str:
        """What one step reads and writes: ``char`` for a character model, else ``token`` (word, BPE)."""
        return "char" if self.checkpoint.tokenizer.kind == "char" else "token"

    def generate(
        self,
        prompt: str = "",
        length: int = 500,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        num_samples: int = 1,
        stream: bool = False,
    ):
        """The text that follows ``prompt`` (without the prompt), ``length`` characters; a list of
        ``num_samples`` texts when more than one; with ``stream``, an iterator of the pieces as they are
        drawn (one sample). ``temperature`` 0 (or below ``seqtext.language_model.generate.GREEDY_BELOW``) takes the most
        likely character. The same seed, the same text."""
        from seqtext.language_model.generate import Sampling, TextStream, encode_prompt, generate

        if self.checkpoint.recipe["data"].get("reverse"):
            raise ConfigError(
                "this is a backward model (data.reverse): it reads text from its end; generate with a forward one", "prompt"
            )
        sampling = Sampling(temperature, top_k, top_p)
        tokenizer = self.checkpoint.tokenizer
        if stream:
            if num_samples != 1:
                raise ConfigError(f"stream draws one sample, not num_samples={num_samples}", "num_samples")
            steps = generate(self.module, tokenizer, prompt, length, 1, sampling, seed, stream=True, precision=self.precision)
            text = TextStream(tokenizer, encode_prompt(tokenizer, prompt))
            return (text.add(int(ids[0])) for ids in steps)
        samples = generate(self.module, tokenizer, prompt, length, num_samples, sampling, seed, precision=self.precision)
        return samples[0] if num_samples == 1 else samples

    def score(self, text: str) -> dict:
        """How well the model predicts ``text``: ``loss`` (nats per character), ``bpc``, ``perplexity``,
        ``accuracy`` of the next character, ``n_chars`` scored, ``n_unknown`` outside the vocabulary."""
        from seqtext.language_model.evaluation import evaluate_language_model

        if not isinstance(text, str):
            raise DataError(f"text must be a string, not {type(text).__name__}", "text")
        ids = self.checkpoint.tokenizer.encode_corpus(text)
        if len(ids) < 2:
            raise DataError(f"text must have at least 2 characters to score one after another, not {len(ids)}", "text")
        with self._autocast():
            return evaluate_language_model(self.module, ids, unit=self.unit)

    def _evaluate(self, data, split, data_dir=None) -> tuple[dict, str]:
        from seqtext.language_model.evaluation import corpus_evaluation_set, evaluate_language_model

        ids, description = corpus_evaluation_set(self.checkpoint, data, split, data_dir)
        return evaluate_language_model(self.module, ids, unit=self.unit), description
