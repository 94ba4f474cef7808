import gzip

import pytest
import torch

from seqtext.errors import DataError
from seqtext.tokenizer import Tokenizer
from seqtext.vectors import load_vectors


@pytest.fixture
def tokenizer():
    return Tokenizer.train("word", ["a good film", "a bad film", "dull"])  # 5 words after the 4 specials


@pytest.mark.parametrize("compress", [False, True])
def test_vectors_fill_the_rows_of_the_words_they_name(tmp_path, tokenizer, compress):
    lines = "3 2\ngood 1.5 -2\nfilm 0 0.25\nunseen 9 9\nfilm 7 7\n"  # a word2vec header; a repeated word keeps its first vector
    path = tmp_path / ("vectors.txt.gz" if compress else "vectors.txt")
    if compress:
        with gzip.open(path, "wt") as f:
            f.write(lines)
    else:
        path.write_text(lines)
    weight = torch.zeros(tokenizer.vocab_size, 2)
    coverage = load_vectors(path, tokenizer, weight)
    assert coverage == 2 / 5
    assert weight[tokenizer.token_to_id("good")].tolist() == [1.5, -2.0]
    assert weight[tokenizer.token_to_id("film")].tolist() == [0.0, 0.25]
    assert weight[tokenizer.token_to_id("bad")].tolist() == [0.0, 0.0]


def test_bad_vector_files(tmp_path, tokenizer):
    weight = torch.zeros(tokenizer.vocab_size, 2)
    with pytest.raises(DataError, match="missing.txt: no such word-vector file"):
        load_vectors(tmp_path / "missing.txt", tokenizer, weight)
    (tmp_path / "words.txt").write_text("good 1 x\n")
    with pytest.raises(DataError, match=r"words.txt, line 1: not a word followed by numbers"):
        load_vectors(tmp_path / "words.txt", tokenizer, weight)
