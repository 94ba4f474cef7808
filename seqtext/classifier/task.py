"""Training a text classifier: bucketed batches of a labelled split, cross-entropy (optionally weighted
by class and smoothed), and validation accuracy to pick the best checkpoint."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from seqtext.batching import collate
from seqtext.checkpoint import Checkpoint
from seqtext.classifier.data import prepare_classification
from seqtext.classifier.evaluation import evaluate_classifier
from seqtext.classifier.model import TextClassifier
from seqtext.data import data_root
from seqtext.distributed import Shard
from seqtext.errors import ConfigError, DataError
from seqtext.pipeline import bucket_sampler
from seqtext.recipe import Recipe
from seqtext.tokenizer import PAD_ID, Tokenizer
from seqtext.transfer import check_sizes, load_encoders, pretrained_encoders
from seqtext.vectors import WordVectors, matching_rows, read_vectors


def _pretrained(recipe: Recipe) -> dict | None:
    """The language models ``model.encoder_from`` names, checked against the classifier, or None."""
    if recipe.model.encoder_from is None:
        return None
    if vectors_source(recipe):
        raise ConfigError("give model.encoder_from or model.vectors, not both: each sets the embedding")
    encoders = pretrained_encoders(recipe.model.encoder_from)
    check_sizes(recipe.model, encoders)
    return encoders


# model.ngrams auto: the bag beside the encoder helps where labelled texts are few or long (TREC's 5,452
# questions, IMDB's reviews) and cost SST-2's 67,349 short phrases 0.8 points of validation accuracy
# (bench/RESULTS.md, "The default classifier, taken apart")
BAG_BELOW_TEXTS = 50_000
BAG_FROM_MEAN_TOKENS = 50


def choose_ngrams(train_set) -> tuple[int, str]:
    """``model.ngrams: auto`` resolved for a training split (EncodedTexts): 2 or 0, and why."""
    texts, mean = len(train_set), float(train_set.lengths.float().mean())
    size = f"{texts:,} training texts, {mean:.1f} tokens on average"
    if texts < BAG_BELOW_TEXTS or mean >= BAG_FROM_MEAN_TOKENS:
        why = f"fewer than {BAG_BELOW_TEXTS:,}" if texts < BAG_BELOW_TEXTS else f"at least {BAG_FROM_MEAN_TOKENS} tokens"
        return 2, f"{size} ({why}): a bag of words and word pairs beside the encoder"
    return 0, f"{size} (many, and short): the encoder alone"


def vectors_source(recipe: Recipe) -> str | None:
    """``model.vectors``, or ``train.vectors`` (its older name, still read)."""
    return recipe.model.vectors or recipe.train.vectors


@torch.no_grad()
def fill_embedding(model: TextClassifier, tokenizer: Tokenizer, vectors: WordVectors) -> None:
    """Start ``model``'s embedding from ``vectors``: each vocabulary word's vector in the first D dimensions of
    its row (and of the frozen copy, for ``vectors_trainable: both``), its row marked as holding one. Every
    other entry is drawn at the vectors' own scale, so that words without a vector (and extra dimensions)
    start neither louder nor quieter than those with one."""
    width = vectors.dim
    rows, found = matching_rows(tokenizer, vectors)
    embeddings = [e for e in (model.embedding, model.backward_embedding) if e is not None]
    values = vectors.vectors[torch.isfinite(vectors.vectors)]
    scale = float(values.std()) if values.numel() > 1 else 1.0
    for embedding in embeddings:
        embedding.weight.normal_(0.0, scale)
        embedding.weight[PAD_ID] = 0.0
        embedding.weight[rows, :width] = vectors.vectors[found]
    model.vector_rows[rows] = True
    if model.static_vectors is not None:
        model.static_vectors[rows] = vectors.vectors[found]


def vectors_coverage(model: TextClassifier, prepared, vectors: WordVectors) -> dict:
    """What the card says of the vectors: which file, and how much of the training split they cover."""
    ids = prepared.encoded["train"].flat  # (N,) every training token
    covered = model.vector_rows[ids]
    types = torch.unique(ids)
    return {
        "source": vectors.source, "sha256": vectors.sha256, "words": len(vectors.words), "dim": vectors.dim,
        "trainable": model.config.vectors_trainable, "vectors_vocab": model.config.vectors_vocab,
        "coverage": {"tokens": float(covered.float().mean()), "types": float(model.vector_rows[types].float().mean())},
    }  # fmt: skip


class ClassifierTask:
    kind = "classifier"
    score_name = "accuracy"
    higher_is_better = True

    def __init__(self, recipe: Recipe, saved: Checkpoint | None, log: Callable[[str], None], data=None):
        self.recipe, self.vectors_card = recipe, None
        if saved is not None:
            prepared = prepare_classification(recipe, tokenizer=saved.tokenizer, data=data)
            if saved.label_map != prepared.data.label_map:
                ours, theirs = prepared.data.label_map.names, saved.label_map.names
                raise DataError(f"{saved.path}: the data's labels {ours} differ from the run's {theirs}")
            self.model = saved.model
            self.vectors_card = (saved.card.get("data") or {}).get("vectors")
            if recipe.model.ngrams == "auto":  # a recipe given anew on resume: what the run chose
                recipe.model.ngrams = saved.model.config.ngrams
        else:
            prepared = self._build(recipe, log, data)
        self.runner, self.shard = self.model, Shard()
        self.tokenizer, self.label_map = prepared.tokenizer, prepared.data.label_map
        self.model_args = {"vocab_size": self.tokenizer.vocab_size, "num_classes": len(self.label_map)}
        if getattr(self.model, "vectors_size", 0):
            self.model_args["vectors_size"] = self.model.vectors_size
        self.source = prepared.data.source
        self.split_sizes = {split: len(table) for split, table in prepared.data.splits.items()}
        self.train_set, self.validation_set = prepared.encoded["train"], prepared.encoded["validation"]
        self.sampler = bucket_sampler(self.train_set, recipe.batching, recipe.seed)
        self.class_weight = None
        if recipe.train.class_weights == "balanced":
            counts = torch.bincount(self.train_set.labels, minlength=len(self.label_map)).double()
            self.class_weight = (counts.sum() / (len(self.label_map) * counts.clamp(min=1))).float()

    def _build(self, recipe: Recipe, log: Callable[[str], None], data):
        """A new model: its tokenizer (from a file, a pretrained encoder, or the training split and the
        vectors' words), and its embedding started from pretrained vectors or encoders."""
        encoders = _pretrained(recipe)
        vectors = read_vectors(vectors_source(recipe)) if vectors_source(recipe) else None
        if vectors is not None and recipe.tokenizer.path is None and vectors.lowercase != recipe.tokenizer.lowercase:
            log(f"seqtext: tokenizer.lowercase {str(vectors.lowercase).lower()}: casing follows the vectors")
            recipe.tokenizer.lowercase = vectors.lowercase
        tokenizer = encoders["forward"].tokenizer if encoders else None
        prepared = prepare_classification(recipe, tokenizer=tokenizer, data=data, vectors=vectors)
        if recipe.model.ngrams == "auto":
            recipe.model.ngrams, why = choose_ngrams(prepared.encoded["train"])
            log(f"seqtext: model.ngrams auto -> {recipe.model.ngrams}: {why}")
        torch.manual_seed(recipe.seed)
        size = vectors.dim if vectors is not None else 0
        self.model = TextClassifier(recipe.model, prepared.tokenizer.vocab_size, len(prepared.data.label_map), size)
        if encoders:
            load_encoders(self.model, encoders)
            log(f"seqtext: tokenizer, embedding and {' and '.join(encoders)} layers from {recipe.model.encoder_from}")
        if vectors is not None:
            fill_embedding(self.model, prepared.tokenizer, vectors)
            self.vectors_card = vectors_coverage(self.model, prepared, vectors)
            cover = self.vectors_card["coverage"]
            log(f"seqtext: word vectors {vectors.source} ({len(vectors.words):,} x {vectors.dim}, "
                f"{recipe.model.vectors_trainable}) cover {cover['tokens']:.1%} of the training tokens and "
                f"{cover['types']:.1%} of its words; {prepared.tokenizer_source}")  # fmt: skip
        return prepared

    def steps_per_epoch(self) -> int:
        return len(self.sampler)

    def epoch(self, epoch: int) -> list[list[int]]:
        self.sampler.set_epoch(epoch)
        return self.sampler.batches()

    def step(self, batch: list[int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor, dict]:
        indices = batch
        batch = collate([self.train_set[i] for i in self.shard.take(indices)]).to(device)
        out = self.runner(batch.ids, batch.lengths, batch.mask)
        weight = None if self.class_weight is None else self.class_weight.to(device)
        smoothing = self.recipe.train.label_smoothing

        def cross_entropy(logits: torch.Tensor) -> torch.Tensor:
            if self.shard.world == 1:
                return F.cross_entropy(logits, batch.labels, weight=weight, label_smoothing=smoothing)
            losses = F.cross_entropy(logits, batch.labels, weight=weight, label_smoothing=smoothing, reduction="none")
            labels = self.train_set.labels[indices]
            count = float(len(indices) if weight is None else self.class_weight[labels].sum())
            return self.shard.mean(losses.sum(), count)

        loss = cross_entropy(out.logits)
        objective = loss
        if out.parts is not None and self.recipe.model.ngram_loss == "separate":
            objective = sum(cross_entropy(part) for part in out.parts)
        if out.penalty is not None:
            objective = objective + self.recipe.model.attention_penalty * out.penalty
        if self.recipe.train.adversarial > 0 and torch.is_grad_enabled():
            objective = objective + self._adversarial_loss(batch, out, cross_entropy)
        correct = int((out.logits.argmax(1) == batch.labels).sum())
        return loss, objective, {"correct": correct, "n": len(batch.labels), "tokens": int(batch.lengths.sum())}

    def _adversarial_loss(self, batch, out, cross_entropy) -> torch.Tensor:
        """Miyato et al. (2016): the loss again with each text's embedded sequence moved by train.adversarial
        (L2 over the sequence) along the gradient of the encoder's loss: the worst small change, to first
        order. The n-gram bag reads no embedding, so with its own loss only the encoder's half is trained so."""
        separate = out.parts is not None and self.recipe.model.ngram_loss == "separate"
        encoder_loss = cross_entropy(out.parts[0] if separate else out.logits)
        (grad,) = torch.autograd.grad(encoder_loss, out.embedded, retain_graph=True)
        grad = grad * batch.mask[..., None]  # (B, T, E): padding is no part of a text
        norm = grad.flatten(1).norm(dim=1).clamp(min=1e-12)[:, None, None]  # (B, 1, 1)
        moved = self.runner(batch.ids, batch.lengths, batch.mask, perturbation=self.recipe.train.adversarial * grad / norm)
        return cross_entropy(moved.parts[0] if separate else moved.logits)

    def validate(self, device: torch.device) -> dict:
        report = evaluate_classifier(self.model, self.validation_set, self.label_map.names, device=device)
        return {key: report[key] for key in ("loss", "accuracy", "macro_f1", "n")}

    def carried(self) -> dict[str, torch.Tensor]:
        return {}  # nothing outlives a step

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        pass

    def data_summary(self) -> dict:
        summary = {"source": self.source, "splits": self.split_sizes, "data_dir": data_root(self.recipe)}
        return summary if self.vectors_card is None else {**summary, "vectors": self.vectors_card}

    @staticmethod
    def describe(result: dict) -> str:
        return f"best validation accuracy {result['accuracy']:.4f}, macro-F1 {result['macro_f1']:.4f}"
