import gzip
import io
import pickle
import struct
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
import torch

import seqtext.vectors
from seqtext.errors import DataError
from seqtext.tokenizer import Tokenizer
from seqtext.vectors import CATALOGUE, cache_dir, load_vectors, read_vectors, resolve

GLOVE = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "glove.6B.50d.txt.gz"
ROWS = 2000


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Nothing is written to the user's home, and no test sees another's vectors folder."""
    monkeypatch.setenv("SEQTEXT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SEQTEXT_VECTORS", raising=False)


@pytest.fixture(scope="module")
def glove():
    """The first 2,000 lines of the real GloVe file, and their words and vectors parsed by hand with float()."""
    if not GLOVE.is_file():
        pytest.fail(f"the shared GloVe file is not at {GLOVE}", pytrace=False)
    with gzip.open(GLOVE, "rt", encoding="utf-8") as f:
        lines = [next(f) for _ in range(ROWS)]
    words = [line.split(" ")[0] for line in lines]
    vectors = torch.tensor([[float(x) for x in line.rstrip("\n").split(" ")[1:]] for line in lines])  # (2000, 50)
    return lines, words, vectors


@pytest.fixture
def tokenizer():
    return Tokenizer.train("word", ["a good film", "a bad film", "dull"])  # 5 words after the 4 specials


def _zip(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


def _binary(words, vectors, newline=True) -> bytes:
    """word2vec's binary format, written with struct."""
    end = b"\n" if newline else b""
    rows = [w.encode() + b" " + struct.pack(f"<{vectors.shape[1]}f", *v.tolist()) + end for w, v in zip(words, vectors)]
    return f"{len(words)} {vectors.shape[1]}\n".encode() + b"".join(rows)


def _write(tmp_path, fmt, glove):
    """``glove``'s rows written as ``fmt``; returns the source to read and the words and vectors it holds."""
    lines, words, vectors = glove
    text = "".join(lines)
    if fmt == "fasttext":  # a header, a trailing space on every line, and a word that is not ASCII
        words, vectors = [*words, "café-東京"], torch.cat([vectors, vectors[:1] * 2])
        lines = [*lines, "café-東京 " + " ".join(repr(x) for x in vectors[-1].tolist()) + "\n"]
        path = tmp_path / "wiki.vec"
        path.write_text(f"{len(words)} 50\n" + "".join(line.replace("\n", " \n") for line in lines), encoding="utf-8")
    elif fmt in ("txt", "word2vec"):
        path = tmp_path / f"{fmt}.txt"
        path.write_text((f"{ROWS} 50\n" if fmt == "word2vec" else "") + text, encoding="utf-8")
    elif fmt in ("txt.gz", "bin.gz"):
        path = tmp_path / f"vectors.{fmt}"
        with gzip.open(path, "wb") as f:  # and the .bin.gz without the optional newlines
            f.write(text.encode() if fmt == "txt.gz" else _binary(words, vectors, newline=False))
    elif fmt == "bin":
        path = tmp_path / "vectors.bin"
        path.write_bytes(_binary(words, vectors))
    elif fmt == "zip":
        path = _zip(tmp_path / "glove.zip", {"README": "x", "glove.50d.txt": text})
    else:
        path = f"{_zip(tmp_path / 'all.zip', {'a.txt': text, 'b.txt': 'x 1'})}::a.txt"
    return path, words, vectors


