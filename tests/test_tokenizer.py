import json
from collections import Counter

import pytest
import tokenizers

from seqtext.data import load_corpus, load_splits
from seqtext.errors import ConfigError, DataError
from seqtext.pipeline import train_tokenizer
from seqtext.recipe import load_recipe
from seqtext.tokenizer import BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID, Tokenizer

from .conftest import ROOT


@pytest.fixture(scope="module")
def sst2(data_dir):
    return load_splits("sst2", data_directory=data_dir)


@pytest.fixture(scope="module")
def shakespeare(data_dir):
    return load_corpus("tinyshakespeare", data_directory=data_dir)[0]


@pytest.mark.slow
def test_char_round_trip_is_exact_on_all_of_tiny_shakespeare(shakespeare):
    tokenizer = Tokenizer.train("char", [shakespeare])
    assert tokenizer.kind == "char" and tokenizer.vocab_size == 65 + len(SPECIAL_TOKENS)
    ids = tokenizer.encode_corpus(shakespeare)
    assert len(ids) == len(shakespeare) and UNK_ID not in ids.tolist()
    assert tokenizer.decode(ids.tolist()) == shakespeare


@pytest.mark.slow
def test_char_encode_corpus_matches_encoding_in_one_piece(shakespeare):
    tokenizer = Tokenizer.train("char", [shakespeare])
    piece = shakespeare[:5000]
    assert tokenizer.encode_corpus(piece).tolist() == tokenizer.encode(piece)


def test_special_tokens_have_fixed_ids(sst2):
    for kind, size in (("char", None), ("word", 2000), ("bpe", 500)):
        tokenizer = Tokenizer.train(kind, sst2.splits["validation"]["text"], vocab_size=size)
        assert [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS] == [PAD_ID, UNK_ID, BOS_ID, EOS_ID]


def test_a_special_token_written_in_the_text_is_ordinary_text(sst2):
    tokenizer = Tokenizer.train("word", sst2.splits["validation"]["text"])
    ids = tokenizer.encode("a <pad> film")
    assert PAD_ID not in ids and UNK_ID in ids  # "<", "pad", ">" are plain words, and "<" is unknown


@pytest.mark.parametrize(("kind", "size"), [("word", None), ("bpe", 1000)])
def test_save_and_load_give_identical_ids(tmp_path, sst2, kind, size):
    tokenizer = Tokenizer.train(kind, sst2.splits["train"]["text"][:5000], vocab_size=size)
    tokenizer.save(tmp_path / "tokenizer.json")
    loaded = Tokenizer.load(tmp_path / "tokenizer.json")
    texts = sst2.splits["validation"]["text"]
    assert loaded.kind == kind and loaded.vocab_size == tokenizer.vocab_size
    assert loaded.encode_batch(texts) == tokenizer.encode_batch(texts)


def test_bpe_has_the_asked_size_and_decodes_exactly(sst2):
    tokenizer = Tokenizer.train("bpe", sst2.splits["train"]["text"][:5000], vocab_size=800)
    assert tokenizer.vocab_size == 800
    texts = sst2.splits["validation"]["text"]  # lower-case ASCII: unchanged by the normaliser
    assert [tokenizer.decode(ids) for ids in tokenizer.encode_batch(texts)] == texts
    assert UNK_ID not in {i for ids in tokenizer.encode_batch(["naïve café 🤖"]) for i in ids}


def test_word_vocabulary_honours_min_freq_and_vocab_size(sst2):
    texts = sst2.splits["validation"]["text"]
    counts = Counter(word for text in texts for word, _ in _words(text))
    tokenizer = Tokenizer.train("word", texts, min_freq=3, lowercase=True)
    kept = set(tokenizer.backend.get_vocab()) - set(SPECIAL_TOKENS)
    assert kept == {word for word, n in counts.items() if n >= 3}
    assert Tokenizer.train("word", texts, vocab_size=100).vocab_size == 100


def _words(text):
    return tokenizers.pre_tokenizers.Whitespace().pre_tokenize_str(text.lower())


def test_word_tokenizer_normalises_line_break_tags_and_case():
    tokenizer = Tokenizer.train("word", ["Great film.<br /><br />Loved it"], lowercase=True)
    assert tokenizer.decode(tokenizer.encode("GREAT<br />film")) == "great film"


def test_truncation_keeps_the_first_tokens(sst2):
    tokenizer = Tokenizer.train("word", sst2.splits["validation"]["text"])
    texts = sst2.splits["validation"]["text"]
    full, cut = tokenizer.encode_batch(texts), tokenizer.encode_batch(texts, max_length=8)
    assert all(c == f[:8] for f, c in zip(full, cut))
    assert tokenizer.encode_batch(texts) == full  # truncation does not stick
    with pytest.raises(ConfigError, match="max_length must be at least 1"):
        tokenizer.encode_batch(texts, max_length=0)


def test_bad_arguments_and_files(tmp_path):
    with pytest.raises(ConfigError, match="tokenizer kind must be one of char, word, bpe, not 'wordpiece'"):
        Tokenizer.train("wordpiece", ["a"])
    with pytest.raises(ConfigError, match="a bpe tokenizer needs a vocab_size"):
        Tokenizer.train("bpe", ["a"])
    with pytest.raises(DataError, match="missing.json: no such tokenizer file"):
        Tokenizer.load(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text('{"model": ')
    with pytest.raises(DataError, match="broken.json: not a tokenizer file"):
        Tokenizer.load(tmp_path / "broken.json")
    foreign = tokenizers.Tokenizer(tokenizers.models.WordLevel({"a": 0, "<unk>": 1}, unk_token="<unk>"))
    foreign.save(str(tmp_path / "foreign.json"))
    with pytest.raises(DataError, match="foreign.json: not a seqtext tokenizer: <pad> must have id 0"):
        Tokenizer.load(tmp_path / "foreign.json")


@pytest.mark.parametrize("name", ["sst2-word", "imdb-word", "trec-word", "shakespeare-char"])
def test_shipped_vocabularies_load(name):
    tokenizer = Tokenizer.load(ROOT / "vocab" / f"{name}.json")
    assert tokenizer.kind == name.split("-")[1]


def test_shipped_vocabulary_is_what_make_vocab_builds(data_dir):
    """vocab/trec-word.json must match its recipe; a stale file fails here (`make vocab` rebuilds it)."""
    recipe = load_recipe(ROOT / "recipes" / "trec.yaml")
    texts = load_splits("trec", data_directory=data_dir, seed=recipe.seed).splits["train"]["text"]
    rebuilt = train_tokenizer(recipe.tokenizer, texts)
    shipped = json.loads((ROOT / "vocab" / "trec-word.json").read_text())
    assert shipped["model"]["vocab"] == rebuilt.backend.get_vocab()
