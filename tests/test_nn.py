import math

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqtext.nn import (
    AdditiveAttention,
    NgramBag,
    RecurrentEncoder,
    SelfAttentivePooling,
    last_pool,
    masked_softmax,
    max_pool,
    mean_pool,
    reverse_within_length,
)

LENGTHS = torch.tensor([7, 2, 5, 1])
MASK = torch.arange(7)[None, :] < LENGTHS[:, None]


def test_masked_softmax_is_zero_on_padding_and_on_empty_rows():
    scores = torch.randn(3, 5)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.bool)
    probs = masked_softmax(scores, mask)
    assert torch.allclose(probs[:2].sum(1), torch.ones(2)) and (probs[~mask] == 0).all()
    assert (probs[2] == 0).all() and not probs.isnan().any()
    assert probs[1, 0] == 1.0


def test_reverse_within_length_reverses_real_steps_only_and_undoes_itself():
    x = torch.arange(4 * 7, dtype=torch.float64).view(4, 7, 1)
    reversed_x = reverse_within_length(x, LENGTHS)
    assert reversed_x[1, :, 0].tolist() == [8, 7, 9, 10, 11, 12, 13]  # row 1 = 7..13, length 2
    assert torch.equal(reverse_within_length(reversed_x, LENGTHS), x)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize(("layers", "bidirectional"), [(1, False), (1, True), (2, True)])
def test_encoder_equals_packed_sequences_of_torch(cell, layers, bidirectional):
    torch.manual_seed(0)
    reference = (nn.LSTM if cell == "lstm" else nn.GRU)(
        6, 5, num_layers=layers, bidirectional=bidirectional, batch_first=True
    ).double()
    encoder = RecurrentEncoder(6, 5, layers, bidirectional, cell).double()
    with torch.no_grad():  # the same weights, laid out per direction and layer
        for layer in range(layers):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(encoder.forward_layers[layer], f"{name}_l0").copy_(getattr(reference, f"{name}_l{layer}"))
                if bidirectional:
                    getattr(encoder.backward_layers[layer], f"{name}_l0").copy_(getattr(reference, f"{name}_l{layer}_reverse"))
    x = torch.randn(4, 7, 6, dtype=torch.float64)
    packed = pack_padded_sequence(x, LENGTHS, batch_first=True, enforce_sorted=False)
    expected, _ = pad_packed_sequence(reference(packed)[0], batch_first=True, total_length=7)
    assert torch.allclose(encoder(x, LENGTHS, MASK), expected, atol=1e-12, rtol=0)


def test_additive_attention_with_hand_set_weights():
    attention = AdditiveAttention(2, 2).double()
    with torch.no_grad():
        attention.w.weight.copy_(torch.eye(2))
        attention.w.bias.zero_()
        attention.v.weight.copy_(torch.tensor([[2.0, 0.0]]))
    h = torch.tensor([[[0.5, 1.0], [-1.0, 3.0], [9.0, 9.0]]], dtype=torch.float64)  # the third step is padding
    mask = torch.tensor([[True, True, False]])
    context, weights = attention(h, mask)
    scores = [2 * math.tanh(0.5), 2 * math.tanh(-1.0)]  # v^T tanh(W h + b)
    expected = [math.exp(s) / sum(math.exp(t) for t in scores) for s in scores]
    assert weights[0].tolist() == pytest.approx([*expected, 0.0], abs=1e-15)
    assert context[0].tolist() == pytest.approx([0.5 * expected[0] - expected[1], expected[0] + 3 * expected[1]], abs=1e-15)


def test_self_attentive_pooling_heads_sum_to_one_and_the_penalty_is_as_defined():
    torch.manual_seed(0)
    pooling = SelfAttentivePooling(6, 8, heads=3)
    h = torch.randn(4, 7, 6)
    context, weights = pooling(h, MASK)
    assert context.shape == (4, 18) and weights.shape == (4, 3, 7)
    assert torch.allclose(weights.sum(-1), torch.ones(4, 3)) and (weights.transpose(1, 2)[~MASK] == 0).all()
    one_hot = torch.eye(3, 7)[None]  # each head on its own token: A A^T = I
    assert SelfAttentivePooling.penalty(one_hot).item() == 0.0
    same = torch.zeros(1, 2, 7)
    same[0, :, 0] = 1.0  # both heads on one token: A A^T - I = [[0, 1], [1, 0]]
    assert SelfAttentivePooling.penalty(same).item() == 2.0


def test_mean_max_and_last_pooling_ignore_padding():
    h = torch.randn(4, 7, 6)
    noisy = h.masked_fill(~MASK[:, :, None], 1e6)
    assert torch.allclose(mean_pool(h * MASK[:, :, None], MASK), mean_pool(noisy * MASK[:, :, None], MASK))
    assert torch.equal(max_pool(h, MASK), max_pool(noisy, MASK))
    assert torch.equal(max_pool(h, MASK)[3], h[3, 0])
    last = last_pool(h, LENGTHS, bidirectional=True)
    assert torch.equal(last[1], torch.cat([h[1, 1, :3], h[1, 0, 3:]]))
    assert torch.equal(last_pool(h, LENGTHS, bidirectional=False)[2], h[2, 4])


def test_ngram_bag_is_the_mean_of_its_words_and_hashed_pairs_weights():
    bag = NgramBag(vocab_size=10, num_classes=2, n=2, buckets=7)
    ids = torch.tensor([[5, 6, 7, 0], [4, 0, 0, 0]])
    mask = ids != 0
    pair = lambda a, b: 10 + (a * NgramBag.PRIME + b) % 7  # noqa: E731
    assert bag.features(ids, mask).tolist() == [[5, 6, 7, 0, pair(5, 6), pair(6, 7), 0], [4, 0, 0, 0, 0, 0, 0]]
    with torch.no_grad():
        bag.weight.weight.copy_(torch.arange(34, dtype=torch.float).reshape(17, 2))
        bag.weight.weight[0] = 0.0
    rows = [5, 6, 7, pair(5, 6), pair(6, 7)]
    expected = torch.stack([bag.weight.weight[rows].mean(0), bag.weight.weight[4]])  # (2, 2)
    assert torch.equal(bag(ids, mask), expected)
    words = NgramBag(vocab_size=10, num_classes=2, n=1, buckets=7)
    assert words.weight.num_embeddings == 10 and words.features(ids, mask).tolist() == ids.tolist()
    assert torch.equal(NgramBag(10, 3, 2, 7)(ids, mask), torch.zeros(2, 3))  # the weights start at 0
