"""Text from a character language model: the prompt primes the state in one pass, then characters are
sampled one at a time (temperature, top-k, top-p, or greedy), several samples as one batch.

Stepping ``nn.LSTM`` one character at a time costs far more in per-call overhead than in arithmetic, so
``Stepper`` runs the same weights through a hand-written step: the first layer's input projection is a
table lookup (embedding times input weights, computed once), and each layer is one ``addmm`` pair and a
few pointwise operations (bench/lm_speed.py measures it against the ``nn.LSTM`` loop).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from seqtext.errors import ConfigError, DataError
from seqtext.language_model.model import RecurrentLanguageModel, State
from seqtext.precision import at_least_fp32, autocast
from seqtext.tokenizer import SPECIAL_TOKENS, UNK_ID, Tokenizer

TABLE_LIMIT = 4096  # vocabularies up to this size step from a table of first-layer input projections

# Sampling divides float32 logits by the temperature, so its settings must be numbers float32 holds.
# At 1e-4 a token 0.0104 nats behind the best is exp(-104) < 1e-45 times as likely, which is 0 in float32:
# the draw is greedy already but for near-ties, and a far smaller temperature is itself 0 in float32 (1e-50:
# 0 / 0 = NaN). So a temperature below GREEDY_BELOW takes the most likely token, as 0 does.
GREEDY_BELOW = 1e-4
# The largest float32: above it a temperature is inf in float32 and -inf / inf is NaN. A temperature this
# large only means uniform over the tokens left.
TEMPERATURE_MAX = 3.4028234663852886e38
# The smallest normal float32: top_p is compared with float32 probabilities, where a smaller one is 0 or
# subnormal (1e-320 made a nucleus of nothing). Any top_p below the most likely token's probability keeps
# that token alone.
TOP_P_MIN = 1.1754943508222875e-38


@dataclass
class Sampling:
    temperature: float = 1.0  # 0 (or below GREEDY_BELOW) takes the most likely character (greedy)
    top_k: int | None = None  # sample among the k most likely characters only
    top_p: float | None = None  # sample among the fewest characters whose probabilities reach p (the nucleus)

    def __post_init__(self):
        for name, kind in (("temperature", (int, float)), ("top_k", int), ("top_p", (int, float))):
            value = getattr(self, name)
            if (value is not None or name == "temperature") and (isinstance(value, bool) or not isinstance(value, kind)):
                raise ConfigError(f"{name} must be {'an integer' if kind is int else 'a number'}, not {_shown(value)}", name)
        temperature, top_k, top_p = self.temperature, self.top_k, self.top_p
        if isinstance(temperature, float) and not math.isfinite(temperature):  # an int is finite, however large
            raise ConfigError(f"temperature must be a finite number, not {temperature}", "temperature")
        if temperature < 0:
            raise ConfigError(f"temperature must be at least 0, not {_shown(temperature)}", "temperature")
        if temperature > TEMPERATURE_MAX:
            raise ConfigError(
                f"temperature must be at most {TEMPERATURE_MAX!r} (float32's largest number), not {_shown(temperature)}",
                "temperature",
            )
        if top_k is not None and top_k < 1:
            raise ConfigError(f"top_k must be at least 1, not {_shown(top_k)}", "top_k")
        if top_p is not None and not 0.0 < top_p <= 1.0:
            raise ConfigError(f"top_p must be in (0, 1], not {_shown(top_p)}", "top_p")
        if top_p is not None and top_p < TOP_P_MIN:
            raise ConfigError(f"top_p must be at least {TOP_P_MIN!r} (float32's smallest normal number), not {top_p!r}", "top_p")


def _shown(value) -> str:
    """``value`` for a message: an integer too long to print whole (past str()'s 4,300 digits) by its size."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        return f"{'a negative' if value < 0 else 'an'} integer of {value.bit_length()} bits"
    return repr(value)


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """-inf outside the top k and outside the nucleus of probability ``top_p``; logits: (B, V) -> (B, V)."""
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (B, V)
        probs = torch.softmax(sorted_logits, dim=-1)
        before = probs.cumsum(-1) - probs  # probability mass ranked above each character
        outside = before >= top_p  # (B, V), in rank order
        outside[:, 0] = False  # the most likely always stays, however small top_p is
        drop = outside.scatter(-1, order, outside)  # back in vocabulary order
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def next_ids(logits: torch.Tensor, sampling: Sampling, generator: torch.Generator | None = None) -> torch.Tensor:
    """One character per row: logits (B, V) -> ids (B,). Drawn in float32, whatever the model's dtype, so that
    every temperature and top_p ``Sampling`` allows gives finite probabilities."""
    if sampling.temperature < GREEDY_BELOW:
        return logits.argmax(-1)
    logits = logits.float()  # (B, V): a half-precision logit over a large temperature would underflow or overflow
    logits = logits - logits.max(-1, keepdim=True).values  # a tiny temperature then gives -inf and 0, not inf - inf
    logits = filter_logits(logits / float(sampling.temperature), sampling.top_k, sampling.top_p)  # an int past int64 too
    return torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator).squeeze(1)


