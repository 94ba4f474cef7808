import pytest
import torch
import torch.nn.functional as F

from seqtext.errors import ConfigError
from seqtext.language_model.model import IGNORE_INDEX, LanguageModelConfig, RecurrentLanguageModel
from seqtext.nn import embedding_dropout, locked_dropout


def _model(cell="lstm", layers=2, **options):
    torch.manual_seed(0)
    return RecurrentLanguageModel(LanguageModelConfig(16, 24, layers, cell, **options), vocab_size=30).double().eval()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_one_window_equals_two_windows_with_the_state_carried(cell):
    model = _model(cell)
    ids = torch.randint(4, 30, (3, 41))
    inputs, targets = ids[:, :-1], ids[:, 1:]
    whole, _ = model(inputs)
    first, state = model(inputs[:, :17])
    second, _ = model(inputs[:, 17:], state)
    split = torch.cat([first, second], dim=1)
    assert torch.allclose(whole, split, atol=1e-12)
    loss_whole = F.cross_entropy(whole.flatten(0, 1), targets.flatten())
    loss_split = F.cross_entropy(split.flatten(0, 1), targets.flatten())
    assert abs(loss_whole.item() - loss_split.item()) < 1e-5


def test_the_state_is_returned_not_kept():
    model = _model()
    ids = torch.randint(4, 30, (2, 5))
    _, state = model(ids)
    assert [tuple(s.shape) for s in state] == [(2, 2, 24), (2, 2, 24)]
    assert torch.equal(model(ids)[0], model(ids)[0])  # nothing on the module changed between calls


def test_tied_weights_share_one_tensor_through_a_projection_when_sizes_differ():
    model = RecurrentLanguageModel(LanguageModelConfig(24, 24, 1, tie_weights=True), vocab_size=30)
    assert model.output.head.weight is model.embedding.weight and model.output.projection is None
    projected = RecurrentLanguageModel(LanguageModelConfig(16, 24, 1, tie_weights=True), vocab_size=30)
    assert projected.output.head.weight is projected.embedding.weight
    assert tuple(projected.output.projection.weight.shape) == (16, 24)  # hidden 24 -> embedding 16
    logits, _ = projected(torch.randint(30, (2, 5)))
    assert tuple(logits.shape) == (2, 5, 30)


def _adaptive(**options):
    torch.manual_seed(0)
    config = LanguageModelConfig(16, 24, 1, output="adaptive", adaptive_cutoffs=(8, 20), **options)
    return RecurrentLanguageModel(config, vocab_size=30).double().eval()


def test_adaptive_scores_are_log_probabilities_and_token_losses_match_them():
    model = _adaptive()
    ids = torch.randint(30, (3, 9))
    targets = torch.randint(30, (3, 9))
    targets[1, 4:] = IGNORE_INDEX
    scores, _ = model(ids)  # (B, T, V)
    assert torch.allclose(scores.exp().sum(-1), torch.ones(3, 9, dtype=torch.float64), atol=1e-10)
    losses, predicted, _ = model.token_losses(ids, targets)
    expected = F.cross_entropy(scores.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX, reduction="none")
    assert torch.allclose(losses.flatten(), expected, atol=1e-10)
    assert torch.equal(losses[1, 4:], torch.zeros(5, dtype=torch.float64))
    assert predicted is None  # the most likely id would cost the full softmax


def test_a_window_with_nothing_to_score_still_has_a_gradient_path():
    model = _adaptive().train()
    ids = torch.randint(30, (2, 4))
    losses, _, _ = model.token_losses(ids, torch.full((2, 4), IGNORE_INDEX))
    losses.sum().backward()  # no error: the zero loss reaches the weights
    assert losses.sum().item() == 0.0 and model.rnn.weight_hh_l0.grad is not None


