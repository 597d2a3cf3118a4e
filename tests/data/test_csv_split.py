"""Your own split (a column naming each row's part, or a second file as the test set) and texts cut
and padded as keras.utils.pad_sequences does: real files, real loaders, every refusal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.config import DataConfig, FitConfig, RunConfig
from core.data import datasets
from core.data.datasets import DatasetError, describe, load
from core.data.text import fit_vectorizer
from core.validate import validate
from tests.export.test_export import write_table_csv, write_text_csv
from tests.uploads import upload


def table(tmp_path, n: int = 150) -> pd.DataFrame:
    return pd.read_csv(write_table_csv(tmp_path / "base.csv", n=n))


def with_parts(tmp_path, df: pd.DataFrame, parts, name: str = "split.csv") -> dict[str, str]:
    df = df.copy()
    df["part"] = parts
    df.to_csv(tmp_path / name, index=False)
    return {**upload(tmp_path / name), "split_column": "part"}


def rows_of(x: np.ndarray) -> set[bytes]:
    return {r.tobytes() for r in x}


def every_fifth_test(n: int, val_every: int = 0) -> np.ndarray:
    i = np.arange(n)
    parts = np.where(i % 5 == 0, "Test", "train").astype(object)
    if val_every:
        parts[(i % val_every == 0) & (i % 5 != 0)] = " VAL "
    return parts


def test_the_split_column_decides_the_test_rows_and_is_no_feature(tmp_path):
    df = table(tmp_path)
    cfg = DataConfig(name="csv", **with_parts(tmp_path, df, every_fifth_test(len(df))), target_column="label")
    info = describe(cfg)
    assert info.given_parts == (120, 0, 30) and "part" in info.columns and info.input_shape == (5,)
    ds = load(cfg, validation_split=0.25, seed=1)
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (90, 30, 30)
    assert ds.feature_names == ["a", "b", "c", "d", "flag"]  # the split column is no feature
    # The test part is exactly the rows marked test, in file order, scaled with the statistics of
    # the rows that ended up training (validation comes out of the train rows, seeded).
    from sklearn.preprocessing import StandardScaler

    from core.data.split import take

    features = df[["a", "b", "c", "d", "flag"]].to_numpy(np.float64)
    y = (df.label == "yes").to_numpy(np.int64)
    test_rows = np.flatnonzero(np.arange(len(df)) % 5 == 0)
    train_rows, _, _ = take(np.setdiff1d(np.arange(len(df)), test_rows), y, 0.25, 1, True)
    np.testing.assert_array_equal(ds.y_test, y[test_rows].astype(np.float32))
    scaler = StandardScaler().fit(features[train_rows])
    np.testing.assert_array_equal(ds.x_test, scaler.transform(features[test_rows]).astype(np.float32))
    # Seeded: the same rows again; another seed moves validation, never test.
    again = load(cfg, validation_split=0.25, seed=1)
    other = load(cfg, validation_split=0.25, seed=2)
    np.testing.assert_array_equal(again.x_val, ds.x_val)
    np.testing.assert_array_equal(other.y_test, ds.y_test)
    assert rows_of(other.x_val) != rows_of(ds.x_val)


def test_named_validation_rows_are_the_validation_data(tmp_path):
    df = table(tmp_path)
    parts = every_fifth_test(len(df), val_every=7)  # " VAL ": case and spaces do not matter
    cfg = DataConfig(name="csv", **with_parts(tmp_path, df, parts), target_column="label")
    assert describe(cfg).given_parts == (103, 17, 30)
    ds = load(cfg, validation_split=0.2, seed=0)
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (103, 17, 30)
    val_rows = np.flatnonzero(np.char.strip(parts.astype(str)) == "VAL")
    np.testing.assert_array_equal(ds.y_val, (df.label.to_numpy()[val_rows] == "yes").astype(np.float32))
    # validate() says the share is unused, and refuses 0 (the rows would have no role).
    run = RunConfig(data=cfg, fit=FitConfig(validation_split=0.2))
    notes = [p for p in validate(run) if "17 validation rows" in p.message]
    assert [(p.field, p.severity) for p in notes] == [("fit.validation_split", "warning")]
    run.fit.validation_split = 0.0
    refused = [p for p in validate(run) if "17 validation rows" in p.message]
    assert [(p.field, p.severity) for p in refused] == [("fit.validation_split", "error")]
    assert "set it above 0" in refused[0].message
    with pytest.raises(DatasetError, match="17 validation rows, but the validation split is 0"):
        load(cfg, validation_split=0.0, seed=0)


def test_max_samples_keeps_a_share_of_each_named_part(tmp_path):
    df = table(tmp_path)
    df.loc[np.arange(len(df)) % 5 == 0, "d"] += 100  # marks the rows named test
    cfg = DataConfig(
        name="csv",
        **with_parts(tmp_path, df, every_fifth_test(len(df))),
        target_column="label",
        max_samples=60,
    )
    ds = load(cfg, validation_split=0.25, seed=0)
    assert (len(ds.x_train) + len(ds.x_val), len(ds.x_test)) == (48, 12)
    # Test rows stay test rows: they are the ones with a large d (scaling keeps the order).
    assert ds.x_test[:, 3].min() > max(ds.x_train[:, 3].max(), ds.x_val[:, 3].max())
    assert datasets.split_sizes(cfg, describe(cfg), 0.25) == (36, 12, 12)


def replace_max(cfg: DataConfig, n):
    from dataclasses import replace

    return replace(cfg, max_samples=n)


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        (
            lambda i: np.where(i % 5 == 0, "dev", np.where(i % 3 == 0, "", "train")),
            r"holds 'dev' \(30 rows, first on data row 1\), an empty cell \(40 rows, first on data row 4\)",
        ),
        (lambda i: np.where(i % 5 == 0, 1, 0), r"holds 1 \(30 rows, first on data row 1\), 0 \(120 rows"),
        (lambda i: np.full(len(i), "train"), r"names no test rows \(it names train \(150\)\)"),
        (lambda i: np.where(i % 2 == 0, "test", "validation"), r"names no train rows"),
    ],
    ids=["unknown-and-empty", "numbers", "no-test", "no-train"],
)
def test_a_split_column_that_does_not_name_train_and_test_is_refused(tmp_path, parts, message):
    df = table(tmp_path)
    cfg = DataConfig(name="csv", **with_parts(tmp_path, df, parts(np.arange(len(df)))), target_column="label")
    with pytest.raises(DatasetError, match=message):
        describe(cfg)
    problems = validate(RunConfig(data=cfg))
    assert any(
        p.severity == "error" and p.field == "data" and "split column 'part'" in p.message for p in problems
    )


def test_the_split_column_cannot_be_the_target_text_or_a_missing_column(tmp_path):
    df = table(tmp_path)
    fields = with_parts(tmp_path, df, every_fifth_test(len(df)))
    del fields["split_column"]
    with pytest.raises(DatasetError, match="The split column 'label' is also the target column"):
        describe(DataConfig(name="csv", **fields, target_column="label", split_column="label"))
    with pytest.raises(DatasetError, match="There is no column 'Part' in the file. Did you mean 'part'"):
        describe(DataConfig(name="csv", **fields, target_column="label", split_column="Part"))
    texts = pd.read_csv(write_text_csv(tmp_path / "texts.csv"))
    text_fields = with_parts(tmp_path, texts, every_fifth_test(len(texts)), "texts_split.csv")
    del text_fields["split_column"]
    with pytest.raises(DatasetError, match="The split column 'review' is also the text column"):
        describe(
            DataConfig(
                name="text_csv",
                **text_fields,
                target_column="sentiment",
                text_column="review",
                split_column="review",
            )
        )


def test_split_column_and_test_file_are_exclusive_and_for_csv_only(tmp_path):
    df = table(tmp_path)
    fields = with_parts(tmp_path, df, every_fifth_test(len(df)))
    both = DataConfig(name="csv", **fields, target_column="label", test_upload=fields["upload"])
    fields_of = {p.field for p in validate(RunConfig(data=both)) if p.severity == "error"}
    assert "data.split_column" in fields_of
    digits = DataConfig(name="digits", split_column="part", truncating="pre")
    problems = {(p.field, p.severity) for p in validate(RunConfig(data=digits))}
    assert ("data.split_column", "error") in problems and ("data.truncating", "warning") in problems


def test_a_second_file_is_the_test_set(tmp_path):
    train = table(tmp_path, n=120)
    test = pd.read_csv(write_table_csv(tmp_path / "other.csv", n=40, seed=5))
    train.to_csv(tmp_path / "train.csv", index=False)
    test[list(reversed(test.columns))].to_csv(tmp_path / "test.csv", index=False)  # column order may differ
    fields = upload(tmp_path / "train.csv")
    test_fields = upload(tmp_path / "test.csv")
    cfg = DataConfig(
        name="csv",
        **fields,
        target_column="label",
        test_upload=test_fields["upload"],
        test_file_name="test.csv",
    )
    assert describe(cfg).given_parts == (120, 0, 40)
    ds = load(cfg, validation_split=0.2, seed=0)
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (96, 24, 40)
    from sklearn.preprocessing import StandardScaler

    from core.data.split import take

    cols = ["a", "b", "c", "d", "flag"]
    np.testing.assert_array_equal(ds.y_test, (test.label == "yes").to_numpy(np.float32))
    # Scaled with the statistics of the first file's training rows only (validation is split off
    # them, seeded, as for a random split).
    train_x = train[cols].to_numpy(np.float64)
    y = (train.label == "yes").to_numpy(np.int64)
    train_rows, _, _ = take(np.arange(120), y, 0.2, 0, True)
    scaler = StandardScaler().fit(train_x[train_rows])
    expected = scaler.transform(test[cols].to_numpy(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(ds.x_test, expected)


@pytest.mark.parametrize(
    ("test_csv", "message"),
    [
        (
            "a,b,c,d,flag,label,extra\n1,2,3,4,True,yes,0\n",
            r"it has 'extra', which the training file does not",
        ),
        ("a,b,c,flag,label\n1,2,3,True,yes\n", r"it lacks 'd'"),
        ("a,b,c,d,flag,label\n", r"The test file test\.csv: The file has a header row .* but no data rows"),
        ("a,b,c,d,flag,label\n1,2,x,4,True,yes\n", r"In the test file test\.csv: Feature column\(s\) 'c'"),
        ("", r"The test file test\.csv: The file is empty"),
    ],
    ids=["extra-column", "missing-column", "no-rows", "text-in-a-feature", "empty"],
)
def test_a_test_file_that_does_not_fit_is_refused_naming_what_differs(tmp_path, test_csv, message):
    table(tmp_path).to_csv(tmp_path / "train.csv", index=False)
    fields = upload(tmp_path / "train.csv")
    test_fields = upload(test_csv, "test.csv")
    cfg = DataConfig(
        name="csv",
        **fields,
        target_column="label",
        test_upload=test_fields["upload"],
        test_file_name="test.csv",
    )
    with pytest.raises(DatasetError, match=message):
        describe(cfg)


def test_texts_cut_and_padded_as_pad_sequences_does():
    import keras

    texts = np.array(
        [
            "one two three four five six seven",
            "two three",
            "",
            "seven six five four three two one one two",
            "!!!",
        ],
        dtype=object,
    )
    maxlen = 5
    # The ids of whole texts (no cut, no padding): what pad_sequences is handed in the tutorial.
    layer = keras.layers.TextVectorization(
        max_tokens=20, standardize="lower_and_strip_punctuation", ragged=True
    )
    layer.adapt(texts.astype(str))
    ids = [list(map(int, row)) for row in layer(texts.astype(str)).to_list()]
    for truncating in ("pre", "post"):
        for padding in ("pre", "post"):
            ours = fit_vectorizer(texts, 20, maxlen, truncating, padding)(texts)
            theirs = keras.utils.pad_sequences(ids, maxlen=maxlen, truncating=truncating, padding=padding)
            np.testing.assert_array_equal(ours, theirs, err_msg=f"{truncating}/{padding}")
            assert ours.dtype == np.int32
    tutorial = fit_vectorizer(texts, 20, maxlen, "pre", "pre")(texts)
    assert tutorial[1].tolist()[:3] == [0, 0, 0] and tutorial[0].tolist()[-1] == ids[0][-1]  # the last tokens


def test_padding_settings_apply_to_text_sets_and_keras_imdb(tmp_path, monkeypatch):
    from tests.export.test_export import fake_keras_sets

    fake_keras_sets(monkeypatch)
    imdb = DataConfig(name="imdb", num_words=300, maxlen=10)
    default = load(imdb, validation_split=0.2, seed=0)
    tutorial = load(replace_pad(imdb, "pre", "pre"), validation_split=0.2, seed=0)
    np.testing.assert_array_equal(default.x_train, tutorial.x_train)  # Keras' imdb always padded pre
    post = load(replace_pad(imdb, "post", "post"), validation_split=0.2, seed=0)
    assert (post.x_train[:, -1] == 0).any() and not (post.x_train[:, 0] == 0).any()
    fields = upload(write_text_csv(tmp_path / "texts.csv"))
    texts = DataConfig(name="text_csv", **fields, target_column="sentiment", text_column="review", maxlen=60)
    today = load(texts, validation_split=0.2, seed=0)
    assert (today.x_train[:, 0] != 0).all()  # the first tokens, zeros at the end, as before
    front = load(replace_pad(texts, "pre", "pre"), validation_split=0.2, seed=0)
    assert (front.x_train[:, -1] != 0).all() and (front.x_train[:, 0] == 0).any()
    assert "the last tokens kept, padded at the front" in front.description


def replace_pad(cfg: DataConfig, truncating, padding) -> DataConfig:
    from dataclasses import replace

    return replace(cfg, truncating=truncating, padding=padding)


def test_a_label_no_training_row_holds_is_refused_naming_it(tmp_path):
    """Found by the audit: a class only in the test file (or the rows named test) was taken, turning
    a binary table into a three-class one whose third output never trains."""
    table(tmp_path).to_csv(tmp_path / "train.csv", index=False)
    fields = upload(tmp_path / "train.csv")
    test_fields = upload("a,b,c,d,flag,label\n1,2,3,4,True,yes\n1,2,3,4,True,maybe\n", "test.csv")
    cfg = DataConfig(
        name="csv", **fields, target_column="label", test_upload=test_fields["upload"], test_file_name="t.csv"
    )
    with pytest.raises(DatasetError, match="The label 'maybe' in 'label' appears only in the test file"):
        describe(cfg)
    df = table(tmp_path, n=100)
    parts = every_fifth_test(100, val_every=7)
    df.loc[parts == " VAL ", "label"] = "maybe"  # a class only the validation rows hold
    cfg = DataConfig(name="csv", **with_parts(tmp_path, df, parts), target_column="label")
    with pytest.raises(
        DatasetError, match="appears only in the rows the split column 'part' names validation"
    ):
        describe(cfg)
    df.loc[(parts == "train") & (np.arange(100) % 3 == 0), "label"] = "maybe"  # in training too: a class
    cfg = DataConfig(name="csv", **with_parts(tmp_path, df, parts, "ok.csv"), target_column="label")
    assert describe(cfg).n_classes == 3


def test_training_texts_without_a_word_are_a_message_not_a_tensorflow_error():
    """Found by the audit: texts of punctuation alone gave an empty vocabulary, and TextVectorization
    failed with FailedPreconditionError (Table not initialized) in load."""
    rows = "\n".join(f'"!!! ...",{i % 2},{"test" if i % 5 == 0 else "train"}' for i in range(40))
    fields = upload(f"text,label,part\n{rows}\n", "marks.csv")
    cfg = DataConfig(
        name="text_csv", **fields, text_column="text", target_column="label", split_column="part"
    )
    assert describe(cfg).given_parts == (32, 0, 8)
    with pytest.raises(DatasetError, match="None of the 25 training texts holds a word"):
        load(cfg, validation_split=0.2, seed=0)


def test_the_training_file_as_its_own_test_file_is_refused_and_a_lone_test_name_is_said(tmp_path):
    """The same content as training and test set would test the kept checkpoint on its training rows."""
    from tests.uploads import upload

    fields = upload(write_table_csv(tmp_path / "t.csv"), uploads_dir=tmp_path / "uploads")
    same = RunConfig()
    same.data = DataConfig(name="csv", **fields, target_column="label", test_upload=fields["upload"])
    problems = validate(same, uploads_dir=tmp_path / "uploads")
    assert any(p.field == "data.test_upload" and p.severity == "error" and "training file itself" in p.message
               for p in problems), problems  # fmt: skip
    lone = RunConfig()
    lone.data = DataConfig(name="csv", **fields, target_column="label", test_file_name="held-out.csv")
    problems = validate(lone, uploads_dir=tmp_path / "uploads")
    assert [(p.field, p.severity) for p in problems if p.field.startswith("data.test")] == [
        ("data.test_file_name", "warning")
    ]
