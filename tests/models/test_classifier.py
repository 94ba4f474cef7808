import pytest
import torch

from seqtext.batching import EncodedTexts, collate
from seqtext.classifier.model import ClassifierConfig, TextClassifier
from seqtext.data import load_splits
from seqtext.errors import ConfigError
from seqtext.nn import POOLINGS
from seqtext.tokenizer import Tokenizer

from ..conftest import ROOT


@pytest.fixture(scope="module")
def sentences(data_dir):
    """Real SST-2 sentences of very different lengths."""
    texts = load_splits("sst2", data_directory=data_dir).splits["validation"]["text"]
    tokenizer = Tokenizer.load(ROOT / "vocab" / "sst2-word.json")
    encoded = EncodedTexts.from_texts(tokenizer, texts)
    order = torch.argsort(encoded.lengths)
    picks = [int(order[0]), int(order[len(order) // 2]), int(order[-1]), int(order[5])]
    return [encoded[i][0] for i in picks], tokenizer.vocab_size


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("ngrams", [0, 2])
def test_padding_changes_nothing(sentences, pooling, cell, bidirectional, ngrams):
    sequences, vocab_size = sentences
    torch.manual_seed(0)
    config = ClassifierConfig(
        embedding_size=16,
        hidden_size=12,
        num_layers=2,
        cell=cell,
        bidirectional=bidirectional,
        pooling=pooling,
        ngrams=ngrams,
        ngram_buckets=1000,
    )
    model = TextClassifier(config, vocab_size, 3).eval()
    if ngrams:
        torch.nn.init.normal_(model.ngrams.weight.weight[1:])  # not the zeros it starts with
    batch = collate([(s, 0) for s in sequences])
    assert batch.lengths.max() > 4 * batch.lengths.min()
    together = model(batch.ids, batch.lengths, batch.mask).logits
    for row, sequence in enumerate(sequences):
        alone = model(sequence[None], torch.tensor([len(sequence)]), torch.ones(1, len(sequence), dtype=torch.bool)).logits
        assert torch.allclose(together[row], alone[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("pooling", ["attention", "self_attention"])
def test_attention_sums_to_one_on_real_tokens_and_is_zero_on_padding(sentences, pooling):
    sequences, vocab_size = sentences
    model = TextClassifier(ClassifierConfig(embedding_size=16, hidden_size=12, pooling=pooling), vocab_size, 2).eval()
    batch = collate([(s, 0) for s in sequences])
    attention = model(batch.ids, batch.lengths, batch.mask).attention
    if pooling == "self_attention":
        assert attention.shape == (4, 4, batch.ids.shape[1])
        attention = attention.reshape(-1, attention.shape[-1])
        mask = batch.mask.repeat_interleave(4, dim=0)
    else:
        mask = batch.mask
    assert torch.allclose(attention.sum(1), torch.ones(len(attention)))
    assert (attention[~mask] == 0).all()


def test_pooling_without_attention_returns_none_and_penalty_only_when_asked():
    model = TextClassifier(ClassifierConfig(pooling="mean"), 50, 2)
    ids = torch.randint(4, 50, (2, 5))
    out = model(ids, torch.tensor([5, 3]), torch.arange(5)[None] < torch.tensor([[5], [3]]))
    assert out.attention is None and out.penalty is None and out.logits.shape == (2, 2)
    penalised = TextClassifier(ClassifierConfig(pooling="self_attention", attention_penalty=1.0), 50, 2)
    assert penalised(ids, torch.tensor([5, 3]), torch.ones(2, 5, dtype=torch.bool)).penalty.ndim == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cell", "rnn", "model.cell must be one of lstm, gru"),
        ("dropout", 1.0, "model.dropout must be in [0, 1)"),
        ("num_layers", 0, "model.num_layers must be at least 1"),
        ("ngrams", 3, "model.ngrams must be 0, 1, 2 or auto, not 3"),
        ("ngram_buckets", 0, "model.ngram_buckets must be at least 1"),
        ("ngram_loss", "sum", "model.ngram_loss must be joint or separate, not 'sum'"),
    ],
)
def test_config_is_validated(field, value, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(")", r"\)")):
        ClassifierConfig(**{field: value})


def test_concat_pooling_is_the_last_state_the_maximum_and_the_mean(sentences):
    from seqtext.nn import last_pool, max_pool, mean_pool

    ids, vocab_size = sentences
    torch.manual_seed(0)
    model = TextClassifier(ClassifierConfig(embedding_size=16, hidden_size=12, pooling="concat"), vocab_size, 2).eval()
    batch = collate([(x, None) for x in ids])
    h = model.encoder(model.embedding(batch.ids), batch.lengths, batch.mask)  # (B, T, 24)
    context = torch.cat([last_pool(h, batch.lengths, True), max_pool(h, batch.mask), mean_pool(h, batch.mask)], dim=1)
    assert model.head.in_features == 3 * 24
    assert torch.equal(model(batch.ids, batch.lengths, batch.mask).logits, model.head(context))
