"""Your CSV, uploaded: a table of numeric features and a target, or a column of texts and labels.

The config names the upload by its content id (``data.upload``), never by a path; the file is read
with the options the config holds (``data.csv``), once per upload and options
(``core/data/csv_table.py``). The file may name its own split: a column naming each row's part
(``data.split_column``) or a second upload that is the test set (``data.test_upload``).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np

from core.codegen import Piece, ScriptContext, code
from core.config import DataConfig
from core.data.contract import Dataset, DatasetInfo, DatasetSpec, Setting, Uploads, capped, file_label
from core.data.csv_table import (
    INFER_TASK,
    config_table,
    csv_parts_pieces,
    csv_read_pieces,
    given_split,
    numeric_table,
    part_counts,
    read_config_csv,
    text_table,
)
from core.data.split import DATA_TUPLE, SCALED_PREP, SPLIT, SPLIT_GIVEN, split_and_scale
from core.data.text import pad_way, text_dataset, text_piece


def _task_line(ctx: ScriptContext) -> str:
    return "task = TASK" if ctx.task else "task = TASK or infer_task(df[TARGET_COLUMN])"


@dataclass(frozen=True)
class UploadedCsv(DatasetSpec):
    """Shared by both CSV sets: the reading options and the columns are settings of the script."""

    def script_settings(self, ctx: ScriptContext) -> list[Setting]:
        d = ctx.config.data
        rows = [
            ("CSV_PATH", ctx.csv_path, "the file the run was trained on"),
            ("SKIP_ROWS", d.csv.skip_rows, "lines before the header (or the first row)"),
            ("HEADER", d.csv.header, "False: the columns are named column 1..N"),
            ("DELIMITER", d.csv.delimiter, '"auto": detected as the app does'),
            ("DECIMAL", d.csv.decimal, "decimal separator"),
        ]
        if d.test_upload is not None:
            name = d.test_file_name or "test.csv"
            rows.append(("TEST_CSV_PATH", name, "the test set: the second file the run was given"))
        if self.input_kind == "sequence":
            rows.append(("TEXT_COLUMN", d.text_column, ""))
        if d.split_column is not None:
            rows.append(("SPLIT_COLUMN", d.split_column, "names each row's part: train, validation, test"))
        return [*rows, ("TARGET_COLUMN", d.target_column, "the column to predict")]

    def _info(
        self, cfg: DataConfig, columns, y, task: str, classes: list, shape: tuple[int, ...], part
    ) -> DatasetInfo:
        return DatasetInfo(
            task,
            self.input_kind,
            len(classes) or None,
            capped(len(y), cfg),
            tuple(map(str, columns)),
            shape,
            part_counts(part),
        )

    def _reader(self, ctx: ScriptContext) -> list[Piece]:
        given = given_split(ctx.config.data)
        return [
            DATA_TUPLE,
            SPLIT_GIVEN if given else SPLIT,
            *csv_read_pieces(ctx),
            *csv_parts_pieces(ctx),
            *([] if ctx.task else [INFER_TASK]),
        ]

    def _read_line(self, ctx: ScriptContext) -> str:
        return "df, part = read_parts(path)" if given_split(ctx.config.data) else "df = read_csv(path)"

    def _columns(self, cfg: DataConfig, uploads_dir: Uploads):
        """The first file's columns (the split column among them) and the rows with their parts."""
        df, part = config_table(cfg, uploads_dir, text=self.input_kind == "sequence")
        columns = read_config_csv(cfg, uploads_dir).columns
        return columns, df, part


@dataclass(frozen=True)
class TableCsv(UploadedCsv):
    def describe(self, cfg: DataConfig, uploads_dir: Uploads) -> DatasetInfo:
        columns, df, part = self._columns(cfg, uploads_dir)
        x, y, task, classes = numeric_table(df, cfg)
        return self._info(cfg, columns, y, task, classes, (x.shape[1],), part)

    def load(self, cfg: DataConfig, *, validation_split: float, seed: int, uploads_dir: Uploads) -> Dataset:
        df, part = config_table(cfg, uploads_dir, text=False)
        x, y, task, classes = numeric_table(df, cfg)
        return split_and_scale(
            x.to_numpy(np.float64),
            y,
            task=task,
            classes=classes,
            names=list(x.columns),
            label=f"{file_label(cfg)} (target {cfg.target_column!r})",
            cfg=cfg,
            validation_split=validation_split,
            seed=seed,
            part=part,
        )

    def script_pieces(self, ctx: ScriptContext) -> list[Piece]:
        source = code(
            '''
            def load_data(path) -> Data:
                """Your CSV: numeric feature columns, standardized; the target column encoded."""
                <<read_line>>
                <<task_line>>
                y, classes = encode_target(df[TARGET_COLUMN], task)
                features = df.drop(columns=[TARGET_COLUMN]).apply(pd.to_numeric)
                x = features.astype(np.float64).to_numpy(np.float64)
                <<split_line>>

            <<prep>>

                return to_data(prep, y, train, val, test, task, classes)
            ''',
            read_line=self._read_line(ctx),
            task_line=_task_line(ctx),
            split_line=(
                'train, val, test = split_given(y, part, classify=task != "regression")'
                if given_split(ctx.config.data)
                else 'train, val, test = split_indices(y, classify=task != "regression")'
            ),
            prep=textwrap.indent(SCALED_PREP, "    "),
        )
        return [*self._reader(ctx), Piece(source, ("from sklearn.preprocessing import StandardScaler",))]


@dataclass(frozen=True)
class TextCsv(UploadedCsv):
    def describe(self, cfg: DataConfig, uploads_dir: Uploads) -> DatasetInfo:
        columns, df, part = self._columns(cfg, uploads_dir)
        _, y, task, classes = text_table(df, cfg)
        return self._info(cfg, columns, y, task, classes, (cfg.maxlen,), part)

    def load(self, cfg: DataConfig, *, validation_split: float, seed: int, uploads_dir: Uploads) -> Dataset:
        df, part = config_table(cfg, uploads_dir, text=True)
        texts, y, task, classes = text_table(df, cfg)
        return text_dataset(texts, y, task, classes, cfg, validation_split, seed, file_label(cfg), part)

    def script_pieces(self, ctx: ScriptContext) -> list[Piece]:
        given = given_split(ctx.config.data)
        source = code(
            '''
            def load_data(path) -> Data:
                """Your CSV of texts: the text column tokenized, the label column encoded."""
                <<read_line>>
                <<task_line>>
                y, classes = encode_target(df[TARGET_COLUMN], task)
                texts = df[TEXT_COLUMN].astype(str).tolist()
                return vectorized(texts, y, task, classes<<part>>)
            ''',
            read_line=self._read_line(ctx),
            task_line=_task_line(ctx),
            part=", part" if given else "",
        )
        own = pad_way(ctx.config.data, self.default_pad) == ("post", "post")
        return [*self._reader(ctx), text_piece(given_split=given, own_padding=own), Piece(source)]


CSV = TableCsv(
    "csv",
    "Your CSV (table)",
    "Upload a CSV with numeric feature columns and pick the column to predict.",
    "csv",
    None,
    "tabular",
    True,
)
TEXT_CSV = TextCsv(
    "text_csv",
    "Your CSV (text)",
    "Upload a CSV with a text column and a label column, e.g. the 50,000 IMDB reviews CSV.",
    "csv",
    None,
    "sequence",
    True,
)
