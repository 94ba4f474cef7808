"""Pretrained word vectors: GloVe, word2vec and fastText files read into a (N, D) tensor, and copied into an
embedding.

``read_vectors`` takes a path or a catalogue name (``glove.6B.50d``). It reads text files (GloVe's
``word v1 ... vD``; word2vec's and fastText's, which open with a ``count dim`` line), plain, gzipped or inside a
zip archive, and word2vec's binary format. Formats that unpickle (``.pt``, ``.pkl``, gensim models) are refused:
loading them can run code. A file's first read is kept in the cache folder as safetensors, keyed by the sha256
of its bytes, so that reading a multi-GB file again takes a second instead of minutes.
"""

from __future__ import annotations

import codecs
import hashlib
import http.client
import json
import os
import re
import sys
import time
import urllib.request
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from seqtext.errors import DataError
from seqtext.readers import guard_file, open_binary, utf8_problem
from seqtext.tokenizer import SPECIAL_TOKENS, Tokenizer


@dataclass(frozen=True)
class Published:
    """A published set of word vectors: the names its file goes by on disk, and where its publisher serves it."""

    names: tuple[str, ...]  # looked for in a folder, best first; "archive.zip::member" names a member of an archive
    url: str | None  # the publisher's download; None where there is no stable official one

    @property
    def hint(self) -> str:
        """The file a user should put in $SEQTEXT_VECTORS: ``glove.6B.50d.txt(.gz)``."""
        return f"{self.names[1]}(.gz)"


def _published(stem: str, url: str | None) -> Published:
    """``stem`` gzipped, as is, and inside the zip archive ``url`` serves (where it serves one)."""
    inside = (f"{url.rsplit('/', 1)[1]}::{stem}",) if url else ()
    return Published((stem + ".gz", stem, *inside), url)


