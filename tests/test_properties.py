"""Properties that must hold for any text: tokenizers and batch collation on arbitrary Unicode, including
empty strings, control characters, line breaks and characters the tokenizer never saw."""

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqtext.batching import EncodedTexts, collate
from seqtext.tokenizer import PAD_ID, UNK_ID, Tokenizer

TEXTS = st.text(alphabet=st.characters(codec="utf-8"), max_size=200)  # any code point UTF-8 can carry: controls too
TRAINING = ["The film was great, truly great.\n", "Ça ne va pas\tdu tout!", "naïve café 東京 🙂", "\x00\x1f control"]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

CHAR = Tokenizer.train("char", TRAINING)
WORD = Tokenizer.train("word", TRAINING, lowercase=True)
BPE = Tokenizer.train("bpe", TRAINING, vocab_size=300)


@SETTINGS
@given(TEXTS)
def test_every_tokenizer_gives_ids_in_range(text):
    for tokenizer in (CHAR, WORD, BPE):
        ids = tokenizer.encode(text)
        assert all(0 <= i < tokenizer.vocab_size for i in ids)
        assert PAD_ID not in ids  # padding is never a token of a text


@SETTINGS
@given(st.text(alphabet=sorted(set("".join(TRAINING))), max_size=200))
def test_the_character_tokenizer_round_trips_text_of_its_own_characters(text):
    ids = CHAR.encode(text)
    assert len(ids) == len(text) and UNK_ID not in ids
    assert CHAR.decode(ids) == text


@SETTINGS
@given(TEXTS)
def test_the_character_tokenizer_reads_one_token_per_character(text):
    ids = CHAR.encode(text)
    assert len(ids) == len(text)
    known = set("".join(TRAINING))
    assert [i == UNK_ID for i in ids] == [c not in known for c in text]


@SETTINGS
@given(TEXTS)
def test_byte_level_bpe_round_trips_any_text_as_normalised(text):
    # byte-level: every string is covered and nothing is <unk>; what comes back is the NFKC form it read
    assert BPE.decode(BPE.encode(text)) == BPE.backend.normalizer.normalize_str(text)


@SETTINGS
@given(TEXTS, st.integers(min_value=1, max_value=50))
def test_truncation_keeps_a_prefix_of_at_most_max_length_tokens(text, max_length):
    for tokenizer in (CHAR, WORD, BPE):
        full, cut = tokenizer.encode(text), tokenizer.encode(text, max_length)
        assert cut == full[:max_length]


@SETTINGS
@given(st.lists(TEXTS, min_size=1, max_size=12), st.data())
def test_collate_pads_masks_and_measures_any_batch(texts, data):
    labels = data.draw(st.lists(st.integers(0, 3), min_size=len(texts), max_size=len(texts)))
    encoded = EncodedTexts.from_texts(WORD, texts, labels)
    batch = collate([encoded[i] for i in range(len(texts))])
    lengths = [max(1, len(WORD.encode(t))) for t in texts]  # a text with no tokens reads as one <unk>
    assert batch.ids.shape == (len(texts), max(lengths))
    assert batch.lengths.tolist() == lengths
    assert torch.equal(batch.mask, torch.arange(max(lengths))[None, :] < batch.lengths[:, None])
    assert bool((batch.ids[~batch.mask] == PAD_ID).all()) and not bool((batch.ids[batch.mask] == PAD_ID).any())
    assert batch.labels.tolist() == labels
    for row, text in enumerate(texts):
        expected = WORD.encode(text) or [UNK_ID]
        assert batch.ids[row, : lengths[row]].tolist() == expected
