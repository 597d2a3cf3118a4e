"""core.datasets: the registry, the split rules, CSV errors, text tokenization, the Keras loaders.

Everything runs for real: sklearn, pandas, TextVectorization and keras.datasets' own load_data. The
only patches stand in for the outside world: the network (so offline behaviour is tested the same on a
machine with internet) and, for the Keras .npz files we fake, the sha256 check of the download.
"""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn.datasets as sklearn_datasets
import sklearn.datasets.data as sklearn_data

from core.config import CsvFormat, DataConfig
from core.data import csv_table, datasets
from core.data.datasets import DatasetError, DatasetUnavailable, describe, infer_task, load, read_csv
from core.data.sources.keras_sets import KERAS_ORIGIN
from core.data.sources.reviews import generate_reviews
from tests.subprocesses import pythonpath
from tests.uploads import upload, upload_path

ROOT = Path(__file__).resolve().parents[2]
OFFLINE_TABULAR = ["digits", "digits_images", "breast_cancer", "wine", "overfit"]


def row_set(*arrays: np.ndarray | None) -> list[set[bytes]]:
    return [{r.tobytes() for r in a} if a is not None else set() for a in arrays]


def run_python(code: str, env: dict[str, str]) -> str:
    full_env = {**os.environ, "PYTHONPATH": pythonpath(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", **env}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


# --------------------------------------------------------------------------------------------
# Registry and cheap description


def test_importing_and_describing_does_not_import_tensorflow():
    names = [n for n in datasets.DATASETS if datasets.upload_suffix(n) is None]  # uploads: their own tests
    out = run_python(
        f"""
        import sys
        from core.data import datasets
        from core.config import CsvFormat, DataConfig
        for name in {names!r}:
            datasets.describe(DataConfig(name=name))
        print(sorted(m for m in ("tensorflow", "keras") if m in sys.modules))
        """,
        {},
    )
    assert out.strip() == "[]"


def test_registry_names_order_and_kinds():
    assert list(datasets.DATASETS) == [
        "digits",
        "digits_images",
        "breast_cancer",
        "wine",
        "diabetes",
        "overfit",
        "text_sentiment",
        "csv",
        "text_csv",
        "npz",
        "npz_images",
        "images",
        "imdb",
        "mnist",
        "fashion_mnist",
    ]
    for name, spec in datasets.DATASETS.items():
        assert spec.name == name and spec.label and spec.description
        assert spec.offline == (spec.source != "keras")
        assert spec.input_kind in ("tabular", "image", "sequence")
        assert (spec.task is None) == (spec.source in ("csv", "npz", "images"))
    assert datasets.DATASETS["csv"].input_kind == "tabular"
    assert datasets.DATASETS["text_csv"].input_kind == "sequence"


@pytest.mark.parametrize(
    "name, task, kind, n_classes, n",
    [
        ("digits", "multiclass", "tabular", 10, 1797),
        ("breast_cancer", "binary", "tabular", 2, 569),
        ("imdb", "binary", "sequence", 2, 50000),
        ("mnist", "multiclass", "image", 10, 70000),
        ("fashion_mnist", "multiclass", "image", 10, 70000),
    ],
)
def test_describe_static(name, task, kind, n_classes, n):
    info = describe(DataConfig(name=name))
    assert (info.task, info.input_kind, info.n_classes, info.n_samples) == (task, kind, n_classes, n)
    assert describe(DataConfig(name=name, max_samples=100)).n_samples == 100


def test_unknown_dataset_and_task_override_on_a_fixed_task():
    with pytest.raises(DatasetError, match="Unknown dataset 'nope'; choose one of digits"):
        describe(DataConfig(name="nope"))
    with pytest.raises(DatasetError, match="Wine is a multiclass task; a task override"):
        load(DataConfig(name="wine", task="regression"), validation_split=0.2, seed=0)


# --------------------------------------------------------------------------------------------
# Built-in and synthetic sets: shapes, splits, scaling, determinism


@pytest.mark.parametrize("name", OFFLINE_TABULAR)
def test_offline_set_loads_with_disjoint_splits_that_add_up(name):
    ds = load(DataConfig(name=name), validation_split=0.25, seed=3)
    info = describe(DataConfig(name=name))
    assert (ds.task, ds.input_kind) == (info.task, info.input_kind)
    n = len(ds.x_train) + len(ds.x_val) + len(ds.x_test)
    assert n == info.n_samples
    assert len(ds.x_test) == pytest.approx(0.2 * n, abs=1)
    assert len(ds.x_val) == pytest.approx(0.25 * (n - len(ds.x_test)), abs=1)
    for x, y in [(ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)]:
        assert x.dtype == np.float32 and x.shape[1:] == ds.input_shape and len(x) == len(y)
        assert y.dtype == (np.int32 if ds.task == "multiclass" else np.float32) and y.ndim == 1
        assert set(np.unique(y)) <= set(range(len(ds.classes)))
    # None of these sets has duplicate rows, so distinct rows mean distinct samples.
    train, val, test = row_set(ds.x_train, ds.x_val, ds.x_test)
    assert len(train) + len(val) + len(test) == n
    assert not (train & val or train & test or val & test)
    assert f"{len(ds.x_train):,} train / {len(ds.x_val):,} val / {len(ds.x_test):,} test" in ds.description


def test_digits_images_shape_and_range():
    ds = load(DataConfig(name="digits_images"), validation_split=0.2, seed=0)
    assert ds.input_shape == (8, 8, 1) and ds.x_train.shape[1:] == (8, 8, 1)
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert ds.classes == [str(i) for i in range(10)]


def test_test_split_comes_first_and_never_depends_on_validation():
    """The test rows are chosen before validation: changing validation_split leaves them alone."""
    a = load(DataConfig(name="digits_images"), validation_split=0.0, seed=5)
    b = load(DataConfig(name="digits_images"), validation_split=0.4, seed=5)
    assert a.x_val is None and a.y_val is None and "val" not in a.description
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert row_set(b.x_val)[0] <= row_set(a.x_train)[0]


def test_scaler_is_fitted_on_the_training_part_only():
    ds = load(DataConfig(name="breast_cancer"), validation_split=0.2, seed=1)
    np.testing.assert_allclose(ds.x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.x_train.std(axis=0), 1.0, atol=1e-4)
    assert np.abs(ds.x_val.mean(axis=0)).max() > 0.05
    assert np.abs(ds.x_test.mean(axis=0)).max() > 0.05


def test_splits_are_stratified_and_seeded():
    ds = load(DataConfig(name="breast_cancer"), validation_split=0.2, seed=1)
    shares = [y.mean() for y in (ds.y_train, ds.y_val, ds.y_test)]
    assert max(shares) - min(shares) < 0.02
    again = load(DataConfig(name="breast_cancer"), validation_split=0.2, seed=1)
    other = load(DataConfig(name="breast_cancer"), validation_split=0.2, seed=2)
    np.testing.assert_array_equal(ds.x_train, again.x_train)
    np.testing.assert_array_equal(ds.y_test, again.y_test)
    assert row_set(ds.x_test)[0] != row_set(other.x_test)[0]


def test_max_samples_caps_rows_keeping_every_class():
    ds = load(DataConfig(name="digits", max_samples=300), validation_split=0.2, seed=0)
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == 300
    assert set(np.unique(ds.y_train)) == set(range(10))
    big = load(DataConfig(name="overfit", max_samples=1000), validation_split=0.2, seed=0)
    assert len(big.x_train) + len(big.x_val) + len(big.x_test) == 1000  # the generated size


def test_bad_split_settings_are_dataset_errors():
    with pytest.raises(DatasetError, match="validation split must be at least 0 and below 0.9"):
        load(DataConfig(name="wine"), validation_split=0.95, seed=0)
    with pytest.raises(DatasetError, match="test share must be above 0"):
        load(DataConfig(name="wine", test_fraction=0.0), validation_split=0.2, seed=0)


@pytest.mark.slow
def test_overfit_set_makes_validation_loss_turn_up():
    """The point of the set: an MLP's val_loss falls, bottoms out early, then climbs well above it."""
    import keras

    ds = load(DataConfig(name="overfit"), validation_split=0.2, seed=42)
    keras.utils.set_random_seed(42)
    model = keras.Sequential(
        [
            keras.Input(ds.input_shape),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    history = model.fit(
        ds.x_train, ds.y_train, validation_data=(ds.x_val, ds.y_val), epochs=40, batch_size=32, verbose=0
    )
    val = np.array(history.history["val_loss"])
    best = int(val.argmin())
    assert 1 <= best <= 20
    assert val[-1] > 1.4 * val[best]
    assert history.history["loss"][-1] < 0.05  # it memorized the training part


def test_text_sentiment_is_tokenized_like_the_seed():
    ds = load(DataConfig(name="text_sentiment", max_samples=600), validation_split=0.2, seed=0)
    assert ds.task == "binary" and ds.input_kind == "sequence" and ds.classes == ["negative", "positive"]
    assert ds.x_train.shape == (384, 400) and ds.x_val.shape == (96, 400) and ds.x_test.shape == (120, 400)
    assert ds.x_train.dtype == np.int32 and ds.y_train.dtype == np.float32
    assert ds.vocab_size == 5000 and ds.input_shape == (400,)
    assert 0 < ds.x_train.max() < 5000
    assert 0.35 < ds.y_train.mean() < 0.65
    again = load(DataConfig(name="text_sentiment", max_samples=600), validation_split=0.2, seed=0)
    np.testing.assert_array_equal(ds.x_test, again.x_test)


def test_generated_reviews_read_like_reviews():
    texts, labels = generate_reviews(200)
    assert len(texts) == 200 and set(labels) == {0, 1}
    assert any("<br />" in t for t in texts)
    assert any(" was not " in t for t in texts)
    assert all(t.endswith(".") for t in texts)


# --------------------------------------------------------------------------------------------
# CSV: reading, checks, task inference


def csv_file(tmp_path: Path, content: str | bytes, name: str = "data.csv") -> dict[str, str]:
    """The content stored as an upload of the test's runs folder: the DataConfig fields naming it."""
    del tmp_path  # the upload goes to the test's own runs folder (conftest)
    return upload(content, name)


def table(n: int = 40, target=None, **extra) -> str:
    """A CSV text with an id, a numeric feature and a target (default: alternating yes/no)."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"id": np.arange(n), "x": rng.normal(size=n).round(3)})
    df["y"] = target if target is not None else ["yes" if i % 2 else "no" for i in range(n)]
    for name, values in extra.items():
        df[name] = values
    return df.to_csv(index=False)


def load_csv(path: dict[str, str], target: str | None = "y", **cfg) -> datasets.Dataset:
    return load(DataConfig(name="csv", **path, target_column=target, **cfg), validation_split=0.2, seed=0)


def test_csv_loads_with_disjoint_splits_and_string_labels(tmp_path):
    path = csv_file(tmp_path, table(50))
    ds = load_csv(path)
    assert ds.task == "binary" and ds.classes == ["no", "yes"] and ds.feature_names == ["id", "x"]
    assert ds.y_train.dtype == np.float32 and set(np.unique(ds.y_train)) == {0.0, 1.0}
    # The id feature, standardized with one scaler for all parts, tells the rows apart.
    ids = [set(np.round(x[:, 0], 4)) for x in (ds.x_train, ds.x_val, ds.x_test)]
    assert sum(map(len, ids)) == 50 and not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    info = describe(DataConfig(name="csv", **path, target_column="y"))
    assert info == datasets.DatasetInfo("binary", "tabular", 2, 50, ("id", "x", "y"), input_shape=(2,))


def test_csv_multiclass_string_labels_are_mapped_in_sorted_order(tmp_path):
    labels = ["fish", "cat", "dog"] * 12
    ds = load_csv(csv_file(tmp_path, table(36, labels)))
    assert ds.task == "multiclass" and ds.classes == ["cat", "dog", "fish"]
    assert ds.y_train.dtype == np.int32 and set(np.unique(ds.y_train)) == {0, 1, 2}


@pytest.mark.parametrize(
    "values, expected",
    [
        (["a", "b"] * 10, "binary"),
        ([0, 1] * 10, "binary"),
        ([True, False] * 10, "binary"),
        ([1.0, 2.0, 3.0, 4.0] * 10, "multiclass"),
        (["red", "green", "blue"] * 10, "multiclass"),
        (list(range(100)), "regression"),  # whole numbers, but as many values as rows
        ([0.5, 1.25, 2.0] * 10, "regression"),  # not whole numbers
        (list(range(60)) * 3, "regression"),  # more than 50 distinct values
    ],
)
def test_infer_task(values, expected):
    assert infer_task(pd.Series(values, name="t")) == expected


def test_infer_task_rejects_many_text_values_and_a_single_value():
    with pytest.raises(DatasetError, match="'t' holds text with 40 different values"):
        infer_task(pd.Series([f"v{i}" for i in range(40)], name="t"))
    with pytest.raises(DatasetError, match="'t' has only one value \\('3'\\): there is nothing to learn"):
        infer_task(pd.Series([3.0] * 20, name="t"))


def test_csv_task_inference_and_override(tmp_path):
    path = csv_file(tmp_path, table(40, [0, 1, 2, 3] * 10))
    assert describe(DataConfig(name="csv", **path, target_column="y")).task == "multiclass"
    reg = load_csv(path, task="regression")
    assert reg.task == "regression" and reg.classes == [] and reg.y_train.dtype == np.float32
    assert set(np.unique(reg.y_train)) <= {0.0, 1.0, 2.0, 3.0}
    with pytest.raises(DatasetError, match="Binary classification needs exactly 2 classes; 'y' has 4"):
        load_csv(path, task="binary")
    binary = load_csv(csv_file(tmp_path, table(40), "b.csv"), task="multiclass")
    assert (
        binary.task == "multiclass" and binary.classes == ["no", "yes"] and binary.y_train.dtype == np.int32
    )
    floats = csv_file(tmp_path, table(40, np.linspace(0, 1, 40)), "f.csv")
    assert describe(DataConfig(name="csv", **floats, target_column="y")).task == "regression"
    with pytest.raises(DatasetError, match="Task must be one of binary, multiclass, regression"):
        describe(DataConfig(name="csv", **floats, target_column="y", task="ranking"))


def test_csv_regression_needs_a_numeric_target(tmp_path):
    path = csv_file(tmp_path, table(40))
    with pytest.raises(DatasetError, match="Regression needs a numeric target; 'y' holds text such as 'no'"):
        load_csv(path, task="regression")


def test_csv_booleans_are_numeric_features(tmp_path):
    ds = load_csv(csv_file(tmp_path, table(40, flag=[True, False, False, True] * 10)))
    assert ds.feature_names == ["id", "x", "flag"] and ds.x_train.dtype == np.float32


def test_csv_empty_file(tmp_path):
    with pytest.raises(DatasetError, match="^The file is empty.$"):
        load_csv(csv_file(tmp_path, b""))
    with pytest.raises(DatasetError, match="^The file is empty.$"):
        read_csv(b"\n\n  \n")


def test_csv_header_only(tmp_path):
    with pytest.raises(DatasetError, match=r"header row \(id, x, y\) but no data rows"):
        load_csv(csv_file(tmp_path, "id,x,y\n"))


def test_csv_too_few_rows(tmp_path):
    with pytest.raises(DatasetError, match="only 6 data rows; at least 10 are needed to split off training"):
        load_csv(csv_file(tmp_path, table(6)))


def test_csv_non_numeric_feature_columns_are_named(tmp_path):
    content = table(20, city=["Paris", "Rome"] * 10, size=["1", "2", "3", "x4"] * 5)
    with pytest.raises(DatasetError) as err:
        load_csv(csv_file(tmp_path, content))
    msg = str(err.value)
    assert "'city' (e.g. 'Paris' on data row 1), 'size' (e.g. 'x4' on data row 4)" in msg
    assert "are not numeric: remove them or encode them as numbers" in msg


def test_csv_missing_cells_are_counted_per_column(tmp_path):
    content = "id,x,y\n" + "".join(f"{i},{'' if i in (2, 7) else i / 10},{i % 2}\n" for i in range(20))
    content = content.replace("5,0.5,1", "5,0.5,")
    with pytest.raises(DatasetError) as err:
        load_csv(csv_file(tmp_path, content))
    assert str(err.value) == (
        "Empty cells in 'x' (2 cells, first on data row 3), 'y' (1 cell, first on data row 6): "
        "fill them in or drop those rows."
    )


def test_csv_problems_are_reported_together(tmp_path):
    content = table(20, name=["a", "b"] * 10, age=[1.0, np.nan] * 10)
    with pytest.raises(DatasetError, match="'name' .* not numeric.* Empty cells in 'age' \\(10 cells"):
        load_csv(csv_file(tmp_path, content))


def test_csv_infinite_cells(tmp_path):
    content = table(20, w=[1.5, float("inf")] + [0.5] * 18)
    with pytest.raises(
        DatasetError, match=r"Infinite values, or numbers too large .* in 'w' \(1 cell, first on data row 2\)"
    ):
        load_csv(csv_file(tmp_path, content))


def test_csv_single_class_target(tmp_path):
    with pytest.raises(DatasetError, match="'y' has only one value \\('yes'\\): there is nothing to learn"):
        load_csv(csv_file(tmp_path, table(20, ["yes"] * 20)))


def test_csv_target_missing_lists_columns(tmp_path):
    path = csv_file(tmp_path, table(20))
    with pytest.raises(DatasetError, match=r"^There is no column 'label' in the file. Columns: id, x, y.$"):
        load_csv(path, target="label")
    with pytest.raises(DatasetError, match=r"no column 'Y ' in the file. Did you mean 'y'\?"):
        load_csv(path, target="Y ")


def test_csv_target_not_set(tmp_path):
    with pytest.raises(
        DatasetError, match=r"^Choose the target column \(the one to predict\). Columns: id, x, y"
    ):
        describe(DataConfig(name="csv", **csv_file(tmp_path, table(20))))
    with pytest.raises(DatasetError, match="^Upload a CSV file first.$"):
        describe(DataConfig(name="csv", target_column="y"))


def test_csv_only_the_target_column(tmp_path):
    with pytest.raises(DatasetError, match="only the target column 'y'; add feature columns"):
        load_csv(csv_file(tmp_path, "y\n" + "1\n0\n" * 10))


def test_csv_not_utf8(tmp_path):
    data = "id,x,y\n1,2,café\n".encode("latin-1") + b"2,3,ok\n" * 20
    with pytest.raises(DatasetError, match=r"not UTF-8 text \(byte 0xE9 on line 2 cannot be decoded\)"):
        load_csv(csv_file(tmp_path, data))
    with pytest.raises(DatasetError, match="UTF-16 text, not UTF-8. Re-save it as 'CSV UTF-8'"):
        read_csv(table(20).encode("utf-16"))


def test_csv_utf8_with_byte_order_mark(tmp_path):
    df = read_csv(b"\xef\xbb\xbf" + table(20).encode())
    assert list(df.columns) == ["id", "x", "y"]


@pytest.mark.parametrize(
    "data, why",
    [
        (bytes(range(256)) * 40, "it contains binary data"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" * 100, "it contains binary data"),
        (b"PK\x03\x04" + b"\x14\x00" * 100, "it is an Excel workbook or a zip archive"),
        (gzip.compress(b"a,b\n1,2\n", mtime=0), "it is gzip-compressed"),
    ],
    ids=["bytes", "png", "zip", "gzip"],  # readable ids, the same in every xdist worker
)
def test_binary_file_renamed_csv(tmp_path, data, why):
    with pytest.raises(DatasetError, match=f"^This file is not a CSV text file.*{why}"):
        load_csv(csv_file(tmp_path, data))


def test_csv_over_the_size_limit(tmp_path):
    data = table(20).encode() + b"1,2,yes\n" * 200_000  # 1.5 MB
    with pytest.raises(DatasetError, match=r"^The file is 1.5 MB; the limit is 1 MB.$"):
        read_csv(data, max_bytes=2**20)
    with pytest.raises(DatasetError, match=r"^The file is 1.5 MB; the limit is 0.5 MB.$"):
        read_csv(upload_path(csv_file(tmp_path, data)), max_bytes=2**19)
    assert len(read_csv(data, max_bytes=2 * 2**20)) == 200_020


def test_csv_ragged_rows_and_a_missing_upload_are_refused_with_the_line_numbers(tmp_path):
    with pytest.raises(DatasetError, match=r"most have 3, but line 3 has 4 \(delimiter ','\)\. Fix those"):
        read_csv(b"a,b,c\n1,2,3\n1,2,3,4\n5,6,7\n")
    rows = "a,b,c\n" + "1,2,3\n" * 8 + "1,2\n" + "1,2,3\n" * 3 + "1,2,3,4,5\n"
    with pytest.raises(DatasetError, match="but lines 10, 14 have 2 or 5"):
        read_csv(rows.encode())
    with pytest.raises(
        DatasetError, match="^The uploaded CSV is not on this server .*upload the file again.$"
    ):
        describe(DataConfig(name="csv", upload="0" * 32, target_column="y"))


def test_csv_semicolon_separated():
    assert list(read_csv(table(20).replace(",", ";").encode()).columns) == ["id", "x", "y"]


def test_csv_class_too_small_to_stratify_falls_back_and_says_so(tmp_path):
    labels = ["a"] * 15 + ["b"] * 14 + ["c"]
    ds = load_csv(csv_file(tmp_path, table(30, labels)))
    assert ds.classes == ["a", "b", "c"]
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == 30
    assert "split unstratified: the smallest class has 1 sample, too few to stratify" in ds.description


def test_csv_an_upload_is_parsed_once_per_content_and_options(tmp_path, monkeypatch):
    first, second = csv_file(tmp_path, table(20)), csv_file(tmp_path, table(30))
    assert first["upload"] != second["upload"]  # content-addressed: a changed file is another upload
    parsed = []
    real = csv_table.read_table
    monkeypatch.setattr(csv_table, "read_table", lambda *a, **k: parsed.append(a) or real(*a, **k))
    for _ in range(3):  # the page asks on every rerun
        assert describe(DataConfig(name="csv", **first, target_column="y")).n_samples == 20
        assert describe(DataConfig(name="csv", **second, target_column="y")).n_samples == 30
    assert len(parsed) == 2
    semicolon = CsvFormat(delimiter=";")
    with pytest.raises(DatasetError):
        describe(DataConfig(name="csv", **first, target_column="y", csv=semicolon))
    with pytest.raises(DatasetError):  # a refusal is remembered too
        describe(DataConfig(name="csv", **first, target_column="y", csv=semicolon))
    assert len(parsed) == 3


def test_upload_ids_are_the_only_way_to_a_file(tmp_path):
    from core.data import uploads

    fields = upload(b"a,b\n1,2\n", "../../etc/passwd")
    assert fields["file_name"] == "../../etc/passwd"  # the test helper keeps it; the page cleans it
    assert uploads.display_name("C:\\Users\\me\\iris\x00.csv") == "iris.csv"
    assert uploads.path_of(fields["upload"]).parent == tmp_path / "runs" / "uploads"
    for bad in ("../" + "0" * 29, "0" * 32 + "\n", "0" * 31, "A" * 32, "/etc/passwd"):
        with pytest.raises(uploads.UploadError):
            uploads.path_of(bad)
    assert sorted(p.name for p in (tmp_path / "runs" / "uploads").iterdir()) == [f"{fields['upload']}.csv"]


# --------------------------------------------------------------------------------------------
# CSV structure: metadata lines, missing headers, delimiters, decimal commas, huge numbers

SKLEARN_DATA = Path(sklearn_data.__file__).parent


@pytest.mark.parametrize(
    ("file", "rows", "features", "meta", "first_values"),
    [
        ("wine_data.csv", 178, 13, 5, "14.23, 1.71, 2.43, 15.6"),
        ("breast_cancer.csv", 569, 30, 4, "17.99, 10.38, 122.8, 1001"),
    ],
)
def test_sklearns_raw_csvs_load_with_every_feature_once_the_choices_are_set(
    file, rows, features, meta, first_values
):
    fields = upload(SKLEARN_DATA / file)
    target = f"column {features + 1}"
    cfg = DataConfig(name="csv", **fields, target_column=target)
    # As pandas reads it, the metadata line makes all but its 4-5 last columns a hidden index.
    with pytest.raises(DatasetError) as err:
        describe(cfg)
    assert str(err.value).startswith(
        f"Line 1 has {meta} fields, the rows have {features + 1}: it looks like a metadata line"
    )
    assert "Skip it (data.csv.skip_rows = 1)" in str(err.value)
    assert err.value.fixes == (("Skip the first line", {"data.csv.skip_rows": 1}),)
    # Skipped, the first data row would be the header: refused, with the next fix.
    with pytest.raises(DatasetError) as err:
        describe(replace(cfg, csv=CsvFormat(skip_rows=1)))
    assert f"The header row (line 2) holds only numbers ({first_values}, …)" in str(err.value)
    assert "Choose no header row (data.csv.header = false)" in str(err.value)
    assert err.value.fixes == (("No header row", {"data.csv.header": False}),)
    # Both set: every feature, every row, the classes as scikit-learn has them.
    cfg = replace(cfg, csv=CsvFormat(skip_rows=1, header=False))
    info = describe(cfg)
    assert info.input_shape == (features,) and info.n_samples == rows
    assert info.columns == tuple(f"column {i}" for i in range(1, features + 2))
    ds = load(cfg, validation_split=0.2, seed=0)
    assert ds.x_train.shape[1] == features and len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == rows
    table = datasets.read_upload(fields["upload"], cfg.csv)
    assert table.notes == (
        "Delimiter: comma (detected).",
        f"No header row: columns are named column 1..{features + 1}.",
        "Skipped line 1.",
    )
    bunch = getattr(sklearn_datasets, "load_wine" if file.startswith("wine") else "load_breast_cancer")()
    np.testing.assert_array_equal(table.frame.iloc[:, :-1].to_numpy(), bunch.data)
    np.testing.assert_array_equal(table.frame.iloc[:, -1].to_numpy(), bunch.target)


def test_mixed_delimiters_are_refused_naming_the_lines():
    text = "a,b,y\n" + "1,2,0\n" * 5 + "3;4;1\n" + "1,2,1\n" * 5
    with pytest.raises(DatasetError) as err:
        read_csv(text.encode())
    assert (
        "The rows are not separated the same way: line 7 by ';' and lines 1, 2, 3, 4, 5 and 6 more by ','"
        in (str(err.value))
    )
    with pytest.raises(DatasetError, match="most have 3, but line 7 has 1"):  # a delimiter picked
        read_csv(text.encode(), fmt=CsvFormat(delimiter=","))


def test_decimal_commas_are_detected_and_read_once_chosen():
    text = "a;b;y\n" + "".join(f"{i},5;{i % 3};{i % 2}\n" for i in range(20))
    cfg = DataConfig(name="csv", **upload(text), target_column="y")
    with pytest.raises(DatasetError) as err:
        describe(cfg)
    assert str(err.value).startswith(
        "Feature column(s) 'a' (e.g. '0,5' on data row 1) hold numbers with a decimal comma: choose ','"
    )
    assert err.value.fixes == (("Decimal comma", {"data.csv.decimal": ","}),)
    ds = load(replace(cfg, csv=CsvFormat(decimal=",")), validation_split=0.2, seed=0)
    frame = datasets.read_csv(upload_path(cfg.__dict__), fmt=CsvFormat(decimal=","))
    assert frame["a"].tolist()[:3] == [0.5, 1.5, 2.5] and ds.x_train.shape[1] == 2
    with pytest.raises(DatasetError, match="The delimiter and the decimal separator are both ','"):
        read_csv(text.encode(), fmt=CsvFormat(delimiter=",", decimal=","))


def test_header_longer_or_shorter_than_the_rows():
    with pytest.raises(DatasetError, match="Line 1 has 4 fields, the rows have 3: the header names more"):
        read_csv(b"a,b,c,d\n" + b"1,2,3\n" * 12)
    with pytest.raises(DatasetError, match="Line 3 has 2 fields, the rows have 3: it looks like a metadata"):
        read_csv(b"title\nmade today\na,b\n" + b"1,2,3\n" * 12, fmt=CsvFormat(skip_rows=2))
    with pytest.raises(DatasetError, match="Nothing is left after skipping 100 lines"):
        read_csv(b"a,b\n1,2\n", fmt=CsvFormat(skip_rows=100))


def test_numbers_too_large_for_a_float_name_the_column_and_row():
    big = "9" * 400
    text = "a,b,y\n" + "1,2,0\n1,3,1\n" * 6 + f"{big},2,1\n-{big},1e400,0\n"
    cfg = DataConfig(name="csv", **upload(text), target_column="y")
    with pytest.raises(DatasetError) as err:  # was: OverflowError: int too large to convert to float
        describe(cfg)
    assert str(err.value) == (
        "Infinite values, or numbers too large for a 64-bit float (beyond ±1.8e308), in "
        "'a' (2 cells, first on data row 13: a 400-digit number), 'b' (1 cell, first on data row 14): "
        "replace them with finite numbers."
    )
    regression = DataConfig(name="csv", **upload(text.replace(f"{big},2,1", f"1,2,{big}")), target_column="y")
    with pytest.raises(DatasetError, match="'y' \\(1 cell, first on data row 13: a 400-digit number\\)"):
        describe(replace(regression, task="regression"))


# --------------------------------------------------------------------------------------------
# text_csv


def reviews_csv(tmp_path: Path, n: int = 60) -> dict[str, str]:
    """Reviews of exactly 4 words around '<br />' tags, plus one word unique to each review."""
    rows = []
    for i in range(n):
        good = i % 2 == 0
        words = ("Great film" if good else "Awful film") + f"<br /><br />unique{i} unique{i}"
        rows.append({"review": f"{words}<BR/>!", "sentiment": "positive" if good else "negative"})
    return csv_file(tmp_path, pd.DataFrame(rows).to_csv(index=False), "reviews.csv")


def load_text(path: dict[str, str], **cfg) -> datasets.Dataset:
    base = {"name": "text_csv", **path, "text_column": "review", "target_column": "sentiment"}
    return load(DataConfig(**{**base, **cfg}), validation_split=0.25, seed=0)


def test_text_csv_tokenizes_with_a_vocabulary_from_the_training_texts_only(tmp_path):
    path = reviews_csv(tmp_path)
    ds = load_text(path, num_words=1000, maxlen=8)
    assert ds.task == "binary" and ds.input_kind == "sequence" and ds.classes == ["negative", "positive"]
    assert ds.x_train.shape == (36, 8) and ds.x_val.shape == (12, 8) and ds.x_test.shape == (12, 8)
    assert ds.x_train.dtype == np.int32 and ds.vocab_size == 1000 and ds.input_shape == (8,)
    # '<br />' is stripped, so each review is exactly 4 tokens, padded at the end.
    for x in (ds.x_train, ds.x_val, ds.x_test):
        assert ((x > 0).sum(axis=1) == 4).all() and (x[:, 4:] == 0).all()
    # Each review's unique word is in the vocabulary only if that review is a training review.
    assert not (ds.x_train == 1).any()
    assert ((ds.x_test == 1).sum(axis=1) == 2).all() and ((ds.x_val == 1).sum(axis=1) == 2).all()
    info = describe(DataConfig(name="text_csv", **path, text_column="review", target_column="sentiment"))
    assert (info.task, info.input_kind, info.n_samples, info.n_classes) == ("binary", "sequence", 60, 2)


def test_text_csv_vocabulary_is_capped_and_sequences_truncated(tmp_path):
    ds = load_text(reviews_csv(tmp_path), num_words=5, maxlen=3)
    assert ds.x_train.shape[1] == 3 and ds.vocab_size == 5
    assert ds.x_train.max() == 4 and (ds.x_train == 1).any()  # rare words are out of vocabulary


def test_text_csv_multiclass_labels(tmp_path):
    df = pd.DataFrame(
        {"text": [f"word{i % 3} and more" for i in range(30)], "label": [i % 3 for i in range(30)]}
    )
    path = csv_file(tmp_path, df.to_csv(index=False))
    ds = load(
        DataConfig(name="text_csv", **path, text_column="text", target_column="label", maxlen=5),
        validation_split=0.2,
        seed=0,
    )
    assert ds.task == "multiclass" and ds.classes == ["0", "1", "2"] and ds.y_train.dtype == np.int32


def test_text_csv_errors(tmp_path):
    path = reviews_csv(tmp_path)
    cfg = {"name": "text_csv", **path}
    with pytest.raises(
        DatasetError, match=r"^Choose the text column \(the reviews or documents\). Columns: review"
    ):
        describe(DataConfig(**cfg, target_column="sentiment"))
    with pytest.raises(
        DatasetError, match="^There is no column 'text' in the file. Columns: review, sentiment.$"
    ):
        describe(DataConfig(**cfg, text_column="text", target_column="sentiment"))
    with pytest.raises(DatasetError, match=r"^Choose the label column \(the one to predict\)"):
        describe(DataConfig(**cfg, text_column="review"))
    with pytest.raises(DatasetError, match="must be different columns"):
        describe(DataConfig(**cfg, text_column="review", target_column="review"))
    with pytest.raises(
        DatasetError, match="Text data takes class labels: set the task to binary or multiclass"
    ):
        describe(DataConfig(**cfg, text_column="review", target_column="sentiment", task="regression"))


def test_text_csv_empty_texts_and_label_problems(tmp_path):
    df = pd.DataFrame({"review": ["fine film"] * 20, "sentiment": ["pos", "neg"] * 10})
    df.loc[[3, 8], "review"] = ["", "   "]
    path = csv_file(tmp_path, df.to_csv(index=False))
    cfg = DataConfig(name="text_csv", **path, text_column="review", target_column="sentiment")
    with pytest.raises(DatasetError, match=r"'review' has empty texts \(2 cells, first on data row 4\)"):
        describe(cfg)
    df = pd.DataFrame({"review": ["fine film"] * 20, "sentiment": ["pos", "neg", "meh", "ok"] * 5})
    path = csv_file(tmp_path, df.to_csv(index=False), "labels.csv")
    with pytest.raises(
        DatasetError, match="Binary classification needs exactly 2 classes; 'sentiment' has 4"
    ):
        describe(
            DataConfig(
                name="text_csv", **path, text_column="review", target_column="sentiment", task="binary"
            )
        )
    df = pd.DataFrame({"review": ["fine film"] * 40, "score": np.linspace(0, 1, 40)})
    path = csv_file(tmp_path, df.to_csv(index=False), "scores.csv")
    with pytest.raises(DatasetError, match="'score' looks continuous"):
        describe(DataConfig(name="text_csv", **path, text_column="review", target_column="score"))
    with pytest.raises(DatasetError, match="^The text column 'score' holds numbers, not text"):
        describe(DataConfig(name="text_csv", **path, text_column="score", target_column="review"))


# --------------------------------------------------------------------------------------------
# Keras datasets: cache location, offline failure, fake cached files through the real loaders

IMDB_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz"


@pytest.fixture
def keras_home(tmp_path, monkeypatch) -> Path:
    """An empty Keras home, as if KERAS_HOME had pointed there when Keras was imported.

    Keras reads KERAS_HOME once, at import (keras/src/backend/config.py), so inside this process the
    env var alone no longer moves its cache; the subprocess test below checks the real import path.
    """
    import keras.src.backend.config as keras_config

    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(home))
    return home


@pytest.fixture
def no_network(monkeypatch):
    """Make every download fail like a machine without internet (keras' urlretrieve calls urlopen)."""

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network disabled by the test")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture
def accept_any_hash(monkeypatch):
    """Let our fake .npz files pass Keras' sha256 check; everything else in load_data runs for real."""
    from keras.src.utils import file_utils

    monkeypatch.setattr(file_utils, "validate_file", lambda *args, **kwargs: True)


@pytest.mark.parametrize("keras_home_set", [True, False])
def test_keras_cache_path_agrees_with_keras_get_file(tmp_path, keras_home_set):
    """Computed before Keras is imported, the path is where keras.utils.get_file then looks."""
    env = {"KERAS_HOME": str(tmp_path / "kh")} if keras_home_set else {"HOME": str(tmp_path)}
    if not keras_home_set:
        env["KERAS_HOME"] = ""  # removed below: subprocess env cannot unset, the code does
    out = run_python(
        """
        import os, sys
        if not os.environ.get("KERAS_HOME"):
            del os.environ["KERAS_HOME"]
        from core.data import datasets
        before = datasets.keras_cache_path("imdb")
        fashion = datasets.keras_cache_path("fashion_mnist")
        assert "keras" not in sys.modules
        before.parent.mkdir(parents=True, exist_ok=True)
        before.write_bytes(b"x")
        from keras.utils import get_file
        found = get_file("imdb.npz", origin="https://example.invalid/imdb.npz")  # cached: no download
        after, cached = datasets.keras_cache_path("imdb"), datasets.keras_cached("imdb")
        print(before, found, after, fashion, cached, sep="\\n")
        """,
        env,
    )
    before, found, after, fashion, cached = out.strip().splitlines()[-5:]
    home = tmp_path / "kh" if keras_home_set else tmp_path / ".keras"
    assert before == found == after == str(home / "datasets" / "imdb.npz")
    assert fashion == str(home / "datasets" / "fashion-mnist")
    assert cached == "True"


def test_keras_cache_path_and_cached(keras_home):
    assert datasets.keras_cache_path("mnist") == keras_home / "datasets" / "mnist.npz"
    assert not datasets.keras_cached("mnist")
    (keras_home / "datasets").mkdir()
    (keras_home / "datasets" / "mnist.npz").write_bytes(b"x")
    assert datasets.keras_cached("mnist")
    with pytest.raises(DatasetError, match="'digits' is not a Keras dataset"):
        datasets.keras_cache_path("digits")


def test_our_urls_and_hashes_match_the_keras_source():
    import inspect

    from keras.src.datasets import fashion_mnist, imdb, mnist

    for name, module in [("imdb", imdb), ("mnist", mnist), ("fashion_mnist", fashion_mnist)]:
        source = inspect.getsource(module.load_data)
        spec = datasets.DATASETS[name]
        assert KERAS_ORIGIN in source
        assert all(f in source for f in spec.files)
        assert spec.sha256 is None or spec.sha256 in source


def test_imdb_offline_says_what_to_download_and_where(keras_home, no_network):
    with pytest.raises(DatasetUnavailable) as err:
        load(DataConfig(name="imdb"), validation_split=0.2, seed=0)
    path = keras_home / "datasets" / "imdb.npz"
    assert str(err.value) == (
        "IMDB reviews (Keras) is not in the Keras cache and could not be downloaded. "
        "Download failed: network disabled by the test. "
        f"To use it offline, download {IMDB_URL} and put it at {path}. "
        "Or use the offline text_sentiment set, or upload the 50,000-review IMDB CSV as text_csv "
        "(text column 'review', target 'sentiment')."
    )
    assert isinstance(err.value, DatasetError)


def test_fashion_mnist_offline_lists_its_four_files(keras_home, no_network):
    with pytest.raises(
        DatasetUnavailable, match="download the 4 files https://.*/train-labels-idx1-ubyte.gz, "
    ) as err:
        load(DataConfig(name="fashion_mnist"), validation_split=0.2, seed=0)
    assert f"into the folder {keras_home / 'datasets' / 'fashion-mnist'}. Or use digits_images" in str(
        err.value
    )


def test_corrupt_cached_file_offline_is_explained(keras_home, no_network):
    path = keras_home / "datasets" / "mnist.npz"
    path.parent.mkdir()
    path.write_bytes(b"not really mnist")
    with pytest.raises(
        DatasetUnavailable, match="cached mnist.npz at .* did not match the sha256 Keras expects"
    ):
        load(DataConfig(name="mnist"), validation_split=0.2, seed=0)
    assert not path.exists()  # Keras deleted it after the failed re-download, as the message says


def test_unreadable_cached_file_is_a_dataset_error(keras_home, no_network, accept_any_hash):
    path = keras_home / "datasets" / "imdb.npz"
    path.parent.mkdir()
    path.write_bytes(b"not a zip file")
    with pytest.raises(
        DatasetError, match="^Keras could not read IMDB reviews \\(Keras\\) from .*imdb.npz: "
    ):
        load(DataConfig(name="imdb"), validation_split=0.2, seed=0)


def fake_imdb(folder: Path, n_train: int = 40, n_test: int = 30) -> dict[str, list]:
    """An imdb.npz in Keras' format: ragged object arrays of raw word ids, 0/1 labels."""
    rng = np.random.default_rng(0)
    raw = {}
    for part, n in [("train", n_train), ("test", n_test)]:
        seqs = np.empty(n, dtype=object)
        # Lists of Python ints: Keras' restricted unpickler refuses numpy scalars.
        seqs[:] = [rng.integers(0, 200, size=rng.integers(5, 30)).tolist() for _ in range(n)]
        raw[f"x_{part}"], raw[f"y_{part}"] = seqs, np.arange(n) % 2
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "imdb.npz", **raw)
    return raw


def expected_rows(seqs, labels, num_words: int, maxlen: int) -> set[tuple]:
    """What load_data(num_words) + pad_sequences(maxlen) make of raw ids: start 1, ids + 3, OOV 2."""
    out = set()
    for seq, label in zip(seqs, labels):
        ids = [1] + [w + 3 if w + 3 < num_words else 2 for w in seq]
        ids = ids[-maxlen:]
        out.add((float(label), *([0] * (maxlen - len(ids)) + ids)))
    return out


def test_imdb_from_a_cached_file(keras_home, no_network, accept_any_hash):
    raw = fake_imdb(keras_home / "datasets")
    ds = load(DataConfig(name="imdb", num_words=50, maxlen=20), validation_split=0.25, seed=0)
    assert ds.task == "binary" and ds.input_kind == "sequence" and ds.vocab_size == 50
    assert ds.x_train.shape == (30, 20) and ds.x_val.shape == (10, 20) and ds.x_test.shape == (30, 20)
    assert ds.x_train.dtype == np.int32 and ds.y_train.dtype == np.float32 and ds.input_shape == (20,)
    assert ds.x_train.max() == 49 and (ds.x_train == 2).any()  # ids capped at num_words, rest OOV
    assert ds.classes == ["negative", "positive"]

    def rows(x, y):
        return {(float(label), *map(int, seq)) for seq, label in zip(x, y)}

    assert rows(ds.x_test, ds.y_test) == expected_rows(raw["x_test"], raw["y_test"], 50, 20)
    train, val = rows(ds.x_train, ds.y_train), rows(ds.x_val, ds.y_val)
    assert not train & val and train | val == expected_rows(raw["x_train"], raw["y_train"], 50, 20)
    assert "30 train / 10 val / 30 test" in ds.description

    small = load(DataConfig(name="imdb", num_words=50, maxlen=20, max_samples=35), validation_split=0, seed=0)
    assert (len(small.x_train), len(small.x_test)) == (20, 15) and small.x_val is None


def test_mnist_from_a_cached_file(keras_home, no_network, accept_any_hash):
    rng = np.random.default_rng(0)
    folder = keras_home / "datasets"
    folder.mkdir()
    arrays = {
        "x_train": rng.integers(0, 256, (50, 28, 28), dtype=np.uint8),
        "y_train": np.arange(50, dtype=np.uint8) % 10,
        "x_test": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "y_test": np.arange(20, dtype=np.uint8) % 10,
    }
    np.savez(folder / "mnist.npz", **arrays)
    ds = load(DataConfig(name="mnist"), validation_split=0.2, seed=0)
    assert ds.x_train.shape == (40, 28, 28, 1) and ds.x_val.shape == (10, 28, 28, 1)
    assert ds.x_test.shape == (20, 28, 28, 1) and ds.input_shape == (28, 28, 1)
    assert ds.x_train.dtype == np.float32 and ds.x_train.min() >= 0.0 and ds.x_train.max() <= 1.0
    assert ds.y_train.dtype == np.int32 and ds.classes == [str(i) for i in range(10)]
    assert set(np.unique(ds.y_val)) == set(range(10))  # stratified validation
    assert row_set(ds.x_test)[0] == row_set((arrays["x_test"] / 255.0).astype(np.float32)[..., None])[0]


def test_fashion_mnist_from_cached_files_without_any_patch(keras_home, no_network):
    """Fashion-MNIST has no hash check: Keras reads whatever idx files are cached."""
    folder = keras_home / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in [("train", 30), ("t10k", 20)]:
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(8) + labels.tobytes()))
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes(16) + images.tobytes()))
    assert datasets.keras_cached("fashion_mnist")
    ds = load(DataConfig(name="fashion_mnist"), validation_split=0.0, seed=0)
    assert ds.x_train.shape == (30, 28, 28, 1) and ds.x_test.shape == (20, 28, 28, 1) and ds.x_val is None
    assert ds.classes[0] == "T-shirt/top" and len(ds.classes) == 10