_STANFORD = "https://nlp.stanford.edu/data/"
_FASTTEXT = "https://dl.fbaipublicfiles.com/fasttext/vectors-english/"
CATALOGUE: dict[str, Published] = {
    **{f"glove.6B.{d}d": _published(f"glove.6B.{d}d.txt", _STANFORD + "glove.6B.zip") for d in (50, 100, 200, 300)},
    "glove.42B.300d": _published("glove.42B.300d.txt", _STANFORD + "glove.42B.300d.zip"),
    "glove.840B.300d": _published("glove.840B.300d.txt", _STANFORD + "glove.840B.300d.zip"),
    "fasttext.wiki-news-300d-1M": _published("wiki-news-300d-1M.vec", _FASTTEXT + "wiki-news-300d-1M.vec.zip"),
    "fasttext.crawl-300d-2M": _published("crawl-300d-2M.vec", _FASTTEXT + "crawl-300d-2M.vec.zip"),
    "word2vec.google-news-300": _published("GoogleNews-vectors-negative300.bin", None),  # Google's Drive link moves
}
_PICKLED = (".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".npy", ".npz", ".model", ".kv", ".joblib")
_READ = "GloVe, word2vec and fastText text (.txt, .vec; plain, .gz or in a .zip) and word2vec binary (.bin, .bin.gz)"
_CACHE_FORMAT = "seqtext.vectors/1"
_CACHE_ERRORS = (OSError, ValueError, KeyError, TypeError, SafetensorError)  # a bad entry is re-parsed, never fatal
_HEAD = 1 << 20  # bytes read to tell the format; no first line is longer
_BLOCK = 1 << 23  # bytes parsed at a time: big enough for numpy to pay, small enough to stay in cache
_warned: set[str] = set()


@dataclass(eq=False, repr=False)  # eq on tensors is ambiguous; the default repr would print 400,000 words
class WordVectors:
    """One file's words and their vectors, in the file's order (most frequent first in published files)."""

    words: list[str]
    vectors: torch.Tensor  # (N, D) float32
    source: str  # what the user gave: a path, or a catalogue name
    sha256: str  # of the file's bytes as stored (the .gz / .zip / .bin itself)
    lowercase: bool  # no word changes under str.lower() (GloVe 6B): look words up in lowercased text
    _index: dict[str, int] | None = field(default=None, init=False, compare=False)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def index(self) -> dict[str, int]:
        """word -> row; the first occurrence of a repeated word wins. Built once, then kept."""
        if self._index is None:
            rows = range(len(self.words) - 1, -1, -1)
            self._index = dict(zip(reversed(self.words), rows))  # later pairs overwrite: the first row stays
        return self._index

    def __repr__(self) -> str:
        return f"WordVectors({len(self.words):,} words x {self.dim}, source={self.source!r}, lowercase={self.lowercase})"


def read_vectors(source: str | Path, *, cache: bool = True) -> WordVectors:
    """The words and vectors of ``source``, a path or a CATALOGUE name (see ``resolve``).

    With ``cache`` the parse is kept in ``cache_dir()`` keyed by the file's sha256, and read from there next
    time; ``cache=False`` neither reads nor writes that folder. Bad input raises a one-line ``DataError``.
    """
    path = resolve(source)
    file, member = _stored(path)
    sha256 = guard_file(path, lambda: _sha256(file, remember=cache))
    key = sha256 if member is None else hashlib.sha256(f"{sha256}::{member}".encode()).hexdigest()
    cached = _cached(key) if cache else None
    if cached is not None:
        words, vectors, lowercase = cached
    else:
        words, array = _parse(path, file, member)
        vectors = torch.from_numpy(array)  # (N, D)
        lowercase = _is_lowercase(words)
        if cache:
            _store(key, words, vectors, lowercase)
    return WordVectors(words, vectors, str(source), sha256, lowercase)


def load_vectors(path: str | Path, tokenizer: Tokenizer, weight: torch.Tensor) -> float:
    """Copy the vector of every vocabulary word found in ``path`` into ``weight`` (V, E), in place.

    Words missing from the file, and the special tokens, keep their random initialisation; when the file is
    lowercased (GloVe) a word is looked up lowercased. Returns the fraction of the vocabulary (special tokens
    aside) that the file covered.
    """
    path = resolve(path)
    where, dim = _first_row(path)  # before parsing: a file of the wrong width fails at once, not minutes later
    if dim != weight.shape[1]:
        raise DataError(f"{where}: {dim} numbers, but the embedding has {weight.shape[1]}")
    vectors = read_vectors(path)
    ids, rows = matching_rows(tokenizer, vectors)
    if len(ids):
        with torch.no_grad():
            weight[ids.to(weight.device)] = vectors.vectors[rows].to(weight.device, weight.dtype)  # (F, E)
    return len(ids) / max(1, tokenizer.vocab_size - len(SPECIAL_TOKENS))


def matching_rows(tokenizer: Tokenizer, vectors: WordVectors) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, rows), each (F,): the vocabulary's words that ``vectors`` has, by their id and their row in the
    vectors; special tokens aside, and looked up lowercased when the vectors are lowercased."""
    index, ids, rows = vectors.index(), [], []
    for word, i in tokenizer.backend.get_vocab().items():
        row = None if word in SPECIAL_TOKENS else index.get(word.lower() if vectors.lowercase else word)
        if row is not None:
            ids.append(i)
            rows.append(row)
    return torch.tensor(ids, dtype=torch.long), torch.tensor(rows, dtype=torch.long)


def cache_dir() -> Path:
    """$SEQTEXT_CACHE/vectors if set, else $XDG_CACHE_HOME/seqtext/vectors, else ~/.cache/seqtext/vectors."""
    if os.environ.get("SEQTEXT_CACHE"):
        return Path(os.environ["SEQTEXT_CACHE"]).expanduser() / "vectors"
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return root / "seqtext" / "vectors"


def resolve(source: str | Path) -> Path:
    """The local file for ``source``: a path that exists (``archive.zip::member.txt`` names a member), or a
    CATALOGUE name, looked for in $SEQTEXT_VECTORS, then in ``cache_dir()/downloads``, else downloaded there."""
    given = Path(source).expanduser()
    file, member = _split(given)
    if given.exists() or member is not None and file.is_file():
        return given
    name = str(source)
    if name not in CATALOGUE:
        raise DataError(f"{name}: no such word-vector file, nor a catalogue name ({', '.join(CATALOGUE)})")
    published = CATALOGUE[name]
    for folder in _folders():
        for file_name in published.names:
            if (folder / file_name.partition("::")[0]).is_file():
                return folder / file_name
    return _download(name, published)


def _folders() -> list[Path]:
    own = [Path(os.environ["SEQTEXT_VECTORS"]).expanduser()] if os.environ.get("SEQTEXT_VECTORS") else []
    return [*own, cache_dir() / "downloads"]


def _missing(name: str, published: Published, why: str = "") -> str:
    """The one line that says where a catalogued file was looked for, and how to get it."""
    own = os.environ.get("SEQTEXT_VECTORS")
    downloads = cache_dir() / "downloads"
    if downloads.is_relative_to(Path.home()) and Path.home() != Path("/"):
        downloads = "~" / downloads.relative_to(Path.home())
    message = (
        f"vectors {name}: not found in $SEQTEXT_VECTORS ({own or 'not set'}) or {downloads}; "
        f"set SEQTEXT_VECTORS to a folder that holds {published.hint}"
    )
    if published.url is None:
        return message + " (it has no stable official download)"
    return message + f", or go online to fetch it from {published.url}" + (f" ({why})" if why else "")


def _download(name: str, published: Published) -> Path:
    """Fetch the publisher's file into ``cache_dir()/downloads`` once, under its own name."""
    offline = {os.environ.get(v, "").lower() for v in ("HF_HUB_OFFLINE", "SEQTEXT_OFFLINE")} & {"1", "true", "yes", "on"}
    if published.url is None or offline:
        raise DataError(_missing(name, published))
    archive = published.url.rsplit("/", 1)[1]
    target = cache_dir() / "downloads" / archive
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(target, lambda part: _fetch(published.url, part))
    except (OSError, ValueError, http.client.HTTPException) as err:  # urllib's errors are OSErrors
        raise DataError(_missing(name, published, f"the download failed: {err}")) from None
    return target.parent / next(n for n in published.names if n.startswith(archive + "::"))


