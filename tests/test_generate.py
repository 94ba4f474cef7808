import math

import pytest
import torch

from seqtext.errors import ConfigError, DataError
from seqtext.language_model.generate import (
    GREEDY_BELOW,
    TABLE_LIMIT,
    TEMPERATURE_MAX,
    TOP_P_MIN,
    Sampling,
    Stepper,
    filter_logits,
    generate,
    next_ids,
)
from seqtext.language_model.model import LanguageModelConfig, RecurrentLanguageModel
from seqtext.tokenizer import Tokenizer

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n"


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer.train("char", [TEXT], vocab_size=None, lowercase=False)


def _model(tokenizer, cell="lstm", layers=2):
    torch.manual_seed(1)
    return RecurrentLanguageModel(LanguageModelConfig(8, 12, layers, cell), tokenizer.vocab_size).eval()


@pytest.mark.parametrize("vocab", ["characters", "words"])
@pytest.mark.parametrize("cell,layers", [("lstm", 1), ("lstm", 2), ("gru", 1), ("gru", 3)])
def test_the_fast_step_equals_the_model(tokenizer, cell, layers, vocab):
    size = tokenizer.vocab_size if vocab == "characters" else TABLE_LIMIT + 1  # a table, or a projection per step
    torch.manual_seed(1)
    model = RecurrentLanguageModel(LanguageModelConfig(8, 12, layers, cell), size).eval().double()
    ids = torch.randint(4, size, (3, 9))
    expected, _ = model(ids)
    stepper = Stepper(model)
    assert (stepper.table is None) == (vocab == "words")
    logits, state = model(ids[:, :1])
    steps = [logits[:, 0]]
    for t in range(1, 9):
        logits, state = stepper.step(ids[:, t], state)
        steps.append(logits)
    assert torch.allclose(torch.stack(steps, dim=1), expected, atol=1e-10)


def test_the_same_seed_gives_the_same_text(tokenizer):
    model = _model(tokenizer)
    first = generate(model, tokenizer, "First", 40, num_samples=3, seed=7)
    assert first == generate(model, tokenizer, "First", 40, num_samples=3, seed=7)
    assert first != generate(model, tokenizer, "First", 40, num_samples=3, seed=8)
    assert len(set(first)) == 3 and all(len(text) == 40 for text in first)


def test_greedy_takes_the_most_likely_character_at_every_step(tokenizer):
    model = _model(tokenizer)
    prompt = "hear me"
    text = generate(model, tokenizer, prompt, 30, sampling=Sampling(temperature=0))[0]
    ids = torch.tensor([[tokenizer.token_to_id(ch) for ch in prompt + text]])
    logits, _ = model(ids)  # (1, P + 30, V): the model read over the whole text at once
    logits[..., :4] = float("-inf")  # special tokens are never generated
    predicted = logits[0, len(prompt) - 1 : -1].argmax(-1)
    assert predicted.tolist() == ids[0, len(prompt) :].tolist()


def test_top_k_never_samples_outside_the_k_most_likely():
    torch.manual_seed(0)
    logits = torch.randn(4, 50)
    allowed = torch.topk(logits, 5, dim=-1).indices
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        ids = next_ids(logits, Sampling(temperature=2.0, top_k=5), generator)
        assert all(ids[b] in allowed[b] for b in range(4))
    kept = filter_logits(logits, top_k=5)
    assert (kept > float("-inf")).sum(-1).tolist() == [5, 5, 5, 5]


def test_top_p_never_samples_outside_the_nucleus():
    probs = torch.tensor([[0.5, 0.3, 0.1, 0.06, 0.04], [0.04, 0.06, 0.1, 0.3, 0.5]])
    logits = probs.log()
    assert (filter_logits(logits, top_p=0.75) > float("-inf")).tolist() == [
        [True, True, False, False, False],
        [False, False, False, True, True],
    ]
    assert (filter_logits(logits, top_p=0.85) > float("-inf")).sum(-1).tolist() == [3, 3]
    assert (filter_logits(logits, top_p=0.95) > float("-inf")).sum(-1).tolist() == [4, 4]
    assert (filter_logits(logits, top_p=0.4) > float("-inf")).sum(-1).tolist() == [1, 1]  # the most likely always stays
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        ids = next_ids(logits, Sampling(top_p=0.75), generator)
        assert ids[0] in (0, 1) and ids[1] in (3, 4)


@pytest.mark.parametrize(
    "options,message",
    [
        ({"temperature": -0.5}, "temperature must be at least 0, not -0.5"),
        ({"top_k": 0}, "top_k must be at least 1, not 0"),
        ({"top_p": 0.0}, "top_p must be in (0, 1], not 0.0"),
        ({"top_p": 1.5}, "top_p must be in (0, 1], not 1.5"),
    ],
)
def test_bad_sampling_settings_are_named(options, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("]", r"\]")):
        Sampling(**options)


def test_bad_requests_are_named(tokenizer):
    model = _model(tokenizer)
    with pytest.raises(ConfigError, match="^length must be at least 0, not -1"):
        generate(model, tokenizer, "First", -1)
    with pytest.raises(DataError, match="outside the model's vocabulary: 'Q', 'é'"):
        generate(model, tokenizer, "Qué", 5)
    assert generate(model, tokenizer, "", 5, seed=0)[0] != ""  # an empty prompt starts after a line break


