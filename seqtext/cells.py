"""The LSTM and GRU written out from their equations, for study; the models' fast path stays ``nn.LSTM``.

Each gate has its own weight on the concatenation [h_{t-1}, x_t], named as in the equations (docs/lstm.md):

    f_t  = sigma(W_f [h_{t-1}, x_t] + b_f)        forget gate
    i_t  = sigma(W_i [h_{t-1}, x_t] + b_i)        input gate
    C~_t = tanh(W_C [h_{t-1}, x_t] + b_C)         candidate cell state
    o_t  = sigma(W_o [h_{t-1}, x_t] + b_o)        output gate
    C_t  = f_t * C_{t-1} + i_t * C~_t             cell state
    h_t  = o_t * tanh(C_t)                        hidden state

``LSTMLayer`` runs a whole sequence through ``LSTMFunction``, whose backward pass is written by hand
(back-propagation through time) rather than left to autograd. ``from_torch`` copies the weights of an
``nn.LSTM`` / ``nn.GRU`` layer, which orders its gates i, f, g, o (r, z, n) and keeps two bias vectors.
"""

from __future__ import annotations

import torch
from torch import nn

LSTM_GATES = ("f", "i", "C", "o")  # the order of the rows of LSTMFunction's stacked weight
_TORCH_LSTM_ORDER = {"i": 0, "f": 1, "C": 2, "o": 3}  # nn.LSTM's chunks: input, forget, cell (g), output


def _torch_weights(module: nn.Module, layer: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    suffix = f"_l{layer}" if isinstance(module, (nn.LSTM, nn.GRU)) else ""
    return tuple(getattr(module, f"{name}{suffix}").detach() for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))