def _fetch(url: str, part: Path) -> None:
    """``url`` into ``part``, with a progress line on stderr."""
    with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
        total, done, shown = int(response.headers.get("Content-Length") or 0), 0, 0.0
        while chunk := response.read(1 << 20):
            out.write(chunk)
            done += len(chunk)
            if time.monotonic() - shown > 1 or done == total:
                of = f" of {total / 1e6:,.0f}" if total else ""
                print(f"\rseqtext: downloading {url}: {done / 1e6:,.0f}{of} MB", end="", file=sys.stderr, flush=True)
                shown = time.monotonic()
        print(file=sys.stderr)
    if total and done != total:
        raise ValueError(f"got {done:,} of {total:,} bytes")


# Reading. A format sniffs the first bytes of the (decompressed) stream into a layout, then reads the rest.


class _Layout(NamedTuple):
    rows: bytes  # the first bytes of the rows, after any BOM and header line
    dim: int
    count: int | None  # the header's word count; GloVe files have no header
    first_line: int  # the line of the first row


class _Format(NamedTuple):
    name: str
    sniff: Callable[[str, bytes], _Layout | None]
    read: Callable[[str, BinaryIO, _Layout], tuple[list[str], np.ndarray]]


def _split(path: Path) -> tuple[Path, str | None]:
    """The file to open and the member of it to read (None: the file itself)."""
    if path.exists() or "::" not in str(path):
        return path, None
    archive, _, member = str(path).partition("::")
    return Path(archive), member


