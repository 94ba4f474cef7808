import gzip
import json
import math
from collections import Counter

import pytest

from seqtext.data import LabelMap, encode_labels, load_corpus, load_splits, read_source, read_text_file, split_corpus
from seqtext.errors import DataError
from seqtext.readers import read_rows


@pytest.fixture(scope="module")
def trec(data_dir):
    return load_splits("trec", data_directory=data_dir, seed=0)


def test_sst2_has_its_published_splits(data_dir):
    data = load_splits("sst2", data_directory=data_dir)
    assert {split: len(table) for split, table in data.splits.items()} == {"train": 67349, "validation": 872, "test": 1821}
    assert data.label_map.names == ("negative", "positive")
    assert data.splits["train"].features["label"].names == ["negative", "positive"]


@pytest.mark.slow
def test_imdb_keeps_its_unlabelled_split(data_dir):
    data = load_splits("imdb", data_directory=data_dir)
    assert len(data.splits["unsup"]) == 50000 and "label" not in data.splits["unsup"].column_names
    assert len(data.splits["test"]) == 25000
    assert len(data.splits["train"]) + len(data.splits["validation"]) == 25000


def test_validation_is_a_stratified_seeded_hold_out_of_train(trec):
    train, validation, test = (trec.splits[s] for s in ("train", "validation", "test"))
    assert len(validation) == math.ceil(0.1 * 5452) and len(train) + len(validation) == 5452 and len(test) == 500
    train_lines, validation_lines = set(train["line"]), set(validation["line"])
    assert not train_lines & validation_lines
    assert train_lines | validation_lines == set(range(1, 5453))  # every training row, once
    everything = Counter(train["label"]) + Counter(validation["label"])
    for label, n in Counter(validation["label"]).items():
        assert abs(n - 0.1 * everything[label]) <= 1, trec.label_map.names[label]


def test_the_hold_out_depends_on_the_seed_only(data_dir, trec):
    again = load_splits("trec", data_directory=data_dir, seed=0)
    other = load_splits("trec", data_directory=data_dir, seed=1)
    assert again.splits["validation"]["line"] == trec.splits["validation"]["line"]
    assert other.splits["validation"]["line"] != trec.splits["validation"]["line"]


def test_test_split_is_read_apart_from_train(trec, data_dir):
    with gzip.open(data_dir / "trec" / "test.jsonl.gz", "rt") as f:
        expected = [json.loads(line)["text"] for line in f]
    assert trec.splits["test"]["text"] == expected


def test_label_map_round_trip(tmp_path, trec):
    path = tmp_path / "labels.json"
    trec.label_map.save(path)
    loaded = LabelMap.load(path)
    assert loaded == trec.label_map and loaded.names == ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
    assert [loaded.id(name) for name in loaded.names] == list(range(6))


def test_integer_labels_sort_as_numbers():
    assert LabelMap.from_labels(["10", "2", "1", "2"]).names == ("1", "2", "10")
    assert LabelMap.from_labels(["pos", "neg"]).names == ("neg", "pos")