FORMATS = ["txt", "txt.gz", "zip", "zip::member", "word2vec", "fasttext", "bin", "bin.gz"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_gives_the_words_and_the_exact_float32_of_the_text(tmp_path, glove, fmt):
    source, words, vectors = _write(tmp_path, fmt, glove)
    read = read_vectors(source, cache=False)
    assert read.words == words
    assert read.vectors.dtype == torch.float32 and torch.equal(read.vectors, vectors)
    assert read.dim == 50 and read.source == str(source)
    assert read.lowercase  # GloVe 6B is lowercased; 東京 has no case
    assert not (tmp_path / "cache").exists()  # cache=False neither reads nor writes the cache


def test_the_index_keeps_the_first_of_a_repeated_word(tmp_path):
    (tmp_path / "v.txt").write_text("the 1 2\nof 3 4\nthe 5 6\n")
    read = read_vectors(tmp_path / "v.txt")
    assert read.index() == {"the": 0, "of": 1} and read.index() is read.index()
    assert read.vectors[read.index()["the"]].tolist() == [1.0, 2.0]


def test_lowercase_says_whether_any_word_has_capitals(tmp_path, glove):
    (tmp_path / "cased.txt").write_text("the 1 2\nParis 3 4\n")
    (tmp_path / "lower.txt").write_text("the 1 2\nparis 3 4\n")
    assert not read_vectors(tmp_path / "cased.txt").lowercase
    assert read_vectors(tmp_path / "lower.txt").lowercase


def test_a_word_with_spaces_is_read_whole(tmp_path):
    (tmp_path / "v.txt").write_text("the 1 2\n. . . 3 4\n")  # GloVe 840B has such lines
    assert read_vectors(tmp_path / "v.txt").words == ["the", ". . ."]


def _counting_parses(monkeypatch) -> list:
    parsed, parse = [], seqtext.vectors._parse
    monkeypatch.setattr(seqtext.vectors, "_parse", lambda *args: parsed.append(args[0]) or parse(*args))
    return parsed


def test_the_cache_gives_the_same_tensors_and_a_changed_file_is_parsed_again(tmp_path, glove, monkeypatch):
    parsed = _counting_parses(monkeypatch)
    source, words, vectors = _write(tmp_path, "txt.gz", glove)
    first, second = read_vectors(source), read_vectors(source)
    assert len(parsed) == 1 and second.words == words and torch.equal(second.vectors, vectors)
    assert second.sha256 == first.sha256 and (cache_dir() / f"{first.sha256}.safetensors").is_file()

    with gzip.open(source, "wt") as f:  # same path, new content
        f.write("".join(glove[0][:10]))
    third = read_vectors(source)
    assert len(parsed) == 2 and third.words == words[:10] and third.sha256 != first.sha256
    assert torch.equal(read_vectors(source).vectors, vectors[:10]) and len(parsed) == 2


@pytest.mark.parametrize("damage", ["truncate", "flip a byte", "words", "delete words"])
def test_a_damaged_cache_entry_is_parsed_again(tmp_path, glove, monkeypatch, damage):
    parsed = _counting_parses(monkeypatch)
    source, words, vectors = _write(tmp_path, "txt", glove)
    sha = read_vectors(source).sha256
    tensors, word_file = cache_dir() / f"{sha}.safetensors", cache_dir() / f"{sha}.words.json"
    data = tensors.read_bytes()
    if damage == "truncate":
        tensors.write_bytes(data[: len(data) // 2])
    elif damage == "flip a byte":
        tensors.write_bytes(data[:-100] + bytes([data[-100] ^ 1]) + data[-99:])
    elif damage == "words":
        word_file.write_text('["the"]')
    else:
        word_file.unlink()
    again = read_vectors(source)
    assert len(parsed) == 2 and again.words == words and torch.equal(again.vectors, vectors)
    assert torch.equal(read_vectors(source).vectors, vectors) and len(parsed) == 2  # and the entry was rewritten


def test_an_unwritable_cache_is_said_once_and_done_without(tmp_path, monkeypatch, capsys):
    (tmp_path / "a file").write_text("")
    monkeypatch.setenv("SEQTEXT_CACHE", str(tmp_path / "a file"))
    (tmp_path / "v.txt").write_text("the 1 2\n")
    assert read_vectors(tmp_path / "v.txt").words == read_vectors(tmp_path / "v.txt").words == ["the"]
    assert capsys.readouterr().err.count("cannot write the word-vector cache") == 1


def _error(source, **kwargs) -> str:
    with pytest.raises(DataError) as caught:
        read_vectors(source, **kwargs)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_bad_files_name_the_file_and_the_line(tmp_path, glove):
    lines = list(glove[0][:30])
    lines[16] = lines[16].rsplit(" ", 1)[0] + "\n"
    (tmp_path / "glove.txt").write_text("".join(lines))
    assert _error(tmp_path / "glove.txt").endswith("glove.txt, line 17: 49 numbers, expected 50")
    (tmp_path / "bad.txt").write_bytes(b"the 1 2\nof 3 4\ncaf\xe9 5 6\n")
    assert _error(tmp_path / "bad.txt").endswith("bad.txt, line 3: invalid UTF-8 (byte 0xe9 at column 4)")
    (tmp_path / "x.txt").write_text("the 1 2\nof 3 x\n")
    assert _error(tmp_path / "x.txt").endswith("x.txt, line 2: not a word followed by numbers ('x' is not one)")
    (tmp_path / "short.vec").write_text("5 2\nthe 1 2\nof 3 4\n")
    assert _error(tmp_path / "short.vec").endswith("short.vec: cut short after 2 of 5 words")
    (tmp_path / "empty.txt").write_text("\n")
    assert _error(tmp_path / "empty.txt").endswith("empty.txt: no word vectors in it")


def test_a_truncated_binary_file_says_how_far_it_got(tmp_path, glove):
    _, words, vectors = glove
    data = _binary(words, vectors)
    cut = len(_binary(words[:1203], vectors[:1203])) + 30  # 30 bytes into word 1,204 (both headers are 8 bytes)
    (tmp_path / "vectors.bin").write_bytes(data[:cut])
    assert _error(tmp_path / "vectors.bin").endswith("vectors.bin: cut short after 1,203 of 2,000 words")


def test_pickles_are_refused(tmp_path):
    torch.save({"the": torch.zeros(2)}, tmp_path / "vectors.pt")
    (tmp_path / "vectors.txt").write_bytes(pickle.dumps({"the": [1.0, 2.0]}))  # a pickle whatever its name
    (tmp_path / "model.zip").write_bytes((tmp_path / "vectors.pt").read_bytes())
    for name in ("vectors.pt", "vectors.txt", "model.zip"):
        message = _error(tmp_path / name)
        assert f"{name}: " in message and "seqtext reads no pickle-based format" in message and "word2vec binary" in message


def test_an_archive_of_several_files_asks_for_one(tmp_path):
    _zip(tmp_path / "two.zip", {"a.txt": "the 1\n", "b.txt": "the 2\n"})
    assert _error(tmp_path / "two.zip").endswith(
        "two.zip: the archive holds 2 .txt or .vec files (a.txt, b.txt); name one as two.zip::a.txt"
    )
    assert "the archive has no member c.txt" in _error(f"{tmp_path / 'two.zip'}::c.txt")
    assert read_vectors(f"{tmp_path / 'two.zip'}::b.txt").vectors.tolist() == [[2.0]]


def test_a_catalogue_name_is_found_in_seqtext_vectors(monkeypatch):
    monkeypatch.setenv("SEQTEXT_VECTORS", str(GLOVE.parent))
    assert resolve("glove.6B.50d") == GLOVE
    assert resolve(GLOVE) == GLOVE  # a path is used as it is


def test_a_catalogue_miss_offline_says_where_it_looked_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQTEXT_VECTORS", str(tmp_path))
    monkeypatch.setenv("SEQTEXT_OFFLINE", "1")
    downloads = tmp_path / "cache" / "vectors" / "downloads"
    assert _error("glove.6B.300d") == (
        f"vectors glove.6B.300d: not found in $SEQTEXT_VECTORS ({tmp_path}) or {downloads}; set SEQTEXT_VECTORS to a "
        "folder that holds glove.6B.300d.txt(.gz), or go online to fetch it from https://nlp.stanford.edu/data/glove.6B.zip"
    )
    assert _error("word2vec.google-news-300").endswith(
        "GoogleNews-vectors-negative300.bin(.gz) (it has no stable official download)"
    )
    assert _error("glove.6B.51d") == f"glove.6B.51d: no such word-vector file, nor a catalogue name ({', '.join(CATALOGUE)})"


class _Response(io.BytesIO):
    headers: dict = {}


def test_a_download_lands_once_in_the_cache_and_a_failed_one_says_why(tmp_path, glove, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("SEQTEXT_OFFLINE", raising=False)
    archive = _zip(tmp_path / "glove.6B.zip", {"glove.6B.50d.txt": "".join(glove[0][:5])}).read_bytes()
    urls = []
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: urls.append(url) or _Response(archive))
    assert read_vectors("glove.6B.50d").words == read_vectors("glove.6B.50d").words == glove[1][:5]
    assert urls == ["https://nlp.stanford.edu/data/glove.6B.zip"]
    assert [p.name for p in (cache_dir() / "downloads").iterdir()] == ["glove.6B.zip"]  # no temporary file left

    def unreachable(url, timeout):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    assert _error("glove.42B.300d").endswith("glove.42B.300d.zip (the download failed: <urlopen error no route to host>)")


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


def test_lowercased_vectors_fill_capitalised_words(tmp_path):
    tokenizer = Tokenizer.train("word", ["A Good film", "a bad film"])
    (tmp_path / "v.txt").write_text("good 1 2\nfilm 3 4\n")
    weight = torch.zeros(tokenizer.vocab_size, 2)
    assert load_vectors(tmp_path / "v.txt", tokenizer, weight) == 2 / 5  # A, Good, film, a, bad
    assert weight[tokenizer.token_to_id("Good")].tolist() == [1.0, 2.0]


def test_bad_vector_files(tmp_path, tokenizer):
    weight = torch.zeros(tokenizer.vocab_size, 2)
    with pytest.raises(DataError, match="missing.txt: no such word-vector file"):
        load_vectors(tmp_path / "missing.txt", tokenizer, weight)
    (tmp_path / "words.txt").write_text("good 1 x\n")
    with pytest.raises(DataError, match=r"words.txt, line 1: not a word followed by numbers"):
        load_vectors(tmp_path / "words.txt", tokenizer, weight)
    (tmp_path / "wide.vec").write_text("1 3\ngood 1 2 3\n")
    with pytest.raises(DataError, match=r"wide.vec, line 2: 3 numbers, but the embedding has 2"):
        load_vectors(tmp_path / "wide.vec", tokenizer, weight)