def _stored(path: Path) -> tuple[Path, str | None]:
    """``_split``, refusing folders and the names of pickle-based formats before a byte is read."""
    file, member = _split(path)
    for name in (file.name, member or ""):
        if name.lower().endswith(_PICKLED):
            raise _refusal(path, f"a {Path(name).suffix} file")
    if file.is_dir():
        raise DataError(f"{path}: is a folder, not a word-vector file")
    return file, member


def _refusal(path: object, why: str) -> DataError:
    return DataError(f"{path}: {why}; seqtext reads no pickle-based format, as unpickling can run code, only {_READ}")


def _parse(path: Path, file: Path, member: str | None) -> tuple[list[str], np.ndarray]:
    """Words and (N, D) float32 vectors of the stored file, in its order."""

    def read(stream: BinaryIO) -> tuple[list[str], np.ndarray]:
        fmt, layout = _sniff(str(path), stream.read(_HEAD))
        return fmt.read(str(path), stream, layout)

    words, vectors = _reading(path, file, member, read)
    if not words:
        raise DataError(f"{path}: no word vectors in it")
    return words, vectors


def _reading(path: Path, file: Path, member: str | None, action: Callable[[BinaryIO], object]):
    """``action`` on the decompressed bytes of ``file`` (or its ``member``); a file that cannot be read, or
    decompressed, is a one-line DataError."""

    def run():
        try:
            with _opened(path, file, member) as stream:
                return action(stream)
        except (zipfile.BadZipFile, zlib.error) as err:  # neither is an OSError
            raise DataError(f"{path}: cannot read ({err})") from None

    return guard_file(path, run)


@contextmanager
def _opened(path: Path, file: Path, member: str | None) -> Iterator[BinaryIO]:
    """The bytes of ``file`` (or of its zip ``member``), decompressed."""
    with open(file, "rb") as probe:
        magic = probe.read(4)
    if member is None and magic not in (b"PK\x03\x04", b"PK\x05\x06"):
        with open_binary(file) as stream:
            yield stream
        return
    with zipfile.ZipFile(file) as archive, archive.open(_member(path, archive, member)) as stream:
        yield stream


def _member(path: Path, archive: zipfile.ZipFile, member: str | None) -> str:
    """The member to read: the one named, or the archive's only .txt / .vec file."""
    names = archive.namelist()
    if member is not None:
        if member not in names:
            raise DataError(f"{path}: the archive has no member {member} (it holds {', '.join(names[:8]) or 'nothing'})")
        return member
    texts = [n for n in names if n.lower().endswith((".txt", ".vec"))]
    if not texts and any(n.endswith(".pkl") for n in names):
        raise _refusal(path, "a zip of pickles (as torch.save writes)")
    if len(texts) != 1:
        listed = f" ({', '.join(texts[:8])}); name one as {path.name}::{texts[0]}" if texts else ""
        raise DataError(f"{path}: the archive holds {len(texts)} .txt or .vec files{listed}")
    return texts[0]


def _sniff(path: str, head: bytes) -> tuple[_Format, _Layout]:
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05") or head.startswith(b"\x93NUMPY"):
        raise _refusal(path, "a pickle or NumPy file")
    head = head.removeprefix(codecs.BOM_UTF8)
    if not head.strip():
        raise DataError(f"{path}: no word vectors in it")
    if b"\n" not in head and len(head) >= _HEAD - len(codecs.BOM_UTF8):
        raise DataError(f"{path}, line 1: longer than {_HEAD:,} bytes; not a word-vector file")
    for fmt in _FORMATS:
        layout = fmt.sniff(path, head)
        if layout is not None:
            return fmt, layout
    raise AssertionError("the text format takes every file")