def test_full_softmax_token_losses_match_cross_entropy():
    model = _model()
    ids, targets = torch.randint(30, (2, 7)), torch.randint(30, (2, 7))
    logits, _ = model(ids)
    losses, predicted, _ = model.token_losses(ids, targets)
    assert torch.allclose(losses.flatten(), F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none"))
    assert torch.equal(predicted, logits.argmax(-1))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"output": "sampled"}, "model.output must be one of full, adaptive, not 'sampled'"),
        (
            {"output": "adaptive", "adaptive_cutoffs": (20, 8)},
            r"model.adaptive_cutoffs must be increasing positive ids, not \[20, 8\]",
        ),
        ({"output": "adaptive", "tie_weights": True}, "model.tie_weights works with output: full only"),
        ({"output": "adaptive", "adaptive_cutoffs": ()}, r"model.adaptive_cutoffs must be increasing positive ids, not \[\]"),
        ({"embedding_dropout": 1.0}, r"model.embedding_dropout must be in \[0, 1\), not 1.0"),
        ({"weight_drop": -0.1}, r"model.weight_drop must be in \[0, 1\), not -0.1"),
    ],
)
def test_bad_output_options_are_one_line_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        LanguageModelConfig(16, 24, 1, **options)


def test_adaptive_cutoffs_must_fit_the_vocabulary():
    with pytest.raises(ConfigError, match=r"below the vocabulary size 30, not \[8, 30\]"):
        RecurrentLanguageModel(LanguageModelConfig(16, 24, 1, output="adaptive", adaptive_cutoffs=(8, 30)), vocab_size=30)


def test_embedding_dropout_drops_whole_words_and_locked_dropout_one_mask_per_sequence():
    torch.manual_seed(0)
    embedding = torch.nn.Embedding(50, 6)
    ids = torch.tensor([[3, 3, 3, 7, 7, 9] * 4])
    x = embedding_dropout(embedding, ids, 0.5, training=True)  # (1, 24, 6)
    for word in (3, 7, 9):
        rows = x[ids == word]  # every occurrence of a word is dropped or kept together
        assert torch.equal(rows, rows[:1].expand_as(rows))
        assert torch.equal(rows[0], torch.zeros(6)) or torch.allclose(rows[0], embedding.weight[word] * 2)
    assert torch.equal(embedding_dropout(embedding, ids, 0.5, training=False), embedding(ids))
    h = torch.ones(3, 10, 8)
    dropped = locked_dropout(h, 0.5, training=True)
    assert torch.equal(dropped, dropped[:, :1].expand_as(dropped))  # the same mask at every step
    assert set(dropped.unique().tolist()) <= {0.0, 2.0}


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_weight_drop_is_dropconnect_on_the_hidden_to_hidden_weights_in_training_only(cell):
    torch.manual_seed(0)
    model = RecurrentLanguageModel(LanguageModelConfig(8, 6, 2, cell=cell, dropout=0.0, weight_drop=0.5), vocab_size=20).train()
    ids = torch.randint(20, (3, 7))
    by_hand = type(model.rnn)(8, 6, 2, batch_first=True)  # built before the draws below
    by_hand.load_state_dict(model.rnn.state_dict())
    stored = {name: weight.clone() for name, weight in model.rnn.named_parameters()}
    torch.manual_seed(1)
    h, _ = model.features(ids)  # (3, 7, 6)
    torch.manual_seed(1)  # the same draws: one mask for each layer's weight_hh, in layer order
    with torch.no_grad():
        for layer in range(2):
            weight = getattr(by_hand, f"weight_hh_l{layer}")
            weight.copy_(F.dropout(weight, 0.5))
    assert torch.equal(h, by_hand(model.embedding(ids))[0])
    assert all(torch.equal(weight, stored[name]) for name, weight in model.rnn.named_parameters())  # the weights stay whole
    h.sum().backward()
    assert model.rnn.weight_hh_l0.grad.count_nonzero() > 0  # the gradient reaches the stored weights
    assert torch.equal(model.eval().features(ids)[0], model.rnn(model.embedding(ids))[0])  # no drop in evaluation
