"""Read labelled text from local files: CSV, TSV, JSON, JSON Lines, Parquet and plain text, gzipped or not.

Every row comes back with the line (or, for Parquet and JSON arrays, the row) it started on, so that an
error names the file and the place. The text formats are read with Python's own ``csv`` and ``json``
modules rather than through pandas, which turns texts such as "NA" or "null" into missing values and
reports no line numbers. Labels are kept as strings here; ``seqtext.data`` maps them to ids.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from seqtext.errors import DataError

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".txt": "text",
}
BAD_ROW_POLICIES = ("error", "skip")

csv.field_size_limit(sys.maxsize)  # one review can be longer than csv's 128 KiB default


@dataclass
class Rows:
    """The rows of one file. ``labels`` is None when the file has no label column."""

    path: Path
    texts: list[str] = field(default_factory=list)
    labels: list[str] | None = None
    lines: list[int] = field(default_factory=list)  # where each row starts, counted in `unit`s from 1
    unit: str = "line"  # "row" for Parquet and JSON arrays, which have no useful line numbers
    skipped: int = 0


def file_format(path: Path) -> str:
    """The format of ``path`` from its suffix, looking through a final ``.gz``."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    fmt = FORMATS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        known = ", ".join(FORMATS)
        raise DataError(f"{path}: unknown file format (expected one of {known}, optionally .gz)")
    return fmt


def label_string(value: object) -> str:
    """One spelling per label, whichever format it came from: 1, 1.0 and "1" are all "1"."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def read_rows(
    path: str | Path,
    text_column: str = "text",
    label_column: str | None = "label",
    on_bad_rows: str = "error",
    require_labels: bool = True,
) -> Rows:
    """Read ``path`` into texts, string labels and line numbers.

    A bad row (malformed JSON, wrong field count, missing or empty text, missing label, undecodable
    bytes) raises ``DataError`` naming the file and line, or is skipped and counted when
    ``on_bad_rows="skip"``. A file without the label column is an error when ``require_labels``,
    otherwise its rows come back unlabelled. ``label_column=None`` ignores labels altogether.
    """
    chunks = list(iter_rows(path, text_column, label_column, on_bad_rows, require_labels, chunk_size=None))
    return chunks[0]


def iter_rows(
    path: str | Path,
    text_column: str = "text",
    label_column: str | None = "label",
    on_bad_rows: str = "error",
    require_labels: bool = True,
    chunk_size: int | None = 2048,
) -> Iterator[Rows]:
    """``read_rows`` in pieces of at most ``chunk_size`` rows, reading the file as it goes (CSV, TSV,
    JSON Lines and text; JSON and Parquet are read whole), so that memory does not grow with the file.
    Each piece's ``skipped`` counts the bad rows skipped since the previous one."""
    path = Path(path)
    if on_bad_rows not in BAD_ROW_POLICIES:
        raise DataError(f"on_bad_rows must be one of {', '.join(BAD_ROW_POLICIES)}, not {on_bad_rows!r}")
    with open_records(path, [text_column, label_column], text_column) as (records, columns, unit):
        stream = _RowStream(path, records, columns, unit, text_column, label_column, on_bad_rows, require_labels)
        yield from _chunks(stream, chunk_size)


def rows_from_records(path, records, columns, unit, text_column, label_column, on_bad_rows, require_labels) -> Rows:
    """Validate records already in memory (a Hub split) into Rows, as ``read_rows`` does a file's."""
    stream = _RowStream(Path(path), iter(records), columns, unit, text_column, label_column, on_bad_rows, require_labels)
    return next(_chunks(stream, None))


def _chunks(stream: _RowStream, chunk_size: int | None) -> Iterator[Rows]:
    """The stream's rows as Rows of at most ``chunk_size`` (None: all in one)."""
    chunk = stream.new_chunk()
    for line, text, label in stream:
        chunk.texts.append(text)
        chunk.lines.append(line)
        if chunk.labels is not None:
            chunk.labels.append(label)
        if chunk_size is not None and len(chunk.texts) == chunk_size:
            chunk.skipped, stream.skipped = stream.skipped, 0
            yield chunk
            chunk = stream.new_chunk()
    if stream.rows == 0:
        raise DataError(f"{stream.path}: no rows left after skipping {stream.skipped} bad rows")
    if chunk.texts:
        chunk.skipped = stream.skipped
        yield chunk


def read_records(
    path: str | Path, wanted: list[str | None], text_column: str = "text"
) -> tuple[list[Record], list[str] | None, str]:
    """Parse ``path`` into (records, columns or None when the format has no header, unit of ``line``)."""
    with open_records(path, wanted, text_column) as (records, columns, unit):
        return list(records), columns, unit