def _header(head: bytes) -> tuple[int, int, bytes] | None:
    """(count, dim, the bytes after it) when the first line is word2vec's ``count dim``."""
    first, _, rest = head.partition(b"\n")
    found = re.fullmatch(rb"\s*(\d+) (\d+)\s*", first)
    return (int(found[1]), int(found[2]), rest) if found and int(found[2]) > 0 else None


def _sniff_binary(path: str, head: bytes) -> _Layout | None:
    """word2vec's binary format: a ``count dim`` line, then rows whose numbers are not text."""
    header = _header(head)
    if header is None:
        return None
    count, dim, rows = header
    line = rows.partition(b"\n")[0].rstrip(b" \r").split(b" ")
    if len(line) == dim + 1 and all(_is_number(f) for f in line[1:]):
        return None  # the first row reads as text
    space = rows.find(b" ")
    sample = rows[space + 1 : space + 1 + 4 * dim] if space >= 0 else b""
    if not sample.translate(None, b"0123456789+-.eEnNaAiIfFtTyY \t\r\n"):
        return None  # nothing a text row could not hold: let the text reader say what is wrong
    return _Layout(rows, dim, count, 2)


def _sniff_text(path: str, head: bytes) -> _Layout:
    """GloVe's text format, or word2vec's and fastText's with their ``count dim`` line."""
    header = _header(head)
    if header is not None:
        count, dim, rows = header
        return _Layout(rows, dim, count, 2)
    first = head.partition(b"\n")[0].rstrip(b" \r")
    if b" " not in first:
        raise DataError(f"{path}, line 1: not a word followed by numbers")
    return _Layout(head, first.count(b" "), None, 1)


def _read_text(path: str, stream: BinaryIO, layout: _Layout) -> tuple[list[str], np.ndarray]:
    """One row a line, ``word v1 ... vD``, split on spaces; a trailing space or \\r is tolerated."""
    words, parts, line = [], [], layout.first_line
    for block in _blocks(stream, layout.rows):
        text = _decoded(path, block, line)
        block_words, values = _parse_rows(path, text, line, layout.dim)  # values: (n, D)
        words += block_words
        parts.append(values)
        line += block.count(b"\n")
    if layout.count is not None and len(words) < layout.count:
        raise DataError(f"{path}: cut short after {len(words):,} of {layout.count:,} words")
    return words, np.concatenate(parts) if parts else np.empty((0, layout.dim), np.float32)


def _blocks(stream: BinaryIO, head: bytes) -> Iterator[bytes]:
    """The stream's bytes, ``head`` first, in blocks of whole lines."""
    carry = head
    while more := stream.read(_BLOCK):
        data = carry + more
        cut = data.rfind(b"\n") + 1
        if cut:
            yield data[:cut]
        carry = data[cut:]
    if carry:
        yield carry


def _decoded(path: str, block: bytes, first_line: int) -> str:
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError as err:
        start = block.rfind(b"\n", 0, err.start) + 1
        end = block.find(b"\n", err.start)
        line = block[start : end if end >= 0 else len(block)]
        number = first_line + block.count(b"\n", 0, start)
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as inner:  # always: the line holds the bad bytes
            raise DataError(f"{path}, line {number}: {utf8_problem(line, inner)}") from None
        raise


def _parse_rows(path: str, text: str, first_line: int, dim: int) -> tuple[list[str], np.ndarray]:
    """Words and (n, D) float32 vectors of the lines of ``text``. numpy parses the numbers of all rows in one
    call (bit for bit what float() gives, then rounded to float32); float() takes over to name a bad line."""
    words, rests, lines = [], [], []
    for offset, line in enumerate(text.split("\n")):
        line = line.rstrip(" \r")
        if not line:
            continue
        word, _, rest = line.partition(" ")
        if not rest or rest.count(" ") != dim - 1:
            word, rest = _odd_row(path, first_line + offset, line, dim)
        words.append(word)
        rests.append(rest)
        lines.append(first_line + offset)
    try:
        values = np.fromstring(" ".join(rests), dtype=np.float64, sep=" ")  # (n * D,)
    except ValueError:  # a field that is not a number
        values = np.empty(0)
    if values.size != len(rests) * dim:  # also when numpy skipped an empty field between two spaces
        values = _floats(path, rests, lines)
    return words, values.astype(np.float32).reshape(len(words), dim)


