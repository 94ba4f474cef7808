import pytest
import torch
import torch.nn.functional as F

from seqtext.errors import ConfigError
from seqtext.models.charlm import CharLM, LanguageModelConfig


def _model(cell="lstm", layers=2, **options):
    torch.manual_seed(0)
    return CharLM(LanguageModelConfig(16, 24, layers, cell, **options), vocab_size=30).double().eval()


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


def test_tied_weights_share_one_tensor_and_need_equal_sizes():
    model = CharLM(LanguageModelConfig(24, 24, 1, tie_weights=True), vocab_size=30)
    assert model.head.weight is model.embedding.weight
    with pytest.raises(ConfigError, match="tie_weights needs embedding_size == hidden_size, not 16 and 24"):
        LanguageModelConfig(16, 24, tie_weights=True)