# The edges of what Sampling takes, each with a value just past it. Between them every draw is finite.
ALLOWED = [
    {"temperature": 0.0},
    {"temperature": 5e-324},  # the smallest float: greedy, as 0 is
    {"temperature": 1e-50},
    {"temperature": math.nextafter(GREEDY_BELOW, 0)},
    {"temperature": GREEDY_BELOW},
    {"temperature": 1e38},
    {"temperature": TEMPERATURE_MAX},
    {"temperature": 10**38},  # an int, as JSON gives one
    {"top_p": TOP_P_MIN},
    {"top_p": TOP_P_MIN, "temperature": GREEDY_BELOW},
    {"top_p": 1.0, "temperature": TEMPERATURE_MAX, "top_k": 10**400},
    {"top_k": 1, "temperature": TEMPERATURE_MAX},
]
REFUSED = [
    ({"temperature": math.nextafter(TEMPERATURE_MAX, math.inf)}, "temperature", "temperature must be at most"),
    ({"temperature": 1e39}, "temperature", "temperature must be at most"),
    ({"temperature": 1e308}, "temperature", "temperature must be at most"),
    ({"temperature": 10**400}, "temperature", "temperature must be at most"),
    ({"temperature": 10**5000}, "temperature", "temperature must be at most"),  # past str()'s 4,300 digits
    ({"temperature": -(10**5000)}, "temperature", "temperature must be at least 0"),
    ({"temperature": math.inf}, "temperature", "temperature must be a finite number"),
    ({"temperature": math.nan}, "temperature", "temperature must be a finite number"),
    ({"top_p": math.nextafter(TOP_P_MIN, 0)}, "top_p", "top_p must be at least"),
    ({"top_p": 1e-320}, "top_p", "top_p must be at least"),
    ({"top_p": 5e-324}, "top_p", "top_p must be at least"),
    ({"top_p": math.nan}, "top_p", "top_p must be in (0, 1]"),
    ({"top_p": 10**5000}, "top_p", "top_p must be in (0, 1]"),
    ({"top_k": -(10**5000)}, "top_k", "top_k must be at least 1"),
]


def _label(options: dict) -> str:
    """A test id; an integer past str()'s 4,300 digits by its sign and size."""
    huge = {k: f"{'-' if v < 0 else ''}2**{v.bit_length()}" for k, v in options.items() if isinstance(v, int) and abs(v) > 10**20}
    return ",".join(f"{k}={huge.get(k, v)}" for k, v in options.items())


def _extreme_logits(dtype=torch.float32) -> torch.Tensor:
    """Rows a model may give: ordinary, tied, spread to float32's edge, and with tokens that are never drawn."""
    logits = torch.randn(6, 40, generator=torch.Generator().manual_seed(0)).to(dtype)  # (6, 40)
    logits[1] = 3.0  # all tied
    logits[2, ::2] = -3e38 if dtype == torch.float32 else -6e4  # a gap as wide as the dtype allows
    logits[3, :4] = float("-inf")  # padding, unknown, boundary tokens
    logits[4, 1:] = float("-inf")  # one token left
    logits[5] = torch.linspace(-1e-3, 1e-3, 40).to(dtype)  # nearly tied
    return logits


@pytest.mark.parametrize("options", ALLOWED, ids=_label)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_every_allowed_setting_draws_a_token_that_can_be_drawn(options, dtype):
    sampling = Sampling(**options)
    logits = _extreme_logits(dtype)
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        ids = next_ids(logits, sampling, generator)  # (6,)
        assert ids.shape == (6,) and torch.isfinite(logits[torch.arange(6), ids]).all(), ids
    assert next_ids(logits, sampling, generator)[4] == 0


@pytest.mark.parametrize("options", ALLOWED, ids=_label)
def test_every_allowed_setting_generates_text(tokenizer, options):
    texts = generate(_model(tokenizer), tokenizer, "First", 12, num_samples=2, sampling=Sampling(**options), seed=0)
    assert [len(text) for text in texts] == [12, 12] and set("".join(texts)) <= set(TEXT)


@pytest.mark.parametrize(("options", "parameter", "message"), REFUSED, ids=[_label(case[0]) for case in REFUSED])
def test_settings_past_the_edges_are_one_line_errors_naming_the_parameter(options, parameter, message):
    with pytest.raises(ConfigError) as caught:
        Sampling(**options)
    assert caught.value.parameter == parameter and str(caught.value).startswith(message), caught.value
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 200


def test_a_temperature_below_the_floor_is_greedy(tokenizer):
    model = _model(tokenizer)
    greedy = generate(model, tokenizer, "First", 30, sampling=Sampling(temperature=0))
    for temperature in (1e-50, 5e-324, math.nextafter(GREEDY_BELOW, 0)):
        assert generate(model, tokenizer, "First", 30, sampling=Sampling(temperature=temperature), seed=3) == greedy
    assert GREEDY_BELOW <= 1e-3 and TEMPERATURE_MAX >= 1e4 and TOP_P_MIN <= 1e-6  # the docs' promises stay true


def test_the_nucleus_always_keeps_the_most_likely_token():
    logits = torch.tensor([[0.0, -1.0, -2.0], [5.0, 5.0, -1.0]])
    for top_p in (TOP_P_MIN, 1e-30, 1e-320):  # filter_logits itself takes any top_p; 1e-320 is 0 in float32
        kept = filter_logits(logits, top_p=top_p) > float("-inf")
        assert kept.sum(-1).tolist() == [1, 1] and kept[0, 0]