def _odd_row(path: str, number: int, line: str, dim: int) -> tuple[str, str]:
    """A line without ``dim`` numbers after its first space: a word with spaces in it (GloVe 840B has some),
    or an error."""
    fields = line.split(" ")
    numbers = len(fields) - 1
    extra = numbers - dim
    if extra > 0 and not any(_is_number(f) for f in fields[1 : 1 + extra]):
        return " ".join(fields[: 1 + extra]), " ".join(fields[1 + extra :])
    if "" in fields[1:]:
        raise DataError(f"{path}, line {number}: not a word followed by numbers (two spaces in a row)")
    raise DataError(f"{path}, line {number}: {numbers} number{'s' * (numbers != 1)}, expected {dim}")


def _floats(path: str, rests: list[str], lines: list[int]) -> np.ndarray:
    values = []
    for number, rest in zip(lines, rests):
        for text in rest.split(" "):
            try:
                values.append(float(text))
            except ValueError:
                why = f"{text!r} is not one" if text else "two spaces in a row"
                raise DataError(f"{path}, line {number}: not a word followed by numbers ({why})") from None
    return np.array(values, dtype=np.float64)


def _is_number(text: str | bytes) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_binary(path: str, stream: BinaryIO, layout: _Layout) -> tuple[list[str], np.ndarray]:
    """Per word: its UTF-8 bytes up to a space, then D little-endian float32, then an optional newline."""
    size, words, parts, pending = 4 * layout.dim, [], [], []
    data, pos = layout.rows, 0
    while True:
        space = data.find(b" ", pos)
        if space < 0 or len(data) - space - 1 < size:
            if space < 0 and len(data) - pos > _HEAD:
                raise DataError(f"{path}, word {len(words) + 1:,}: no space in {_HEAD:,} bytes; not word2vec binary")
            more = stream.read(_BLOCK)
            if not more:
                break
            parts.append(np.frombuffer(b"".join(pending), "<f4").reshape(-1, layout.dim))  # (n, D)
            data, pos, pending = data[pos:] + more, 0, []
            continue
        words.append(_word(path, data[pos:space].lstrip(b"\n"), len(words) + 1))
        pending.append(data[space + 1 : space + 1 + size])
        pos = space + 1 + size
    parts.append(np.frombuffer(b"".join(pending), "<f4").reshape(-1, layout.dim))
    if len(words) < layout.count:
        raise DataError(f"{path}: cut short after {len(words):,} of {layout.count:,} words")
    if data[pos:].strip():
        raise DataError(f"{path}: cut short in word {len(words) + 1:,} (the header announces {layout.count:,})")
    return words, np.concatenate(parts).astype(np.float32)  # (N, D), a writable copy in native order


def _word(path: str, raw: bytes, number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}, word {number:,}: {utf8_problem(raw, err)}") from None


_FORMATS = (_Format("word2vec binary", _sniff_binary, _read_binary), _Format("text", _sniff_text, _read_text))


def _is_lowercase(words: list[str]) -> bool:
    """True when lowercasing text loses no word: none changes under str.lower() (GloVe 6B)."""
    joined = "\n".join(words)
    return joined == joined.lower()


def _first_row(path: Path) -> tuple[str, int]:
    """Where the first vector of ``path`` is (``file, line 2``) and its width, from the first bytes alone."""
    file, member = _stored(path)
    fmt, layout = _reading(path, file, member, lambda stream: _sniff(str(path), stream.read(_HEAD)))
    return (str(path) if fmt.read is _read_binary else f"{path}, line {layout.first_line}"), layout.dim


