import csv
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seqtext.errors import DataError
from seqtext.readers import read_rows

# A real row would never test these: quotes, commas, a line break, and texts pandas would turn into NaN.
TRICKY = [{"text": 'he said "NA", then\nnull', "label": "negative"}, {"text": "NA", "label": "positive"}]


@pytest.fixture(scope="module")
def rows(data_dir):
    """The first 120 rows of SST-2's training file, plus the tricky ones."""
    with gzip.open(data_dir / "sst2" / "train.jsonl.gz", "rt", encoding="utf-8") as f:
        real = [json.loads(next(f)) for _ in range(120)]
    return real + TRICKY


def _write(path, rows, fmt, compress):
    opener = gzip.open if compress else open
    with opener(path, "wt", encoding="utf-8", newline="") as f:
        if fmt == "jsonl":
            f.writelines(json.dumps(r) + "\n" for r in rows)
        elif fmt == "json":
            json.dump(rows, f)
        elif fmt == "csv":
            writer = csv.DictWriter(f, ["text", "label"])
            writer.writeheader()
            writer.writerows(rows)
        elif fmt == "tsv":
            f.write("text\tlabel\n")
            f.writelines(f"{r['text']}\t{r['label']}\n" for r in rows)
        elif fmt == "txt":
            f.writelines(r["text"] + "\n" for r in rows)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl", "txt"])
def test_every_text_format_reads_back_exactly(tmp_path, rows, fmt, compress):
    if fmt in ("tsv", "txt"):
        rows = rows[:120]  # these formats cannot hold a line break inside a text
    path = tmp_path / (f"data.{fmt}" + (".gz" if compress else ""))
    _write(path, rows, fmt, compress)
    got = read_rows(path, require_labels=fmt != "txt")
    assert got.texts == [r["text"] for r in rows]
    assert got.labels == (None if fmt == "txt" else [r["label"] for r in rows])


def test_parquet_reads_back_exactly(tmp_path, rows):
    path = tmp_path / "data.parquet"
    pq.write_table(
        pa.table({"text": [r["text"] for r in rows], "label": [r["label"] for r in rows], "extra": list(range(len(rows)))}), path
    )
    got = read_rows(path)
    assert got.texts == [r["text"] for r in rows] and got.labels == [r["label"] for r in rows]
    assert got.lines == list(range(1, len(rows) + 1)) and got.unit == "row"


def test_json_object_of_columns(tmp_path, rows):
    path = tmp_path / "data.json"
    path.write_text(json.dumps({"text": [r["text"] for r in rows], "label": [r["label"] for r in rows]}))
    assert read_rows(path).texts == [r["text"] for r in rows]


def test_line_numbers_follow_the_file(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text('text,label\n"two\nlines",a\n\nthird,b\n')
    assert read_rows(path).lines == [2, 5]  # the blank line 4 is skipped, the quoted break spans 2-3
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "x", "label": 1}\n\n{"text": "y", "label": 0}\n')
    got = read_rows(path)
    assert got.lines == [1, 3] and got.labels == ["1", "0"]


def test_other_column_names_and_a_byte_order_mark(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes("\ufeffreview,stars\ngood film,5\n".encode())
    got = read_rows(path, text_column="review", label_column="stars")
    assert got.texts == ["good film"] and got.labels == ["5"]


BAD = [
    ("data.jsonl", b'{"text": "ok", "label": "a"}\n{"text": "broken", \n', "data.jsonl, line 2: malformed JSON"),
    ("data.jsonl", b'{"text": "ok", "label": "a"}\n["a list"]\n', "data.jsonl, line 2: expected a JSON object, found list"),
    ("data.jsonl", b'{"text": "ok", "label": "a"}\n{"text": "  ", "label": "b"}\n', "data.jsonl, line 2: empty text"),
    ("data.jsonl", b'{"text": "ok", "label": "a"}\n{"text": "no label"}\n', "data.jsonl, line 2: missing label 'label'"),
    ("data.jsonl", b'{"text": "ok", "label": "a"}\n{"text": 7, "label": "b"}\n', "data.jsonl, line 2: 'text' is not a string"),
    (
        "data.jsonl",
        b'{"text": "ok", "label": "a"}\n{"text": "caf\xe9", "label": "b"}\n',
        "data.jsonl, line 2: invalid UTF-8 (byte 0xe9 at column 14)",
    ),
    ("data.csv", b"text,label\nok,a\nthree,fields,here\n", "data.csv, line 3: expected 2 fields, found 3"),
    ("data.csv", b"text,label\nok,a\n\xff\xfe,b\n", "data.csv, line 3: invalid UTF-8 (byte 0xff at column 1)"),
    ("data.csv", b"words,label\nok,a\n", "data.csv: no column 'text' (columns: words, label)"),
    ("data.csv", b"text,stars\nok,5\n", "data.csv: no column 'label' (columns: text, stars)"),
    ("data.csv", b"", "data.csv: no rows"),
    ("data.csv", b"text,label\n\xff,b\n", "data.csv, line 2: invalid UTF-8"),  # the header still names the columns
    ("data.jsonl", b"\xff\n", "data.jsonl, line 1: invalid UTF-8"),  # not "no column 'text'"
    ("data.json", b'[{"text": "a", "label": "x"},\n {"text": "b" "label": "y"}]', "data.json: line 2: malformed JSON"),
    ("data.xml", b"<a/>", "data.xml: unknown file format"),
    ("data.jsonl.gz", b'{"text": "not gzip"}\n', "data.jsonl.gz: named .gz but not gzip-compressed"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD, ids=[m.split(": ", 1)[1][:40] for _, _, m in BAD])
def test_bad_input_names_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as err:
        read_rows(path)
    assert str(err.value).startswith(str(tmp_path / message.split(":")[0].split(",")[0]))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match=r"train\.csv: no such file"):
        read_rows(tmp_path / "train.csv")
    (tmp_path / "x.csv").mkdir()
    with pytest.raises(DataError, match="is a folder"):
        read_rows(tmp_path / "x.csv")


def test_cut_off_gzip_is_an_error(tmp_path, data_dir):
    data = (data_dir / "trec" / "test.jsonl.gz").read_bytes()
    path = tmp_path / "test.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cannot read"):
        read_rows(path)


def test_skip_policy_skips_and_counts(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"text": "a", "label": "x"}\n{"text": \n{"text": "", "label": "x"}\n\xff\n{"text": "b", "label": "y"}\n')
    got = read_rows(path, on_bad_rows="skip")
    assert got.texts == ["a", "b"] and got.lines == [1, 5] and got.skipped == 3


def test_skipping_every_row_is_an_error(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": ""}\n{"text": " "}\n')
    with pytest.raises(DataError, match="no rows left after skipping 2 bad rows"):
        read_rows(path, on_bad_rows="skip", require_labels=False)


def test_unlabelled_file_when_labels_are_optional(tmp_path):
    path = tmp_path / "unsup.jsonl"
    path.write_text('{"text": "a"}\n{"text": "b"}\n')
    got = read_rows(path, require_labels=False)
    assert got.texts == ["a", "b"] and got.labels is None