class LSTMCell(nn.Module):
    """One LSTM step from the equations above. Weights W_g: (H, H + I) on [h_{t-1}, x_t]; biases b_g: (H,)."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        bound = hidden_size**-0.5  # nn.LSTM's initialisation
        for gate in LSTM_GATES:
            setattr(self, f"W_{gate}", nn.Parameter(torch.empty(hidden_size, hidden_size + input_size).uniform_(-bound, bound)))
            setattr(self, f"b_{gate}", nn.Parameter(torch.empty(hidden_size).uniform_(-bound, bound)))

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, I), state (h_{t-1}, C_{t-1}): each (B, H) -> (h_t, C_t), each (B, H)."""
        h_prev, c_prev = state
        hx = torch.cat([h_prev, x], dim=1)  # (B, H + I)
        f = torch.sigmoid(hx @ self.W_f.T + self.b_f)  # (B, H)
        i = torch.sigmoid(hx @ self.W_i.T + self.b_i)  # (B, H)
        c_tilde = torch.tanh(hx @ self.W_C.T + self.b_C)  # (B, H)
        o = torch.sigmoid(hx @ self.W_o.T + self.b_o)  # (B, H)
        c = f * c_prev + i * c_tilde  # (B, H)
        h = o * torch.tanh(c)  # (B, H)
        return h, c

    def stacked(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The four gates' weights and biases stacked in LSTM_GATES order: (4H, H + I), (4H,)."""
        weight = torch.cat([getattr(self, f"W_{gate}") for gate in LSTM_GATES])
        return weight, torch.cat([getattr(self, f"b_{gate}") for gate in LSTM_GATES])

    @classmethod
    def from_torch(cls, module: nn.LSTM | nn.LSTMCell, layer: int = 0) -> LSTMCell:
        """A cell with the weights of ``module`` (layer ``layer``): W_g = [W_hh_g, W_ih_g], b_g = b_ih_g + b_hh_g."""
        w_ih, w_hh, b_ih, b_hh = _torch_weights(module, layer)
        hidden_size = w_hh.shape[1]
        cell = cls(w_ih.shape[1], hidden_size).to(w_ih.dtype)
        with torch.no_grad():
            for gate, k in _TORCH_LSTM_ORDER.items():
                rows = slice(k * hidden_size, (k + 1) * hidden_size)
                getattr(cell, f"W_{gate}").copy_(torch.cat([w_hh[rows], w_ih[rows]], dim=1))
                getattr(cell, f"b_{gate}").copy_(b_ih[rows] + b_hh[rows])
        return cell


class GRUCell(nn.Module):
    """One GRU step, in PyTorch's form (the reset gate applied after the recurrent product):

    r_t  = sigma(W_r [h_{t-1}, x_t] + b_r)              reset gate
    z_t  = sigma(W_z [h_{t-1}, x_t] + b_z)              update gate
    h~_t = tanh(W_hx x_t + b_hx + r_t * (W_hh h_{t-1} + b_hh))   candidate
    h_t  = (1 - z_t) * h~_t + z_t * h_{t-1}
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        bound = hidden_size**-0.5

        def parameter(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))

        self.W_r, self.b_r = parameter(hidden_size, hidden_size + input_size), parameter(hidden_size)
        self.W_z, self.b_z = parameter(hidden_size, hidden_size + input_size), parameter(hidden_size)
        self.W_hx, self.b_hx = parameter(hidden_size, input_size), parameter(hidden_size)
        self.W_hh, self.b_hh = parameter(hidden_size, hidden_size), parameter(hidden_size)

    def forward(self, x: torch.Tensor, h_prev: torch.Tensor) -> torch.Tensor:
        """x: (B, I), h_{t-1}: (B, H) -> h_t: (B, H)."""
        hx = torch.cat([h_prev, x], dim=1)  # (B, H + I)
        r = torch.sigmoid(hx @ self.W_r.T + self.b_r)  # (B, H)
        z = torch.sigmoid(hx @ self.W_z.T + self.b_z)  # (B, H)
        h_tilde = torch.tanh(x @ self.W_hx.T + self.b_hx + r * (h_prev @ self.W_hh.T + self.b_hh))  # (B, H)
        return (1 - z) * h_tilde + z * h_prev

    @classmethod
    def from_torch(cls, module: nn.GRU | nn.GRUCell, layer: int = 0) -> GRUCell:
        w_ih, w_hh, b_ih, b_hh = _torch_weights(module, layer)
        hidden_size = w_hh.shape[1]
        cell = cls(w_ih.shape[1], hidden_size).to(w_ih.dtype)
        r, z, n = (slice(k * hidden_size, (k + 1) * hidden_size) for k in range(3))  # PyTorch's order: r, z, n
        with torch.no_grad():
            cell.W_r.copy_(torch.cat([w_hh[r], w_ih[r]], dim=1))
            cell.b_r.copy_(b_ih[r] + b_hh[r])
            cell.W_z.copy_(torch.cat([w_hh[z], w_ih[z]], dim=1))
            cell.b_z.copy_(b_ih[z] + b_hh[z])
            cell.W_hx.copy_(w_ih[n])
            cell.b_hx.copy_(b_ih[n])
            cell.W_hh.copy_(w_hh[n])
            cell.b_hh.copy_(b_hh[n])
        return cell


class LSTMFunction(torch.autograd.Function):
    """A whole sequence through an LSTM layer, with back-propagation through time written by hand.

    forward(x (T, B, I), h0 (B, H), c0 (B, H), W (4H, H + I), b (4H,)) -> (h (T, B, H), h_T, C_T), where W
    and b stack the gates in LSTM_GATES order (f, i, C~, o).
    """

    @staticmethod
    def forward(ctx, x, h0, c0, weight, bias):
        T, H = x.shape[0], h0.shape[1]
        hs, cs, gates = [h0], [c0], []
        for t in range(T):
            hx = torch.cat([hs[-1], x[t]], dim=1)  # (B, H + I)
            z = hx @ weight.T + bias  # (B, 4H): pre-activations z_f, z_i, z_C, z_o
            f, i, o = torch.sigmoid(z[:, :H]), torch.sigmoid(z[:, H : 2 * H]), torch.sigmoid(z[:, 3 * H :])
            c_tilde = torch.tanh(z[:, 2 * H : 3 * H])
            cs.append(f * cs[-1] + i * c_tilde)  # C_t
            hs.append(o * torch.tanh(cs[-1]))  # h_t
            gates.append(torch.cat([f, i, c_tilde, o], dim=1))  # (B, 4H)
        h_all, c_all, gate_all = torch.stack(hs), torch.stack(cs), torch.stack(gates)  # (T+1, B, H) x2, (T, B, 4H)
        ctx.save_for_backward(x, weight, h_all, c_all, gate_all)
        return h_all[1:], h_all[-1], c_all[-1]

    @staticmethod
    def backward(ctx, grad_h, grad_h_last, grad_c_last):
        """dL/dh_t arrives from above (grad_h) and from step t + 1; dL/dC_t from step t + 1 through f_{t+1}."""
        x, weight, h_all, c_all, gate_all = ctx.saved_tensors
        T, H = x.shape[0], h_all.shape[2]
        grad_x = torch.empty_like(x)
        grad_weight, grad_bias = torch.zeros_like(weight), torch.zeros(weight.shape[0], dtype=x.dtype, device=x.device)
        dh_next, dc_next = grad_h_last.clone(), grad_c_last.clone()  # dL/dh_T and dL/dC_T from outside
        for t in reversed(range(T)):
            f, i, c_tilde, o = gate_all[t].split(H, dim=1)
            c_prev, tanh_c = c_all[t], torch.tanh(c_all[t + 1])  # C_{t-1}, tanh(C_t)
            dh = grad_h[t] + dh_next  # dL/dh_t
            do = dh * tanh_c  # dh_t/do_t = tanh(C_t)
            dc = dc_next + dh * o * (1 - tanh_c**2)  # dL/dC_t: the direct path plus through h_t
            df = dc * c_prev  # dC_t/df_t = C_{t-1}
            di = dc * c_tilde  # dC_t/di_t = C~_t
            dc_tilde = dc * i  # dC_t/dC~_t = i_t
            dc_next = dc * f  # dC_t/dC_{t-1} = f_t along the direct path
            dz = torch.cat(  # through the nonlinearities: sigma' = s(1 - s), tanh' = 1 - tanh^2
                [df * f * (1 - f), di * i * (1 - i), dc_tilde * (1 - c_tilde**2), do * o * (1 - o)], dim=1
            )  # (B, 4H) = delta_t
            hx = torch.cat([h_all[t], x[t]], dim=1)  # [h_{t-1}, x_t]: (B, H + I)
            grad_weight += dz.T @ hx  # dL/dW = sum_t delta_t [h_{t-1}, x_t]^T
            grad_bias += dz.sum(0)
            d_hx = dz @ weight  # (B, H + I)
            dh_next, grad_x[t] = d_hx[:, :H], d_hx[:, H:]
        return grad_x, dh_next, dc_next, grad_weight, grad_bias


class LSTMLayer(nn.Module):
    """An LSTM layer over whole sequences whose gradients come from ``LSTMFunction``'s hand-written backward."""

    def __init__(self, input_size: int, hidden_size: int, batch_first: bool = True):
        super().__init__()
        if not batch_first:
            raise ValueError("LSTMLayer reads batch-first input only")
        self.cell = LSTMCell(input_size, hidden_size)

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x: (B, T, I), batch first as in seqtext's models -> h (B, T, H) and (h_T, C_T), each (B, H)."""
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.cell.hidden_size)
            state = (zeros, zeros)
        weight, bias = self.cell.stacked()
        h, h_last, c_last = LSTMFunction.apply(x.transpose(0, 1), state[0], state[1], weight, bias)
        return h.transpose(0, 1), (h_last, c_last)

    @classmethod
    def from_torch(cls, module: nn.LSTM, layer: int = 0) -> LSTMLayer:
        w_ih = _torch_weights(module, layer)[0]
        result = cls(w_ih.shape[1], module.hidden_size).to(w_ih.dtype)
        result.cell = LSTMCell.from_torch(module, layer)
        return result