# The cache: cache_dir()/<key>.safetensors (the vectors) beside <key>.words.json, and hashes.json, which
# remembers the sha256 of files by (path, size, mtime, ctime) so that a multi-GB file is hashed once.


def _sha256(file: Path, remember: bool) -> str:
    """The sha256 of the bytes of ``file``; with ``remember``, looked up in (and added to) hashes.json."""
    stat = file.stat()
    where, stamp = str(file.resolve()), [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]
    index = _read_json(cache_dir() / "hashes.json") if remember else None
    known = index.get(where) if isinstance(index, dict) else None
    if isinstance(known, dict) and known.get("stamp") == stamp and re.fullmatch(r"[0-9a-f]{64}", str(known.get("sha256"))):
        return known["sha256"]
    with open(file, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    if remember:
        index = {k: v for k, v in index.items() if Path(k).exists()} if isinstance(index, dict) else {}
        index[where] = {"stamp": stamp, "sha256": digest}
        text = json.dumps(index, ensure_ascii=False, indent=0).encode("utf-8")
        _write_cache(lambda: _write_atomic(cache_dir() / "hashes.json", lambda tmp: tmp.write_bytes(text)))
    return digest  # two processes may each drop the other's new entry: that costs a second hash, nothing more


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):  # missing, unreadable or corrupt: start again
        return None


def _cached(key: str) -> tuple[list[str], torch.Tensor, bool] | None:
    """The words, vectors and lowercase flag kept under ``key``, or None when missing, partial or corrupt."""
    tensors_file = cache_dir() / f"{key}.safetensors"
    if not tensors_file.is_file():
        return None
    try:
        with safe_open(tensors_file, framework="pt") as f:
            meta, vectors = f.metadata() or {}, f.get_tensor("vectors")  # (N, D), read through safetensors' memory map
        words_bytes = (cache_dir() / f"{key}.words.json").read_bytes()
        sound = (
            meta.get("format") == _CACHE_FORMAT
            and meta.get("words_sha256") == hashlib.sha256(words_bytes).hexdigest()
            and vectors.dtype == torch.float32
            and vectors.ndim == 2
            and meta.get("crc32") == str(zlib.crc32(vectors.numpy()))  # a torn or bit-flipped file
        )
        words = json.loads(words_bytes) if sound else None
    except _CACHE_ERRORS:
        return None
    if not isinstance(words, list) or len(words) != vectors.shape[0]:
        return None
    return words, vectors, meta.get("lowercase") == "1"


def _store(key: str, words: list[str], vectors: torch.Tensor, lowercase: bool) -> None:
    """Keep a parse under ``key``: the words first, then the vectors, whose metadata holds the words' hash, so
    that an entry cut short at any point reads as missing."""
    words_bytes = json.dumps(words, ensure_ascii=False).encode("utf-8")
    meta = {
        "format": _CACHE_FORMAT,
        "words_sha256": hashlib.sha256(words_bytes).hexdigest(),
        "crc32": str(zlib.crc32(vectors.numpy())),
        "lowercase": "1" if lowercase else "0",
    }
    folder = cache_dir()

    def write():
        _write_atomic(folder / f"{key}.words.json", lambda tmp: tmp.write_bytes(words_bytes))
        _write_atomic(folder / f"{key}.safetensors", lambda tmp: save_file({"vectors": vectors}, tmp, metadata=meta))

    _write_cache(write)


def _write_cache(write: Callable[[], None]) -> None:
    """Run ``write``; a cache folder that cannot be written is said once on stderr, and then done without."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write()
    except (OSError, SafetensorError) as err:
        if str(folder) not in _warned:
            _warned.add(str(folder))
            message = f"seqtext: warning: cannot write the word-vector cache in {folder} ({err}); going on without it"
            print(message, file=sys.stderr)


def _write_atomic(target: Path, write: Callable[[Path], None]) -> None:
    """``write`` to a temporary file beside ``target``, then rename it over ``target``: readers see all or nothing."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
