import pytest
import torch

from seqtext.batching import IGNORE_INDEX, BucketBatchSampler, EncodedTexts, LMStreams, collate, padding_efficiency
from seqtext.data import load_corpus, load_splits
from seqtext.errors import ConfigError
from seqtext.tokenizer import PAD_ID, UNK_ID, Tokenizer

from .conftest import ROOT


def _encoded(name, data_dir, max_length=None):
    data = load_splits(name, data_directory=data_dir)
    tokenizer = Tokenizer.load(ROOT / "vocab" / f"{name}-word.json")
    train = data.splits["train"]
    return EncodedTexts.from_texts(tokenizer, train["text"], train["label"], max_length)


@pytest.fixture(scope="module")
def sst2(data_dir):
    return _encoded("sst2", data_dir)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sst2", "imdb"])
def test_bucketed_padding_efficiency_is_at_least_0_90_at_batch_64(name, data_dir, sst2):
    encoded = sst2 if name == "sst2" else _encoded("imdb", data_dir)
    batches = BucketBatchSampler(encoded.lengths, 64, seed=0).batches()
    assert padding_efficiency(encoded.lengths, batches) >= 0.90
    random = BucketBatchSampler(encoded.lengths, 64, pool_size=64, seed=0).batches()
    assert padding_efficiency(encoded.lengths, random) < 0.6  # what bucketing saves


@pytest.mark.slow
def test_every_text_once_per_epoch_in_batches_of_the_asked_size(sst2):
    sampler = BucketBatchSampler(sst2.lengths, 64, seed=3)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(len(sst2)))
    assert len(batches) == len(sampler) == -(-len(sst2) // 64)
    assert sum(len(b) != 64 for b in batches) <= 1
    dropped = BucketBatchSampler(sst2.lengths, 64, seed=3, drop_last=True)
    assert len(list(dropped)) == len(dropped) == len(sst2) // 64
    assert all(len(b) == 64 for b in dropped)


@pytest.mark.slow
def test_order_depends_on_seed_and_epoch_only(sst2):
    first, again, other_seed = (BucketBatchSampler(sst2.lengths, 64, seed=s) for s in (0, 0, 1))
    assert first.batches() == again.batches()
    assert first.batches() != other_seed.batches()
    epoch0 = first.batches()
    first.set_epoch(1)
    assert first.batches() != epoch0
    first.set_epoch(0)
    assert first.batches() == epoch0


@pytest.mark.slow
def test_unshuffled_batches_are_in_order_within_pools(sst2):
    sampler = BucketBatchSampler(sst2.lengths[:640], 64, pool_size=640, shuffle=False)
    lengths = [int(sst2.lengths[i]) for b in sampler for i in b]
    assert lengths == sorted(lengths)


@pytest.mark.slow
def test_token_budget_bounds_every_batch(sst2):
    sampler = BucketBatchSampler(sst2.lengths, None, max_tokens=1000, seed=0)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(len(sst2)))
    assert all(len(b) * int(sst2.lengths[b].max()) <= 1000 for b in batches)
    assert len(sampler) == len(batches)
    capped = BucketBatchSampler(sst2.lengths, 32, max_tokens=1000, seed=0)
    assert max(len(b) for b in capped) == 32


def test_a_text_longer_than_the_budget_gets_a_batch_of_its_own():
    batches = BucketBatchSampler(torch.tensor([3, 50, 4]), None, max_tokens=10, shuffle=False).batches()
    assert sorted(map(sorted, batches)) == [[0, 2], [1]]


def test_sampler_arguments_are_checked():
    with pytest.raises(ConfigError, match="give batch_size, max_tokens, or both"):
        BucketBatchSampler([1, 2], None)
    with pytest.raises(ConfigError, match="batch_size must be at least 1, not 0"):
        BucketBatchSampler([1, 2], 0)


@pytest.mark.slow
def test_collate_pads_and_masks(sst2):
    batch = collate([sst2[i] for i in (0, 5, 17)])
    lengths = [int(sst2.lengths[i]) for i in (0, 5, 17)]
    assert batch.ids.shape == (3, max(lengths)) and batch.lengths.tolist() == lengths
    assert batch.mask.sum(1).tolist() == lengths
    assert (batch.ids[~batch.mask] == PAD_ID).all()
    for row, i in enumerate((0, 5, 17)):
        assert batch.ids[row, : lengths[row]].tolist() == sst2[i][0].tolist()
    assert batch.labels.tolist() == [sst2[i][1] for i in (0, 5, 17)]


@pytest.mark.parametrize(("multiple", "width"), [(1, 5), (4, 8), (5, 5), (64, 64)])
def test_collate_rounds_the_batch_length_up_to_a_multiple(multiple, width):
    batch = collate([(torch.tensor([4, 5, 6, 7, 8]), 0), (torch.tensor([9, 10]), 1)], multiple)
    assert batch.ids.shape == (2, width) and batch.lengths.tolist() == [5, 2]
    assert batch.ids[0, :5].tolist() == [4, 5, 6, 7, 8] and batch.ids[1, :2].tolist() == [9, 10]
    assert (batch.ids[~batch.mask] == PAD_ID).all() and batch.mask.sum(1).tolist() == [5, 2]


def test_unlabelled_texts_collate_without_labels_and_empty_texts_get_unk():
    encoded = EncodedTexts([[5, 6], []])
    assert encoded.lengths.tolist() == [2, 1] and encoded[1][0].tolist() == [UNK_ID]
    assert collate([encoded[0], encoded[1]]).labels is None


@pytest.mark.slow
@pytest.mark.parametrize(("batch_size", "bptt"), [(64, 128), (7, 33)])
def test_lm_streams_read_every_pair_of_the_corpus_once_in_order(data_dir, batch_size, bptt):
    text = load_corpus("tinyshakespeare", data_directory=data_dir)[0]
    ids = Tokenizer.load(ROOT / "vocab" / "shakespeare-char.json").encode_corpus(text)
    streams = LMStreams(ids, batch_size, bptt)
    windows = list(streams)
    assert len(windows) == len(streams)
    assert all(x.shape == y.shape and x.shape[0] == batch_size and x.shape[1] <= bptt for x, y in windows)
    inputs = torch.cat([x for x, _ in windows], dim=1).reshape(-1)  # row by row: the corpus order
    targets = torch.cat([y for _, y in windows], dim=1).reshape(-1)
    real = targets != IGNORE_INDEX
    assert int(real.sum()) == len(ids) - 1 == streams.n_targets
    assert torch.equal(inputs[real], ids[:-1]) and torch.equal(targets[real], ids[1:])
    assert real[: len(ids) - 1].all() and not real[len(ids) - 1 :].any()  # padding only at the very end


def test_a_corpus_shorter_than_the_batch_is_an_error():
    with pytest.raises(ConfigError, match="too short for 8 streams"):
        LMStreams(torch.arange(5), 8, 4)
