"""Language-model speed on this machine: sampling characters/s, and training GFLOP/s against the matmul rate.

Sampling: seqtext's ``generate`` (the prompt in one pass, then a hand-written step over the model's own
weights) against a plain loop that calls ``nn.LSTM`` once per character, with the same sampling, at
batch 1, 16 and 64; the plain loop also with oneDNN switched off. Training: tokens/s of forward,
backward and AdamW step for the same model, converted to GFLOP/s (forward ~ 8 H (E + H) per token per
layer, backward ~ 2x forward; the output layer's 2 H V per token, times 3, is counted too), as a
fraction of the fp32 matmul rate measured in the same run. A 2x512 LSTM over Tiny Shakespeare's 69
characters, random weights (speed does not depend on them), seed 0.

    python bench/lm_speed.py [--chars 400] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import median, write_section  # noqa: E402
from seqtext import precision  # noqa: E402
from seqtext.language_model.generate import Sampling, generate, next_ids  # noqa: E402
from seqtext.language_model.model import LanguageModelConfig, RecurrentLanguageModel  # noqa: E402
from seqtext.tokenizer import Tokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLING = Sampling(temperature=0.8, top_k=20)
BATCHES = (1, 16, 64)


@torch.inference_mode()
def plain_loop(model: RecurrentLanguageModel, prompt_ids: list[int], length: int, batch: int, generator: torch.Generator) -> None:
    """The tutorial way: the prompt in one pass, then ``model(next_char, state)`` once per character."""
    ids = torch.tensor(prompt_ids)[None, :].expand(batch, -1)
    logits, state = model(ids)
    logits = logits[:, -1]
    for _ in range(length):
        chars = next_ids(logits, SAMPLING, generator)
        logits, state = model(chars[:, None], state)
        logits = logits[:, -1]


def sampling_rates(model, tokenizer, chars: int, repeats: int) -> dict[int, dict[str, float]]:
    prompt = "ROMEO:\n"
    prompt_ids = [tokenizer.token_to_id(ch) for ch in prompt]
    rates = {}
    for batch in BATCHES:
        runs = {
            "seqtext": lambda b=batch: generate(model, tokenizer, prompt, chars, b, SAMPLING, seed=0),
            "nn.LSTM loop": lambda b=batch: plain_loop(model, prompt_ids, chars, b, torch.Generator().manual_seed(0)),
        }

        def no_onednn(b=batch):
            with torch.backends.mkldnn.flags(enabled=False):
                plain_loop(model, prompt_ids, chars, b, torch.Generator().manual_seed(0))

        runs["nn.LSTM loop, oneDNN off"] = no_onednn
        seconds = {name: [] for name in runs}
        for repeat in range(repeats + 1):  # the first round warms up
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                if repeat:
                    seconds[name].append(time.perf_counter() - start)
        rates[batch] = {name: batch * chars / median(s) for name, s in seconds.items()}
    return rates


def step_bound(model: RecurrentLanguageModel, batch: int, calls: int = 300) -> float:
    """Characters/s if a step cost only one fused matrix product per layer, (B, in + H) x (in + H, 4H) with
    its bias, plus the output layer's (B, H) x (H, V): the time of exactly those products, measured."""
    config, products = model.config, []
    for layer in range(config.num_layers):
        inputs = (config.embedding_size if layer == 0 else config.hidden_size) + config.hidden_size
        gates = 4 * config.hidden_size if config.cell == "lstm" else 3 * config.hidden_size
        products.append((torch.randn(gates), torch.randn(batch, inputs), torch.randn(inputs, gates)))
    products.append(
        (torch.randn(model.vocab_size), torch.randn(batch, config.hidden_size), torch.randn(config.hidden_size, model.vocab_size))
    )
    seconds = 0.0
    for bias, x, weight in products:
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            torch.addmm(bias, x, weight)
            times.append(time.perf_counter() - start)
        seconds += median(times[calls // 10 :])
    return batch / seconds


def matmul_gflops(repeats: int, size: int = 2048, dtype: torch.dtype = torch.float32) -> float:
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    times = []
    for _ in range(repeats + 2):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size**3 / median(times) / 1e9


def training_rate(model: RecurrentLanguageModel, batch: int, bptt: int, steps: int, kind: str = "fp32") -> float:
    """Tokens/s of the library's model trained as the task trains it: forward (under autocast for bf16), loss,
    backward, clipping, AdamW."""
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids = torch.randint(4, model.vocab_size, (batch, bptt + 1))
    model.train()
    state, tokens, start = None, 0, 0.0
    for step in range(steps + 2):  # two warm-up steps
        if step == 2:
            start, tokens = time.perf_counter(), 0
        with precision.autocast(kind, "cpu"):
            losses, _, state = model(ids[:, :-1], state, targets=ids[:, 1:])
        state = tuple(s.detach() for s in state)
        loss = losses.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        tokens += batch * bptt
    return tokens / (time.perf_counter() - start)


def flops_per_token(config: LanguageModelConfig, vocab_size: int) -> float:
    recurrent = sum(
        8 * config.hidden_size * ((config.embedding_size if k == 0 else config.hidden_size) + config.hidden_size)
        for k in range(config.num_layers)
    )
    return 3 * (recurrent + 2 * config.hidden_size * vocab_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=400, help="characters generated per sample and run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10, help="training steps timed per batch shape")
    args = parser.parse_args()
    tokenizer = Tokenizer.load(ROOT / "vocab" / "shakespeare-char.json")
    config = LanguageModelConfig(embedding_size=128, hidden_size=512, num_layers=2)
    torch.manual_seed(0)
    model = RecurrentLanguageModel(config, tokenizer.vocab_size).eval()
    rates = sampling_rates(model, tokenizer, args.chars, args.repeats)
    bounds = {batch: step_bound(model, batch) for batch in BATCHES}
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    peak = {name: matmul_gflops(args.repeats, dtype=dtype) for name, dtype in dtypes.items()}
    per_token = flops_per_token(config, tokenizer.vocab_size)
    training = {}
    for batch, bptt in ((32, 64), (64, 128), (128, 128)):
        for name in dtypes:
            tokens = training_rate(model, batch, bptt, args.steps, name)
            training[(batch, bptt, name)] = (tokens, tokens * per_token / 1e9)
    peak_after = {name: matmul_gflops(args.repeats, dtype=dtype) for name, dtype in dtypes.items()}
    top = {name: max(peak[name], peak_after[name]) for name in dtypes}
    sample_rows = "\n".join(
        f"| {batch} | {r['seqtext']:,.0f} | {r['nn.LSTM loop']:,.0f} | {r['nn.LSTM loop, oneDNN off']:,.0f} | "
        f"**{r['seqtext'] / r['nn.LSTM loop']:.2f}x** | {bounds[batch]:,.0f} | **{r['seqtext'] / bounds[batch]:.2f}** |"
        for batch, r in rates.items()
    )
    train_rows = "\n".join(
        f"| {batch} x {bptt} | {name} | {tokens:,.0f} | {gflops:.1f} | **{gflops / top[name]:.2f}** | {gflops / top['fp32']:.2f} |"
        for (batch, bptt, name), (tokens, gflops) in training.items()
    )
    body = f"""## Language model speed: sampling and training (2x512 LSTM)

`python bench/lm_speed.py --chars {args.chars} --repeats {args.repeats} --steps {args.steps}`: a 2x512 LSTM (embedding 128) over
Tiny Shakespeare's {tokenizer.vocab_size} characters, random weights, seed 0; medians of {args.repeats} alternating runs after a warm-up.

Sampling {args.chars} characters per sample (temperature 0.8, top-k 20), characters per second summed over the batch. The
bound is what a step would allow if it cost only one fused matrix product per layer, (B, in + H) x (in + H, 4H) with its
bias, plus the output layer's, each timed alone in the same run (median of 300 calls): no sampling, no pointwise gates.

| batch | seqtext `generate` | `nn.LSTM` step loop | `nn.LSTM` loop, oneDNN off | seqtext / loop | bound | seqtext / bound |
|---:|---:|---:|---:|---:|---:|---:|
{sample_rows}

Training (forward, backward, clipping, AdamW; bf16: the forward under autocast, weights and the loss in fp32), at
{per_token / 1e6:.1f} MFLOP per token. Matmul (2048 x 2048) measured in the same run, before and after: fp32 {peak["fp32"]:.1f} and
{peak_after["fp32"]:.1f} GFLOP/s, bf16 {peak["bf16"]:.1f} and {peak_after["bf16"]:.1f} GFLOP/s; each fraction uses the larger of its pair.

| batch x window | precision | tokens/s | GFLOP/s | fraction of its precision's matmul rate | fraction of the fp32 matmul rate |
|---|---|---:|---:|---:|---:|
{train_rows}
"""
    write_section("lm_speed", body)
    print(body)


if __name__ == "__main__":
    main()
