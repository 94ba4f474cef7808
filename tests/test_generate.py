import pytest
import torch

from seqtext.errors import ConfigError, DataError
from seqtext.generate import TABLE_LIMIT, Sampling, Stepper, filter_logits, generate, next_ids
from seqtext.models.charlm import CharLM, LanguageModelConfig
from seqtext.tokenizer import Tokenizer

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n"


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer.train("char", [TEXT], vocab_size=None, lowercase=False)


def _model(tokenizer, cell="lstm", layers=2):
    torch.manual_seed(1)
    return CharLM(LanguageModelConfig(8, 12, layers, cell), tokenizer.vocab_size).eval()


@pytest.mark.parametrize("vocab", ["characters", "words"])
@pytest.mark.parametrize("cell,layers", [("lstm", 1), ("lstm", 2), ("gru", 1), ("gru", 3)])
def test_the_fast_step_equals_the_model(tokenizer, cell, layers, vocab):
    size = tokenizer.vocab_size if vocab == "characters" else TABLE_LIMIT + 1  # a table, or a projection per step
    torch.manual_seed(1)
    model = CharLM(LanguageModelConfig(8, 12, layers, cell), size).eval().double()
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