# ------------------------------------------------------------------------------------------------
# Second audit of issue 9: column names are read exactly as the header row gives them, or refused


@pytest.mark.parametrize(
    ("header", "message"),
    [
        # pandas renamed the second "a" to "a.1" (and a third one, after an "a.1", to "a.2"): a target
        # column "a" then silently meant the first of them.
        ("a,a,y", "names the column 'a' twice (columns 1 and 2)"),
        ("a,a.1,a", "names the column 'a' twice (columns 1 and 3)"),
        # pandas called it "Unnamed: 1", and a saved row index (",a,b,y") became a feature.
        ("a,,y", "column 2 has no name"),
        (",a,y", "column 1 has no name"),
    ],
)
def test_a_header_row_with_duplicate_or_empty_names_is_refused(header, message):
    rows = "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40))
    with pytest.raises(DatasetError, match=re.escape(message)) as err:
        read_csv(f"{header}\n{rows}".encode())
    assert "data.csv.header" in str(err.value)
    # Without a header row the same file reads, columns named column 1..3.
    frame = read_csv(f"{header}\n{rows}".encode(), fmt=CsvFormat(header=False, skip_rows=1))
    assert list(frame.columns) == ["column 1", "column 2", "column 3"]
    # Names that only look alike are different names: kept exactly.
    assert list(read_csv(f"a,a ,y\n{rows}".encode()).columns) == ["a", "a ", "y"]


