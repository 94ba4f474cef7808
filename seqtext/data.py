"""Datasets: find one by name, path or Hub id, read its splits, map labels to ids, hold out validation.

``load_splits("sst2")`` gives every split of a labelled dataset as a ``datasets.Dataset`` with columns
``text``, ``label`` (a ``ClassLabel`` whose names are the label map) and ``line`` (where the row came
from, for error messages). ``load_corpus("tinyshakespeare")`` gives a language-modelling corpus as one
string. Named datasets come from ``--data-dir`` or ``$SEQTEXT_DATA`` (one sub-folder each, as in
``../shared/data``); without either they come from the Hugging Face Hub.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import datasets

from seqtext.errors import DataError
from seqtext.labels import LabelMap  # noqa: F401 (seqtext.data.LabelMap, as before)
from seqtext.readers import (
    FORMATS,
    Rows,
    file_format,
    guard_file,
    guarded_lines,
    open_binary,
    read_rows,
    rows_from_records,
    utf8_problem,
)

DATA_ENV = "SEQTEXT_DATA"
IN_MEMORY = "in-memory data"  # the dataset a recipe records when its data was passed in memory


@dataclass(frozen=True)
class NamedDataset:
    """Where a named dataset lives on the Hub, and what its columns are called there."""

    hub_id: str
    text_column: str
    label_column: str | None = None
    label_names: tuple[str, ...] = ()  # the Hub's integer labels, in order
    hub_splits: dict[str, str] = field(default_factory=dict)  # our split name -> the Hub's
    corpus_file: str | None = None  # for language-modelling corpora: the one file in the local folder


NAMED_DATASETS = {
    "sst2": NamedDataset("stanfordnlp/sst2", "sentence", "label", ("negative", "positive")),
    "imdb": NamedDataset("stanfordnlp/imdb", "text", "label", ("negative", "positive"), {"unsup": "unsupervised"}),
    "trec": NamedDataset("CogComp/trec", "text", "coarse_label", ("ABBR", "ENTY", "DESC", "HUM", "LOC", "NUM")),
    "tinyshakespeare": NamedDataset("karpathy/tiny_shakespeare", "text", corpus_file="input.txt"),
}
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


@dataclass
class TextData:
    """The splits of a labelled dataset, its label map, and where it came from."""

    splits: dict[str, datasets.Dataset]
    label_map: LabelMap
    source: str
    skipped: dict[str, int] = field(default_factory=dict)  # bad rows skipped, per split


def data_dir(explicit: str | Path | None = None) -> Path | None:
    """The data directory: the explicit setting, else ``$SEQTEXT_DATA``, else None (use the Hub)."""
    value = explicit or os.environ.get(DATA_ENV)
    return Path(value) if value else None


def data_root(recipe) -> str | None:
    """The data directory a recipe's named dataset is read from (its own, else $SEQTEXT_DATA), as an
    absolute path, or None when the dataset is not a named one or comes from the Hub."""
    root = data_dir(recipe.data.data_dir)
    if root is None or str(recipe.data.dataset) not in NAMED_DATASETS:
        return None
    return str(root.resolve())


def read_source(
    source: str | Path,
    *,
    data_directory: str | Path | None = None,
    text_column: str = "text",
    label_column: str | None = "label",
    on_bad_rows: str = "error",
    only: tuple[str, ...] | None = None,
) -> tuple[dict[str, Rows], str]:
    """Read every split of ``source`` (or ``only`` those, in a folder) as raw rows; returns (rows per split,
    a description of the source).

    ``source`` is a named dataset, a file (which becomes the ``train`` split), a folder of split files
    named ``<split>.<format>[.gz]``, a Hub dataset id, or data in memory (see ``read_memory``).
    """
    if not isinstance(source, (str, Path)):
        return read_memory(source, text_column, label_column, on_bad_rows), IN_MEMORY
    source = str(source)
    if source == IN_MEMORY:
        raise DataError("this model was trained on data in memory, which was not saved: pass the data again", "data")
    named = NAMED_DATASETS.get(source)
    if named is not None:
        root = data_dir(data_directory)
        if root is None:
            return _read_hub(named.hub_id, named, on_bad_rows), f"{source} (Hub: {named.hub_id})"
        folder = root / source
        if not folder.is_dir():
            raise DataError(f"{folder}: no such folder (dataset {source!r} in data directory {root})")
        return _read_folder(folder, text_column, label_column, on_bad_rows, only), f"{source} ({folder})"
    path = Path(source).expanduser()
    if path.is_dir():
        return _read_folder(path, text_column, label_column, on_bad_rows, only), str(path)
    if path.exists() or path.suffix.lower() in (*FORMATS, ".gz"):
        rows = read_rows(path, text_column, label_column, on_bad_rows)
        return {"train": rows}, str(path)
    if looks_like_path(source):  # not a Hub id: say so at once, not after the Hub's retries
        raise DataError(f"{source}: no such file or folder", "data")
    if _HUB_ID.match(source) and not _offline():
        spec = NamedDataset(source, text_column, label_column)
        return _read_hub(source, spec, on_bad_rows), f"{source} (Hub)"
    known = ", ".join(NAMED_DATASETS)
    hub = " (the Hub is offline: HF_HUB_OFFLINE is set)" if _HUB_ID.match(source) else ""
    raise DataError(f"unknown dataset {source!r}: not a file or folder, nor one of {known}{hub}")


def looks_like_path(source: str) -> bool:
    """Whether a dataset name that is not a named dataset is meant as a file or folder, not a Hub id
    (``owner/name``): it starts with ``/``, ``.`` or ``~``, has more than one ``/``, a backslash or a file
    suffix, or its first part is a folder here."""
    if source in NAMED_DATASETS:
        return False
    first = source.split("/", 1)[0]
    return (
        source.startswith(("/", ".", "~"))
        or source.count("/") > 1
        or "\\" in source
        or Path(source).suffix.lower() in (*FORMATS, ".gz", ".txt")
        or ("/" in source and Path(first).is_dir())
    )


def read_memory(data, text_column: str = "text", label_column: str | None = "label", on_bad_rows: str = "error") -> dict:
    """Splits held in Python, as rows: ``{"train": {"text": [...], "label": [...]}, "test": ...}`` (a split
    may also be a list of row dicts or a pandas DataFrame), a ``datasets.DatasetDict``, one ``Dataset`` (the
    train split), or one DataFrame: the train split, or every split when it has a ``split`` column."""
    if isinstance(data, datasets.Dataset):
        data = {"train": data}
    if is_dataframe(data):
        data = _dataframe_splits(data)
    if not isinstance(data, (dict, datasets.DatasetDict)) or not data:
        raise DataError(
            f"data must be a dict of splits (e.g. {{'train': {{'text': [...], 'label': [...]}}}}), not {type(data).__name__}"
        )
    return {str(split): _memory_split(str(split), table, text_column, label_column, on_bad_rows) for split, table in data.items()}


def is_dataframe(data) -> bool:
    return type(data).__name__ == "DataFrame" and type(data).__module__.startswith("pandas")


def _dataframe_splits(frame) -> dict:
    """One DataFrame: the train split, or one split per value of its ``split`` column."""
    if "split" not in frame.columns:
        return {"train": frame}
    names = frame["split"]
    if names.isna().any():
        raise DataError(f"data: the split column is empty on row {int(names.isna().to_numpy().argmax()) + 1}", "split")
    return {str(name): part.drop(columns="split") for name, part in frame.groupby("split", sort=False)}


def _memory_split(split: str, table, text_column: str, label_column: str | None, on_bad_rows: str) -> Rows:
    if is_dataframe(table):
        table = table.to_dict(orient="list")
    if isinstance(table, datasets.Dataset):
        labels = table.features.get(label_column) if label_column else None
        table = table.to_dict()
        if isinstance(labels, datasets.ClassLabel):  # the names, as the Hub's integer labels become
            table[label_column] = [labels.int2str(x) if isinstance(x, int) and x >= 0 else None for x in table[label_column]]
    if isinstance(table, dict):
        columns = list(table)
        lengths = {len(values) for values in table.values() if isinstance(values, (list, tuple))}
        if len(lengths) != 1 or not all(isinstance(values, (list, tuple)) for values in table.values()):
            raise DataError(f"data[{split!r}]: every column must be a list, all of one length")
        records = [(i + 1, {c: table[c][i] for c in columns}, None) for i in range(lengths.pop())]
    elif isinstance(table, (list, tuple)) and all(isinstance(row, dict) for row in table):
        columns = None
        records = [(i + 1, dict(row), None) for i, row in enumerate(table)]
    else:
        raise DataError(f"data[{split!r}]: a split is a dict of columns or a list of row dicts, not {type(table).__name__}")
    path = Path(f"data[{split!r}]")
    return rows_from_records(path, records, columns, "row", text_column, label_column, on_bad_rows, split == "train")


def load_splits(
    source: str | Path,
    *,
    data_directory: str | Path | None = None,
    text_column: str = "text",
    label_column: str = "label",
    on_bad_rows: str = "error",
    validation_fraction: float = 0.1,
    seed: int = 0,
    label_map: LabelMap | None = None,
    label_names: list[str] | None = None,
) -> TextData:
    """Load a labelled dataset: every split encoded with one label map, and a validation split.

    The label map is ``label_map`` when given (a trained model's), else ``label_names`` for data labelled
    0, 1, 2, ... (or by those names), else built from the training split.
    A dataset without a validation split gets one carved from train: ``validation_fraction`` of it,
    stratified by label and seeded, so it never overlaps train or test.
    """
    raw, description = read_source(
        source,
        data_directory=data_directory,
        text_column=text_column,
        label_column=label_column,
        on_bad_rows=on_bad_rows,
    )
    if label_map is None and label_names:
        label_map = LabelMap(tuple(label_names), numbered=True)
    if label_map is None:
        if "train" not in raw:
            raise DataError(f"{description}: no train split to build the label map from (splits: {', '.join(raw)})")
        label_map = LabelMap.from_labels(raw["train"].labels)
    data = TextData({}, label_map, description)
    for split, rows in raw.items():
        data.splits[split], skipped = encode_labels(rows, label_map, on_bad_rows)
        data.skipped[split] = rows.skipped + skipped
    if "validation" not in data.splits and "train" in data.splits:
        data.splits["train"], data.splits["validation"] = hold_out(data.splits["train"], validation_fraction, seed)
    data.splits = dict(sorted(data.splits.items(), key=lambda item: _split_order(item[0])))
    return data


def _split_order(split: str) -> tuple[int, str]:
    known = ("train", "validation", "test")
    return (known.index(split), "") if split in known else (len(known), split)


def encode_labels(rows: Rows, label_map: LabelMap, on_bad_rows: str = "error") -> tuple[datasets.Dataset, int]:
    """Rows as a Dataset with integer labels; returns it and the number of rows skipped for unknown labels."""
    if rows.labels is None:
        features = datasets.Features({"text": datasets.Value("string"), "line": datasets.Value("int64")})
        return datasets.Dataset.from_dict({"text": rows.texts, "line": rows.lines}, features=features), 0
    keep, ids = [], []
    for i, (label, line) in enumerate(zip(rows.labels, rows.lines)):
        if label in label_map:
            keep.append(i)
            ids.append(label_map.id(label))
        elif on_bad_rows == "error":
            known = ", ".join(label_map.names)
            raise DataError(f"{rows.path}, {rows.unit} {line}: unknown label {label!r} (the model knows: {known})")
    features = datasets.Features(
        {
            "text": datasets.Value("string"),
            "label": datasets.ClassLabel(names=list(label_map.names)),
            "line": datasets.Value("int64"),
        }
    )
    columns = {"text": [rows.texts[i] for i in keep], "label": ids, "line": [rows.lines[i] for i in keep]}
    return datasets.Dataset.from_dict(columns, features=features), len(rows.labels) - len(keep)


def hold_out(train: datasets.Dataset, fraction: float, seed: int) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Split ``train`` into (train, validation), stratified by label and seeded."""
    if not 0.0 < fraction < 1.0:
        raise DataError(f"validation_fraction must be between 0 and 1, not {fraction}")
    counts = Counter(train["label"])
    rare = [train.features["label"].names[i] for i, n in counts.items() if n < 2]
    if rare:
        raise DataError(
            f"cannot hold out a stratified validation split: label {rare[0]!r} has one example; give a validation file"
        )
    try:
        parts = train.train_test_split(test_size=fraction, stratify_by_column="label", seed=seed)
    except ValueError as err:  # too few examples for the fraction and the number of labels
        raise DataError(
            f"cannot hold out {fraction:g} of {len(train):,} training examples as a stratified validation split "
            f"({err}); give a validation file or another validation_fraction"
        ) from None
    return parts["train"], parts["test"]


def load_corpus(source: str | Path, *, data_directory: str | Path | None = None, text_column: str = "text") -> tuple[str, str]:
    """A language-modelling corpus as one string; returns (text, a description of the source).

    A plain-text file is read whole; a named corpus from its folder; any other dataset gives the texts of
    its training split joined by newlines (data in memory too).
    """
    in_memory = not isinstance(source, (str, Path))
    named = None if in_memory else NAMED_DATASETS.get(str(source))
    root = data_dir(data_directory)
    if named is not None and named.corpus_file is not None and root is not None:
        path = root / str(source) / named.corpus_file
        return read_text_file(path), f"{source} ({path})"
    path = None if in_memory else Path(source)
    if path is not None and path.is_file() and file_format(path) == "text":
        return read_text_file(path), str(path)
    raw, description = read_source(source, data_directory=data_directory, text_column=text_column, label_column=None)
    if "train" not in raw:
        raise DataError(f"{description}: no train split to read a corpus from (splits: {', '.join(raw)})")
    return "\n".join(raw["train"].texts), description


def load_documents(
    source, splits: tuple[str, ...], *, data_directory: str | Path | None = None, text_column: str = "text"
) -> tuple[list[str], str]:
    """The texts of ``splits`` of a dataset, in that order, each a document of a language-modelling corpus;
    no other split is read (IMDB's test reviews stay unread when the corpus is train and unsup)."""
    only = None if not isinstance(source, (str, Path)) else splits
    raw, description = read_source(source, data_directory=data_directory, text_column=text_column, label_column=None, only=only)
    missing = [split for split in splits if split not in raw]
    if missing:
        raise DataError(f"{description}: no split {missing[0]!r} (splits: {', '.join(raw)})", "data.corpus_splits")
    documents = [text for split in splits for text in raw[split].texts]
    return documents, f"{description}, {' + '.join(splits)} ({len(documents):,} documents)"


def read_text_file(path: str | Path) -> str:
    """The whole of a UTF-8 text file, gzipped or not; undecodable bytes name their line."""
    return "".join(_text_file_lines(path))


def iter_text_lines(path: str | Path, keep_blank: bool = False) -> Iterator[str]:
    """The non-blank lines (every line with ``keep_blank``) of a UTF-8 text file (gzipped or not), read as
    they are asked for, without their line breaks; undecodable bytes name their line."""
    for line in _text_file_lines(path):
        text = line.rstrip("\r\n")
        if keep_blank or text.strip():
            yield text


def _text_file_lines(path: str | Path) -> Iterator[str]:
    path = Path(path)
    with guard_file(path, lambda: open_binary(path)) as raw:
        for number, data in enumerate(guarded_lines(path, iter(raw)), start=1):
            try:
                yield data.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{path}, line {number}: {utf8_problem(data, err)}") from None


def split_corpus(text: str, train_fraction: float = 0.9) -> tuple[str, str]:
    """(first ``train_fraction`` of the characters, the rest): the split published LM figures use."""
    if not 0.0 < train_fraction < 1.0:
        raise DataError(f"train_fraction must be between 0 and 1, not {train_fraction}")
    cut = int(len(text) * train_fraction)
    return text[:cut], text[cut:]


def split_file(source: str | Path, split: str, data_directory: str | Path | None = None) -> tuple[Path, str] | tuple[None, None]:
    """(the file holding ``split`` of a local dataset, a description), or (None, None) when the split has
    no file of its own: a Hub dataset, or a validation split held out from train."""
    named = NAMED_DATASETS.get(str(source))
    root = data_dir(data_directory)
    if named is not None and root is not None:
        folder, description = root / str(source), f"{source} ({root / str(source)})"
    elif Path(source).is_dir():
        folder, description = Path(source), str(source)
    else:
        return None, None
    if not folder.is_dir():
        return None, None
    path = split_files(folder).get(split)
    return (path, description) if path is not None else (None, None)


def split_files(folder: Path) -> dict[str, Path]:
    """Split name -> file, for the files named ``<split>.<format>[.gz]`` in ``folder``."""
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        try:
            file_format(path)
        except DataError:
            continue  # READMEs, checksums and the like
        split = path.name.split(".")[0]
        if split in files:
            raise DataError(f"{folder}: two files for split {split!r}: {files[split].name} and {path.name}")
        files[split] = path
    return files


def _read_folder(
    folder: Path, text_column: str, label_column: str | None, on_bad_rows: str, only: tuple[str, ...] | None = None
) -> dict[str, Rows]:
    files = split_files(folder)
    if not files:
        raise DataError(f"{folder}: no split files (expected names like train.jsonl, validation.csv, test.tsv.gz)")
    if only is not None:  # the other splits' files are never opened
        missing = [split for split in only if split not in files]
        if missing:
            raise DataError(f"{folder}: no split {missing[0]!r} (splits: {', '.join(files)})", "data.corpus_splits")
        files = {split: files[split] for split in only}
    # Only train must be labelled; another split without a label column (IMDB's unsup) is read as unlabelled.
    return {
        split: read_rows(path, text_column, label_column, on_bad_rows, require_labels=split == "train")
        for split, path in files.items()
    }


def _offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on") for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def _read_hub(hub_id: str, spec: NamedDataset, on_bad_rows: str) -> dict[str, Rows]:
    """Every split of a Hub dataset as rows; integer labels become the registry's names."""
    if _offline():
        raise DataError(f"{hub_id}: cannot load from the Hub while HF_HUB_OFFLINE is set (give --data-dir or ${DATA_ENV})")
    try:
        loaded = datasets.load_dataset(hub_id)
    except Exception as err:  # network, authentication and format errors share no base class
        raise DataError(f"{hub_id}: cannot load from the Hugging Face Hub ({str(err).splitlines()[0]})") from None
    hub_to_ours = {hub: ours for ours, hub in spec.hub_splits.items()}
    raw = {}
    for hub_split, table in loaded.items():
        if spec.text_column not in table.column_names:
            raise DataError(f"{hub_id}: no column {spec.text_column!r} (columns: {', '.join(table.column_names)})")
        texts = table[spec.text_column]
        labels = table[spec.label_column] if spec.label_column in table.column_names else None
        if labels is not None and spec.label_names:
            names = spec.label_names  # the Hub marks unlabelled rows -1 (SST-2's test split)
            labels = [names[x] if isinstance(x, int) and 0 <= x < len(names) else None for x in labels]
        if labels is not None and all(x is None for x in labels):
            labels = None
        fields = {"text": texts} if labels is None else {"text": texts, "label": labels}
        records = [(i + 1, {k: v[i] for k, v in fields.items()}, None) for i in range(len(texts))]
        split = hub_to_ours.get(hub_split, hub_split)
        raw[split] = rows_from_records(
            Path(f"{hub_id}:{hub_split}"), records, list(fields), "row", "text", "label", on_bad_rows, split == "train"
        )
    return raw