def test_a_broken_label_file_is_an_error(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text('{"names": [1, 2]}')
    with pytest.raises(DataError, match="labels.json: 'names' must be a list of strings"):
        LabelMap.load(path)


def test_an_evaluation_file_with_an_unknown_label_names_it_and_its_line(tmp_path, trec):
    path = tmp_path / "eval.jsonl"
    path.write_text('{"text": "Who wrote Hamlet ?", "label": "HUM"}\n{"text": "What is a dog ?", "label": "ANIMAL"}\n')
    rows = read_rows(path)
    with pytest.raises(DataError, match=r"eval.jsonl, line 2: unknown label 'ANIMAL' \(the model knows: ABBR, DESC"):
        encode_labels(rows, trec.label_map)
    table, skipped = encode_labels(rows, trec.label_map, on_bad_rows="skip")
    assert skipped == 1 and table["label"] == [trec.label_map.id("HUM")] and table["line"] == [1]


def test_a_folder_of_split_files(tmp_path, data_dir):
    with gzip.open(data_dir / "sst2" / "train.jsonl.gz", "rt") as f:
        rows = [json.loads(next(f)) for _ in range(200)]
    (tmp_path / "train.csv").write_text("sentence,sentiment\n" + "".join(f'"{r["text"]}",{r["label"]}\n' for r in rows[:150]))
    with gzip.open(tmp_path / "test.tsv.gz", "wt") as f:
        f.write("sentence\tsentiment\n" + "".join(f"{r['text']}\t{r['label']}\n" for r in rows[150:]))
    (tmp_path / "README.md").write_text("not a split")
    data = load_splits(tmp_path, text_column="sentence", label_column="sentiment")
    assert {s: len(t) for s, t in data.splits.items()} == {"train": 135, "validation": 15, "test": 50}
    assert data.splits["test"]["text"] == [r["text"] for r in rows[150:]]


def test_two_files_for_one_split_is_an_error(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\na,b\n")
    (tmp_path / "train.jsonl").write_text('{"text": "a", "label": "b"}\n')
    with pytest.raises(DataError, match="two files for split 'train'"):
        read_source(tmp_path)


def test_named_datasets_come_from_the_data_directory(tmp_path, monkeypatch, data_dir):
    monkeypatch.setenv("SEQTEXT_DATA", str(data_dir))
    assert len(read_source("trec")[0]["test"].texts) == 500
    with pytest.raises(DataError, match=f"{tmp_path}/trec: no such folder"):
        read_source("trec", data_directory=tmp_path)


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(
        DataError, match="unknown dataset 'sst3': not a file or folder, nor one of sst2, imdb, trec, tinyshakespeare"
    ):
        read_source("sst3")


def test_hub_ids_are_refused_while_offline():
    with pytest.raises(DataError, match="the Hub is offline"):
        read_source("someone/some-dataset")


def test_named_dataset_without_a_data_directory_goes_to_the_hub(monkeypatch):
    monkeypatch.delenv("SEQTEXT_DATA")
    with pytest.raises(DataError, match="stanfordnlp/sst2: cannot load from the Hub while HF_HUB_OFFLINE is set"):
        read_source("sst2")


def test_tiny_shakespeare_splits_by_position(data_dir):
    text, _ = load_corpus("tinyshakespeare", data_directory=data_dir)
    assert len(text) == 1115394 and len(set(text)) == 65
    train, validation = split_corpus(text, 0.9)
    assert len(train) == 1003854 and train + validation == text


def test_a_labelled_dataset_as_a_corpus_joins_its_train_texts(data_dir):
    text, _ = load_corpus("trec", data_directory=data_dir)
    assert text.count("\n") == 5451


def test_undecodable_text_file_names_the_line(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes(b"first\nsecond \xc3\n")
    with pytest.raises(DataError, match=r"corpus.txt, line 2: invalid UTF-8"):
        read_text_file(path)


def test_hub_datasets_get_the_registry_label_names_and_split_names(monkeypatch, data_dir):
    """The Hub is out of reach here, so stand in for it with real SST-2 rows in the Hub's schema:
    integer labels, a `sentence` column, and a test split marked -1 (unlabelled)."""
    import datasets

    with gzip.open(data_dir / "sst2" / "validation.jsonl.gz", "rt") as f:
        rows = [json.loads(line) for line in f]
    as_hub = {"sentence": [r["text"] for r in rows], "label": [("negative", "positive").index(r["label"]) for r in rows]}
    hub = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(as_hub),
            "unsupervised": datasets.Dataset.from_dict({"sentence": as_hub["sentence"], "label": [-1] * len(rows)}),
        }
    )
    asked = []
    monkeypatch.setattr(datasets, "load_dataset", lambda hub_id: asked.append(hub_id) or hub)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
    monkeypatch.delenv("SEQTEXT_DATA")
    from seqtext.data import NAMED_DATASETS

    monkeypatch.setitem(NAMED_DATASETS["sst2"].hub_splits, "unsup", "unsupervised")
    raw, description = read_source("sst2")
    assert asked == ["stanfordnlp/sst2"] and description == "sst2 (Hub: stanfordnlp/sst2)"
    assert raw["train"].texts == as_hub["sentence"] and raw["train"].labels == [r["label"] for r in rows]
    assert raw["unsup"].labels is None and len(raw["unsup"].texts) == len(rows)


@pytest.mark.parametrize("name", ["./mine", "~/no-such-folder-here", "one/two/three", "{tmp}/missing", "{tmp}/x.tsv.gz"])
def test_a_missing_path_is_no_such_file_and_never_asked_of_the_hub(name, tmp_path, monkeypatch):
    import seqtext.data

    monkeypatch.setattr(seqtext.data, "_offline", lambda: False)
    monkeypatch.setattr(seqtext.data, "_read_hub", lambda *args: pytest.fail("asked the Hub"))
    name = name.format(tmp=tmp_path)
    with pytest.raises(DataError, match=r"no such file") as raised:
        read_source(name)
    assert name.replace("~", "") in str(raised.value) or str(tmp_path) in str(raised.value)
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)  # data/ is a folder here: data/reviews is a path, not the Hub's owner/name
    with pytest.raises(DataError, match=r"^data/reviews: no such file or folder$"):
        read_source("data/reviews")


def test_a_recipes_relative_dataset_is_relative_to_the_recipe(tmp_path, monkeypatch):
    from seqtext.recipe import load_recipe

    (tmp_path / "project" / "data").mkdir(parents=True)
    recipe_path = tmp_path / "project" / "mine.yaml"
    recipe_path.write_text("kind: classifier\ndata:\n  dataset: data/reviews.csv\n")
    monkeypatch.chdir(tmp_path)  # elsewhere: the path still names the file beside the recipe
    assert load_recipe(recipe_path).data.dataset == str(tmp_path / "project" / "data" / "reviews.csv")
    recipe_path.write_text("kind: classifier\ndata:\n  dataset: sst2\n")
    assert load_recipe(recipe_path).data.dataset == "sst2"  # a named dataset is no path