def test_a_text_column_of_only_empty_texts_is_called_empty_not_numbers(tmp_path):
    """pandas reads a column of empty strings as NaN (a float column): it was refused as "holds numbers"."""
    texts = "text,label\n" + "".join(f'"",{i % 2}\n' for i in range(40))
    cfg = DataConfig(name="text_csv", **upload(texts), text_column="text", target_column="label")
    with pytest.raises(DatasetError, match=r"'text' has empty texts \(40 cells, first on data row 1\)"):
        describe(cfg)
    numbers = "text,label\n" + "".join(f"{i},{i % 2}\n" for i in range(40))
    cfg = DataConfig(name="text_csv", **upload(numbers), text_column="text", target_column="label")
    with pytest.raises(DatasetError, match="holds numbers, not text"):
        describe(cfg)


def test_a_huge_cell_quoted_in_a_message_is_cut(tmp_path):
    """A quoted field of 25,000 characters was quoted whole in the "not numeric" refusal."""
    cell = "line\n" * 5000
    text = f'a,b,y\n"{cell}",1,0\n' + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40))
    cfg = DataConfig(name="csv", **upload(text), target_column="y")
    with pytest.raises(DatasetError) as err:
        describe(cfg)
    assert "Feature column(s) 'a' (e.g. 'line\\nline" in str(err.value)
    assert "(25,000 characters)" in str(err.value) and len(str(err.value)) < 400


def test_an_upload_larger_than_the_upload_limit_is_refused_not_read_whole(tmp_path, monkeypatch):
    from core.data import csv_table

    fields = csv_file(tmp_path, table(30))
    monkeypatch.setattr(csv_table, "MAX_UPLOAD_BYTES", 100)
    with pytest.raises(DatasetError, match="the limit is"):
        describe(DataConfig(name="csv", **fields, target_column="y"))