class Stepper:
    """One step of a ``RecurrentLanguageModel`` (in eval mode) from its own weights, without ``nn.LSTM``'s per-call overhead."""

    def __init__(self, model: RecurrentLanguageModel, dtype: torch.dtype | None = None):
        """``dtype`` bfloat16: the weights of the matrix products in bf16 (the state and the gates' nonlinearities
        stay float32). None: the model's own."""
        rnn, self.cell = model.rnn, model.config.cell
        self.dtype = dtype or model.embedding.weight.dtype
        self.state_dtype = torch.promote_types(self.dtype, torch.float32)
        names = ("weight_ih_l{}", "weight_hh_l{}", "bias_ih_l{}", "bias_hh_l{}")
        weights = [tuple(getattr(rnn, name.format(k)) for name in names) for k in range(rnn.num_layers)]
        # W_ih^T, W_hh^T, and the input-side bias (the LSTM's two biases summed once, not at every step), b_hh
        low = self.dtype
        self.layers = [
            (w.T.contiguous().to(low), u.T.contiguous().to(low), (b + c if self.cell == "lstm" else b).to(low), c.to(low))
            for w, u, b, c in weights
        ]
        # A small vocabulary's first-layer input projection is one table lookup (V, G*H); a word or BPE
        # vocabulary's table would cost more memory than the model, so those project each step's embedding.
        self.embedding, self.table = model.embedding.weight, None
        if len(self.embedding) <= TABLE_LIMIT:
            w_ih, _, b_ih, b_hh = weights[0]
            table = self.embedding @ w_ih.T + b_ih  # (V, G*H)
            self.table = table + b_hh if self.cell == "lstm" else table  # the GRU keeps b_hh inside its reset gate
        # a plain linear head is one addmm; a projected or adaptive one is the model's own output layer
        self.output = model.logits if model.adaptive or model.output.projection is not None else None
        if self.output is None:
            self.head_weight = model.output.head.weight.T.contiguous().to(self.dtype)  # (H, V)
            self.head_bias = model.output.head.bias.to(self.dtype)  # (V,)

    def step(self, ids: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """ids: (B,), state: each (L, B, H) -> logits (B, V), the next state."""
        h_in = state[0]
        new_h, new_c = [], []
        x = None
        low, full = self.dtype, self.state_dtype  # the matrix products' dtype; the gates' and the state's
        for k, (w_ih_t, w_hh_t, b_ih, b_hh) in enumerate(self.layers):
            h = h_in[k]  # (B, H)
            if self.cell == "lstm":
                x_gates = self._first_input(ids) if k == 0 else torch.addmm(b_ih, x.to(low), w_ih_t)  # (B, 4H), biases in b_ih
                gates = torch.addmm(x_gates.to(low), h.to(low), w_hh_t).to(full)  # (B, 4H), PyTorch's order: i, f, g, o
                i, f, g, o = gates.chunk(4, dim=1)
                c = torch.sigmoid(f) * state[1][k] + torch.sigmoid(i) * torch.tanh(g)  # (B, H)
                h = torch.sigmoid(o) * torch.tanh(c)  # (B, H)
                new_c.append(c)
            else:
                x_gates = (self._first_input(ids) if k == 0 else torch.addmm(b_ih, x.to(low), w_ih_t)).to(full)  # (B, 3H)
                h_gates = torch.addmm(b_hh, h.to(low), w_hh_t).to(full)  # (B, 3H), PyTorch's order: r, z, n
                x_r, x_z, x_n = x_gates.chunk(3, dim=1)
                h_r, h_z, h_n = h_gates.chunk(3, dim=1)
                r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
                h = torch.lerp(torch.tanh(x_n + r * h_n), h, z)  # (1 - z) * n + z * h
            new_h.append(h)
            x = h
        logits = self.output(x) if self.output is not None else torch.addmm(self.head_bias, x.to(low), self.head_weight)  # (B, V)
        next_state = (torch.stack(new_h), torch.stack(new_c)) if self.cell == "lstm" else (torch.stack(new_h),)
        return logits, next_state

    def _first_input(self, ids: torch.Tensor) -> torch.Tensor:
        """The first layer's input projection with its bias: ids (B,) -> (B, G*H)."""
        if self.table is not None:
            return self.table[ids]
        w_ih_t, _, bias, _ = self.layers[0]
        return torch.addmm(bias, self.embedding[ids].to(self.dtype), w_ih_t)


class TextStream:
    """The text of generated tokens as they come, one piece a token: a character model's characters, or
    the new part of the decoded text for a word or BPE model (a byte-level BPE piece that ends inside a
    character waits for the rest of it)."""

    def __init__(self, tokenizer: Tokenizer, prompt_ids: list[int]):
        self.tokenizer, self.ids = tokenizer, list(prompt_ids)
        self.char = tokenizer.kind == "char"
        self.shown = "" if self.char else tokenizer.decode(self.ids)

    def add(self, token_id: int) -> str:
        if self.char:
            return self.tokenizer.id_to_token(token_id)
        self.ids.append(token_id)
        text = self.tokenizer.decode(self.ids)
        if text.endswith("\ufffd"):  # an incomplete UTF-8 sequence so far
            return ""
        piece = text[len(self.shown) :] if text.startswith(self.shown) else " " + self.tokenizer.decode([token_id])
        self.shown = text
        return piece


def encode_prompt(tokenizer: Tokenizer, prompt: str) -> list[int]:
    """The prompt's ids; characters (words, for a word model) the model never saw are an error naming them.
    An empty prompt starts a character model after a line break (or, without one, after a space)."""
    if tokenizer.kind != "char":
        [(ids, offsets)] = tokenizer.encode_with_offsets([prompt])
        unknown = sorted({prompt[start:end] for i, (start, end) in zip(ids, offsets) if i == UNK_ID})
        if unknown:
            raise DataError(f"prompt has words outside the model's vocabulary: {', '.join(map(repr, unknown))}", "prompt")
        if not ids:
            raise DataError(f"prompt must have at least one token for a {tokenizer.kind} model", "prompt")
        return ids
    outside = sorted({ch for ch in prompt if tokenizer.token_to_id(ch) is None})
    if outside:
        names = ", ".join(repr(ch) for ch in outside)
        raise DataError(f"prompt has characters outside the model's vocabulary: {names}", "prompt")
    if not prompt:
        prompt = "\n" if tokenizer.token_to_id("\n") is not None else " "
        if tokenizer.token_to_id(prompt) is None:
            raise DataError("prompt is empty and the vocabulary has no line break or space to start from", "prompt")
    return [tokenizer.token_to_id(ch) for ch in prompt]


def check_request(tokenizer: Tokenizer, prompt: str, length: int, num_samples: int) -> list[int]:
    """The prompt's ids, after checking the request (before anything is printed)."""
    if not isinstance(prompt, str):
        raise ConfigError(f"prompt must be a string, not {type(prompt).__name__}", "prompt")
    for name, value, least in (("length", length, 0), ("num_samples", num_samples, 1)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer, not {_shown(value)}", name)
        if value < least:
            raise ConfigError(f"{name} must be at least {least}, not {_shown(value)}", name)
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as err:  # a lone surrogate: what Python makes of bytes it could not decode
        where = f"{prompt[err.start]!r} at character {err.start}"
        raise DataError(f"prompt holds {where}, which is not a Unicode character", "prompt") from None
    return encode_prompt(tokenizer, prompt)


def generate(
    model: RecurrentLanguageModel,
    tokenizer: Tokenizer,
    prompt: str,
    length: int = 500,
    num_samples: int = 1,
    sampling: Sampling | None = None,
    seed: int | None = None,
    stream: bool = False,
    precision: str = "fp32",
) -> list[str] | Iterator[torch.Tensor]:
    """``num_samples`` continuations of ``prompt``, each ``length`` tokens (characters, for a character
    model); with ``stream``, each step's tokens (S,) as they are drawn instead. The same seed gives the
    same texts. The request is checked before anything is drawn, so an error comes before any text.
    ``precision`` bf16: the matrix products in bf16, the cell state and the sampling in float32."""
    prompt_ids = check_request(tokenizer, prompt, length, num_samples)
    steps = _steps(model, tokenizer, prompt_ids, length, num_samples, sampling or Sampling(), seed, precision)
    if stream:
        return steps
    drawn = list(steps)
    columns = torch.stack(drawn, dim=1).cpu().tolist() if drawn else [[] for _ in range(num_samples)]  # (S, length)
    texts = []
    for row in columns:
        stream = TextStream(tokenizer, prompt_ids)
        texts.append("".join(stream.add(i) for i in row))
    return texts


def _steps(model, tokenizer, prompt_ids, length, num_samples, sampling, seed, precision="fp32") -> Iterator[torch.Tensor]:
    model.eval()
    device = next(model.parameters()).device
    dtype = torch.bfloat16 if precision == "bf16" else None
    with torch.no_grad():  # the table of input projections is built once, outside any autograd graph
        stepper = Stepper(model, dtype) if type(model.rnn) in (torch.nn.LSTM, torch.nn.GRU) else None  # not int8 layers

    def step(ids: torch.Tensor, state) -> tuple[torch.Tensor, State]:
        if state is None or stepper is None:
            with autocast(precision, device):  # each step alone: a stream's consumer runs between them
                logits, state = model(ids, state)  # the whole prompt in one pass: (S, P, V)
            return logits[:, -1], tuple(s.to(at_least_fp32(s)) for s in state)  # (S, V)
        return stepper.step(ids[:, 0], state)

    return draw(step, tokenizer, prompt_ids, length, num_samples, sampling, seed, device)


@torch.inference_mode()
def draw(step, tokenizer, prompt_ids, length, num_samples, sampling, seed, device="cpu") -> Iterator[torch.Tensor]:
    """Each step's tokens (S,), drawn through ``step(ids (S, T), state or None) -> (logits (S, V), state)``:
    once with the prompt and no state, then once a token. A PyTorch model's step, or an export's."""
    ids = torch.tensor(prompt_ids, device=device)[None, :].expand(num_samples, -1)  # (S, P)
    generator = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    logits, state = step(ids, None)  # (S, V)
    never = [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS if tokenizer.token_to_id(t) is not None]
    never = torch.tensor(never, device=device)
    for position in range(length):
        logits[:, never] = float("-inf")  # padding, unknown and boundary tokens are not text
        chars = next_ids(logits, sampling, generator)  # (S,)
        yield chars  # on the model's device: read back by whoever consumes it, once
        if position + 1 < length:
            logits, state = step(chars[:, None], state)


def draw_text(step, tokenizer: Tokenizer, prompt: str, length: int, sampling: Sampling, seed: int | None) -> str:
    """One sample's text through ``step`` (``draw``), checked as ``generate`` checks a request."""
    prompt_ids = check_request(tokenizer, prompt, length, 1)
    text = TextStream(tokenizer, prompt_ids)
    return "".join(text.add(int(ids[0])) for ids in draw(step, tokenizer, prompt_ids, length, 1, sampling, seed))
