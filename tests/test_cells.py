import pytest
import torch
from torch import nn

from seqtext.cells import GRUCell, LSTMCell, LSTMFunction, LSTMLayer

SIZES = [(3, 5, 1, 1), (7, 4, 3, 6), (16, 32, 5, 20)]  # (input, hidden, batch, length)


def _run_cell(cell, x, state):
    outputs = []
    for t in range(x.shape[1]):
        state = cell(x[:, t], state)
        outputs.append(state[0] if isinstance(state, tuple) else state)
    return torch.stack(outputs, dim=1), state


@pytest.mark.parametrize("input_size,hidden_size,batch,length", SIZES)
def test_the_lstm_cell_equals_nn_lstm(input_size, hidden_size, batch, length):
    torch.manual_seed(0)
    reference = nn.LSTM(input_size, hidden_size, num_layers=2, batch_first=True).double()
    x = torch.randn(batch, length, input_size, dtype=torch.float64)
    h0, c0 = torch.randn(2, batch, hidden_size, dtype=torch.float64), torch.randn(2, batch, hidden_size, dtype=torch.float64)
    expected, (h_n, c_n) = reference(x, (h0, c0))
    first, (h1, c1) = _run_cell(LSTMCell.from_torch(reference, 0), x, (h0[0], c0[0]))
    second, (h2, c2) = _run_cell(LSTMCell.from_torch(reference, 1), first, (h0[1], c0[1]))
    assert torch.allclose(second, expected, atol=1e-6)
    assert torch.allclose(torch.stack([h1, h2]), h_n, atol=1e-6) and torch.allclose(torch.stack([c1, c2]), c_n, atol=1e-6)


@pytest.mark.parametrize("input_size,hidden_size,batch,length", SIZES)
def test_the_gru_cell_equals_nn_gru(input_size, hidden_size, batch, length):
    torch.manual_seed(0)
    reference = nn.GRU(input_size, hidden_size, batch_first=True).double()
    x = torch.randn(batch, length, input_size, dtype=torch.float64)
    h0 = torch.randn(1, batch, hidden_size, dtype=torch.float64)
    expected, h_n = reference(x, h0)
    outputs, h_last = _run_cell(GRUCell.from_torch(reference), x, h0[0])
    assert torch.allclose(outputs, expected, atol=1e-6) and torch.allclose(h_last, h_n[0], atol=1e-6)


def test_the_gate_weights_keep_their_names():
    cell = LSTMCell(3, 4)
    assert {name for name, _ in cell.named_parameters()} == {f"{p}_{g}" for p in "Wb" for g in "fiCo"}
    assert cell.W_f.shape == (4, 4 + 3) and cell.b_C.shape == (4,)


@pytest.mark.parametrize("input_size,hidden_size,batch,length", SIZES)
def test_the_hand_written_backward_equals_autograd_and_nn_lstm(input_size, hidden_size, batch, length):
    torch.manual_seed(1)
    reference = nn.LSTM(input_size, hidden_size, batch_first=True).double()
    layer = LSTMLayer.from_torch(reference)
    x = torch.randn(batch, length, input_size, dtype=torch.float64, requires_grad=True)
    state = tuple(torch.randn(batch, hidden_size, dtype=torch.float64, requires_grad=True) for _ in range(2))
    upstream = torch.randn(batch, length, hidden_size, dtype=torch.float64)

    def loss_of(outputs, h_last, c_last):  # uses every output, so every gradient path is exercised
        return (outputs * upstream).sum() + (h_last**2).sum() + c_last.sum()

    h, (h_last, c_last) = layer(x, state)
    hand = torch.autograd.grad(loss_of(h, h_last, c_last), [x, *state, *layer.cell.parameters()])
    h, (h_last, c_last) = _run_cell(layer.cell, x, state)
    auto = torch.autograd.grad(loss_of(h, h_last, c_last), [x, *state, *layer.cell.parameters()])
    assert all(torch.allclose(a, b, atol=1e-10) for a, b in zip(hand, auto))

    expected, (h_n, c_n) = reference(x, (state[0][None], state[1][None]))
    torch_params = [reference.weight_ih_l0, reference.weight_hh_l0, reference.bias_ih_l0]
    torch_grads = torch.autograd.grad(loss_of(expected, h_n[0], c_n[0]), [x, *state, *torch_params])
    assert all(torch.allclose(a, b, atol=1e-10) for a, b in zip(hand[:3], torch_grads[:3]))
    grad_w_ih, grad_w_hh, grad_b = torch_grads[3:]
    ours = dict(zip([name for name, _ in layer.cell.named_parameters()], hand[3:]))
    for gate, k in {"i": 0, "f": 1, "C": 2, "o": 3}.items():  # nn.LSTM's chunks; W_g = [W_hh_g, W_ih_g]
        rows = slice(k * hidden_size, (k + 1) * hidden_size)
        assert torch.allclose(ours[f"W_{gate}"], torch.cat([grad_w_hh[rows], grad_w_ih[rows]], dim=1), atol=1e-10)
        assert torch.allclose(ours[f"b_{gate}"], grad_b[rows], atol=1e-10)


def test_the_hand_written_backward_passes_gradcheck():
    torch.manual_seed(2)
    x = torch.randn(4, 3, 2, dtype=torch.float64, requires_grad=True)  # (T, B, I)
    h0, c0 = (torch.randn(3, 5, dtype=torch.float64, requires_grad=True) for _ in range(2))
    weight = (torch.randn(20, 7, dtype=torch.float64) * 0.5).requires_grad_()  # 4H x (H + I)
    bias = torch.randn(20, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(LSTMFunction.apply, (x, h0, c0, weight, bias))


def test_a_classifier_can_run_on_the_reference_lstm():
    from seqtext.classifier.model import ClassifierConfig, TextClassifier

    torch.manual_seed(3)
    fast = TextClassifier(ClassifierConfig(8, 6, cell="lstm", dropout=0.0, embedding_dropout=0.0), 20, 2).double().eval()
    study = (
        TextClassifier(ClassifierConfig(8, 6, cell="reference_lstm", dropout=0.0, embedding_dropout=0.0), 20, 2).double().eval()
    )
    study.load_state_dict(
        {k: v for k, v in fast.state_dict().items() if ".forward_layers." not in k and ".backward_layers." not in k}, strict=False
    )
    for direction in ("forward_layers", "backward_layers"):
        getattr(study.encoder, direction)[0] = LSTMLayer.from_torch(getattr(fast.encoder, direction)[0])
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    lengths, mask = torch.tensor([4, 2]), ids != 0
    assert torch.allclose(study(ids, lengths, mask).logits, fast(ids, lengths, mask).logits, atol=1e-10)
    study(ids, lengths, mask).logits.sum().backward()  # gradients through the hand-written backward
    assert study.encoder.forward_layers[0].cell.W_f.grad.abs().sum() > 0