@contextmanager
def open_records(path: str | Path, wanted: list[str | None], text_column: str = "text"):
    """(records, columns or None when the format has no header, unit of ``line``) of ``path``, with the
    records read lazily while the file is open.

    ``wanted`` are the columns a Parquet file is asked for; a plain text file gives each line as
    ``text_column``. Problems with the whole file raise ``DataError``; problems with one row come back
    in its record.
    """
    path = Path(path)
    fmt = file_format(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a file")
    if fmt == "parquet":
        records, columns = guard_file(path, lambda: _parquet_records(path, wanted))
        yield iter(records), columns, "row"
        return
    with guard_file(path, lambda: open_binary(path)) as raw:
        lines = _decoded_lines(raw)
        columns, unit = None, "line"
        if fmt in ("csv", "tsv"):
            columns, records = guard_file(path, lambda: _csv_records(lines, fmt))
        elif fmt == "jsonl":
            records = _jsonl_records(lines)
        elif fmt == "json":
            records, unit = iter(guard_file(path, lambda: _json_records(lines))), "row"
        else:
            records = _text_records(lines, text_column)
        yield guarded_lines(path, records), columns, unit


def guard_file(path: Path, action):
    """Run ``action``, turning the errors of reading a file into a one-line ``DataError``."""
    try:
        return action()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except PermissionError:
        raise DataError(f"{path}: permission denied") from None
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError; a cut-off gzip ends in EOFError
        raise DataError(f"{path}: cannot read ({err})") from None
    except _FileError as err:
        raise DataError(f"{path}: {err}") from None


def guarded_lines(path: Path, records: Iterator) -> Iterator:
    """``records``, with the errors of reading them from ``path`` turned into a one-line ``DataError``."""
    while True:
        record = guard_file(path, lambda: next(records, None))
        if record is None:
            return
        yield record


class _FileError(Exception):
    """A problem with the whole file rather than one row."""


# A record is (line, fields, problem): fields is a dict of column -> value, or None when the row
# could not be parsed, in which case problem says why.
Record = tuple[int, dict | None, str | None]


class _RowStream:
    """Validated rows of one file, (line, text, label or None): columns once for the whole file (a file
    has a column or it does not), then each row under the bad-row policy."""

    def __init__(self, path, records, columns, unit, text_column, label_column, on_bad_rows, require_labels):
        self.path, self.unit, self.skipped, self.rows = path, unit, 0, 0
        self.text_column, self.label_column, self.on_bad_rows = text_column, label_column, on_bad_rows
        first = next(records, None)
        if first is None:
            raise DataError(f"{path}: no rows")
        self.records = itertools.chain([first], records)
        if columns is None:  # formats without a header: the first readable row says which columns there are
            peeked = [first]
            while peeked[-1][1] is None:
                following = next(records, None)
                if following is None:
                    break
                peeked.append(following)
            self.records = itertools.chain(peeked, records)
            columns = next((list(fields) for _, fields, _ in peeked if fields is not None), None)
        self.has_labels = label_column is not None and (columns is None or label_column in columns)
        for column, needed in ((text_column, True), (label_column, label_column is not None and require_labels)):
            if needed and columns is not None and column not in columns:
                raise DataError(f"{path}: no column {column!r} (columns: {', '.join(columns) or 'none'})")

    def new_chunk(self) -> Rows:
        return Rows(self.path, labels=[] if self.has_labels else None, unit=self.unit)

    def __iter__(self) -> Iterator[tuple[int, str, str | None]]:
        label_column = self.label_column if self.has_labels else None
        for line, fields, problem in self.records:
            if problem is None:
                problem = _row_problem(fields, self.text_column, label_column)
            if problem is not None:
                if self.on_bad_rows == "error":
                    raise DataError(f"{self.path}, {self.unit} {line}: {problem}")
                self.skipped += 1
                continue
            self.rows += 1
            yield line, fields[self.text_column], label_string(fields[label_column]) if label_column else None


def _row_problem(fields: dict, text_column: str, label_column: str | None) -> str | None:
    text = fields.get(text_column)
    if text is None:
        return f"missing {text_column!r}"
    if not isinstance(text, str):
        return f"{text_column!r} is not a string (found {type(text).__name__})"
    if not text.strip():
        return "empty text"
    if label_column is not None and fields.get(label_column) in (None, ""):
        return f"missing label {label_column!r}"
    return None


def open_binary(path: Path):
    """``path`` opened for reading bytes, through gzip when its first bytes say it is gzip-compressed."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")
    if path.suffix.lower() == ".gz":
        raise _FileError("named .gz but not gzip-compressed")
    return open(path, "rb")


def _decoded_lines(raw: io.BufferedIOBase) -> Iterator[tuple[int, str, str | None]]:
    """(line number, text, problem) for each line; undecodable bytes become a problem, not a crash."""
    for number, data in enumerate(raw, start=1):
        if number == 1 and data.startswith(codecs.BOM_UTF8):
            data = data[len(codecs.BOM_UTF8) :]
        try:
            yield number, data.decode("utf-8"), None
        except UnicodeDecodeError as err:
            yield number, data.decode("utf-8", "replace"), utf8_problem(data, err)


def utf8_problem(data: bytes, err: UnicodeDecodeError) -> str:
    """What is wrong with a line of bytes that is not UTF-8, in the words every reader uses."""
    return f"invalid UTF-8 (byte 0x{data[err.start : err.start + 1].hex()} at column {err.start + 1})"


def _csv_records(lines: Iterable[tuple[int, str, str | None]], fmt: str) -> tuple[list[str], Iterator[Record]]:
    """(header, records, read as they are asked for)."""
    problems: dict[int, str] = {}

    def text_lines():
        for number, text, problem in lines:
            if problem is not None:
                problems[number] = problem
            yield text

    if fmt == "tsv":  # TSV files rarely quote, and their texts often hold quote characters
        reader = csv.reader(text_lines(), delimiter="\t", quoting=csv.QUOTE_NONE)
    else:
        reader = csv.reader(text_lines())
    try:
        header = next(reader)
    except StopIteration:
        return [], iter(())
    if 1 in problems:
        raise _FileError(f"line 1: {problems[1]}")
    return header, _csv_rows(reader, header, problems)


def _csv_rows(reader, header: list[str], problems: dict[int, str]) -> Iterator[Record]:
    end = reader.line_num
    for row in reader:
        start, end = end + 1, reader.line_num
        problem = next((problems[n] for n in range(start, end + 1) if n in problems), None)
        if problem is None and not row:
            continue  # a blank line
        if problem is None and len(row) != len(header):
            problem = f"expected {len(header)} fields, found {len(row)}"
        yield start, (dict(zip(header, row)) if problem is None else None), problem


def _jsonl_records(lines: Iterable[tuple[int, str, str | None]]) -> Iterator[Record]:
    for number, text, problem in lines:
        if problem is None and not text.strip():
            continue
        if problem is None:
            try:
                fields = json.loads(text.rstrip("\r\n"))
            except json.JSONDecodeError as err:
                problem = _json_problem(err)
            else:
                if isinstance(fields, dict):
                    yield number, fields, None
                    continue
                problem = f"expected a JSON object, found {type(fields).__name__}"
        yield number, None, problem


def _json_records(lines: Iterable[tuple[int, str, str | None]]) -> list[Record]:
    """A JSON array of objects, or an object of equal-length columns."""
    parts = []
    for number, text, problem in lines:
        if problem is not None:
            raise _FileError(f"line {number}: {problem}")
        parts.append(text)
    try:
        data = json.loads("".join(parts))
    except json.JSONDecodeError as err:
        raise _FileError(f"line {err.lineno}: {_json_problem(err)}") from None
    if isinstance(data, dict) and data and all(isinstance(v, list) for v in data.values()):
        columns = list(data)
        n = len(data[columns[0]])
        if any(len(data[c]) != n for c in columns):
            raise _FileError("columns of a JSON object must all have the same length")
        data = [{c: data[c][i] for c in columns} for i in range(n)]
    if not isinstance(data, list):
        raise _FileError("expected a JSON array of objects or an object of columns")
    return [
        (i, row, None) if isinstance(row, dict) else (i, None, f"expected a JSON object, found {type(row).__name__}")
        for i, row in enumerate(data, start=1)
    ]


def _json_problem(err: json.JSONDecodeError) -> str:
    return f"malformed JSON at column {err.colno} ({err.msg.removesuffix(' at').lower()})"


def _text_records(lines: Iterable[tuple[int, str, str | None]], text_column: str) -> Iterator[Record]:
    """One text a line, without labels; blank lines are skipped."""
    for number, text, problem in lines:
        text = text.rstrip("\r\n")
        if problem is None and not text.strip():
            continue
        yield number, ({text_column: text} if problem is None else None), problem


def _parquet_records(path: Path, columns: list[str | None]) -> tuple[list[Record], list[str]]:
    import pyarrow.parquet as pq  # pyarrow comes with datasets

    try:
        schema = pq.read_schema(path)
        wanted = [c for c in columns if c is not None and c in schema.names]
        table = pq.read_table(path, columns=wanted)
    except Exception as err:  # pyarrow raises ArrowInvalid and friends, with no common user-facing base
        raise _FileError(f"not a valid Parquet file ({err})") from None
    data = table.to_pydict()
    return [(i + 1, {c: data[c][i] for c in wanted}, None) for i in range(table.num_rows)], schema.names
