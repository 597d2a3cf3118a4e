"""CSV files: read them defensively, then check the columns the config names.

The structure is checked with the csv module before pandas sees the text: pandas silently turns
a header shorter than the rows into a hidden index (scikit-learn's own wine_data.csv trains on
4 of its 13 features that way) and fills a longer one with empty columns. Here such a file is
refused with what was found and the fix (``DatasetError.fixes``, offered as buttons by the page).
The exported script reads the file with the same calls (``CSV_READ`` below).
"""

from __future__ import annotations

import collections
import csv
import inspect
import io
import math
import os
import pathlib
import re
from dataclasses import astuple, dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.codegen import Piece, ScriptContext, code
from core.config import SPLIT_PARTS, CsvFormat, DataConfig
from core.data import uploads
from core.data.checked_cache import CheckedCache
from core.data.contract import MIN_ROWS, DatasetError

MAX_INFERRED_CLASSES = 50  # more distinct values than this is not inferred as classes
MAX_UPLOAD_BYTES = 200 * 2**20  # the app's upload limit (.streamlit/config.toml maxUploadSize)
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {"auto": "detect", ",": "comma ,", ";": "semicolon ;", "\t": "tab", "|": "pipe |"}
_DETECT_ORDER = ("\t", ";", "|", ",")  # on a tie: a comma inside ;-separated rows is a decimal comma
_CACHE_SIZE = 4  # parsed uploads kept (content id and reading options), for the reruns of a page
_DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+$")
_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")


def _mb(n: float) -> str:
    value = n / 2**20
    return f"{value:,.1f}" if value >= 0.1 else f"{value:.2g}"


@dataclass(frozen=True)
class CsvTable:
    """A CSV read with given options: the frame, and what the page shows about its structure."""

    frame: pd.DataFrame
    delimiter: str  # the one used (resolved when the config says auto)
    header_line: int | None  # file line of the header row; None without one
    notes: tuple[str, ...]  # the structure found and the choices made, one sentence each


def read_csv(
    source: str | os.PathLike | bytes, *, fmt: CsvFormat | None = None, max_bytes: int | None = None
) -> pd.DataFrame:
    """A CSV file (path or bytes) as a DataFrame, or a DatasetError saying what is wrong."""
    return read_table(source, fmt=fmt, max_bytes=max_bytes).frame


def read_table(
    source: str | os.PathLike | bytes, *, fmt: CsvFormat | None = None, max_bytes: int | None = None
) -> CsvTable:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if max_bytes is not None and len(data) > max_bytes:
            raise DatasetError(f"The file is {_mb(len(data))} MB; the limit is {max_bytes / 2**20:g} MB.")
    else:
        path = pathlib.Path(source)
        if not path.is_file():
            raise DatasetError("The CSV file is not there (any more). Upload it again.")
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise DatasetError(f"The file is {_mb(size)} MB; the limit is {max_bytes / 2**20:g} MB.")
        data = path.read_bytes()
    return _table(_decode(data), fmt or CsvFormat())


def kept_text(text: str, skip_rows: int) -> str:
    """The text after the first ``skip_rows`` lines (what the exported script does too)."""
    parts = text.split("\n", skip_rows)
    return parts[skip_rows] if len(parts) > skip_rows else ""


def detect_delimiter(text: str) -> str | None:
    """The delimiter that splits every row of the first 200 into the same number of
    fields (more than one), preferring one the first row agrees with, then tab, ;, |
    and "," in that order (a comma inside ;-separated rows is a decimal comma).
    None when none fits. Scripts exported with delimiter "auto" carry this function."""
    import csv
    import io

    sample = text[:262144]
    if len(sample) < len(text):
        sample = sample[: sample.rfind("\n") + 1] or sample
    fits = []
    for rank, sep in enumerate(("\t", ";", "|", ",")):
        counts = []
        for row in csv.reader(io.StringIO(sample, newline=""), delimiter=sep):
            if row:
                counts.append(len(row))
            if len(counts) > 200:
                break
        body = counts[1:] or counts
        if body and min(body) > 1 and len(set(body)) == 1:
            fits.append((counts[0] != body[0], rank, sep))
    return min(fits)[2] if fits else None


def _records(text: str, sep: str) -> list[tuple[int, int, list[str]]]:
    """(first line, field count, fields) of every non-blank record; lines count from 1 in ``text``."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    out = []
    line = 1
    try:
        for row in reader:
            if row:
                out.append((line, len(row), row if len(out) < 2 else []))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise DatasetError(f"The file could not be read as CSV: line {reader.line_num}: {exc}.") from None
    return out


def _lines(numbers: list[int], *, limit: int = 5) -> str:
    shown = ", ".join(f"{n:,}" for n in numbers[:limit])
    more = f" and {len(numbers) - limit:,} more" if len(numbers) > limit else ""
    return f"line{'s' if len(numbers) > 1 else ''} {shown}{more}"


def _mixed_delimiters(text: str, offset: int) -> str | None:
    """ "line 4 by ';' and lines 2, 3 by ','" when the rows use different delimiters."""
    sample = text[:262144]
    used = {}
    for sep in DELIMITERS:
        lines = {ln + offset for ln, n, _ in _records(sample, sep)[:200] if n > 1}
        if lines:
            used[sep] = lines
    by = {}
    for sep, lines in used.items():
        others = set().union(*(v for s, v in used.items() if s != sep))
        if only := sorted(lines - others):
            by[sep] = only
    if len(by) < 2:
        return None
    fewest_first = sorted(by.items(), key=lambda item: len(item[1]))
    return " and ".join(f"{_lines(lines)} by {sep!r}" for sep, lines in fewest_first)


def _table(text: str, fmt: CsvFormat) -> CsvTable:
    if not text.strip():
        raise DatasetError("The file is empty.")
    kept = kept_text(text, fmt.skip_rows)
    skipped = fmt.skip_rows
    if not kept.strip():
        raise DatasetError(
            f"Nothing is left after skipping {skipped} line{'s' if skipped != 1 else ''}: "
            "lower the lines to skip (data.csv.skip_rows)."
        )
    notes: list[str] = []
    sep = fmt.delimiter
    if sep == "auto":
        found = detect_delimiter(kept)
        if found is None:
            mixed = _mixed_delimiters(kept, skipped)
            if mixed:
                raise DatasetError(
                    f"The rows are not separated the same way: {mixed}. Use one delimiter throughout "
                    "(save the file again from a spreadsheet), or pick the delimiter (data.csv.delimiter) "
                    "and fix the other lines."
                )
            sep = ","  # one column, or ragged rows: the structure checks below say which
        else:
            sep = found
            notes.append(f"Delimiter: {DELIMITER_NAMES[sep].split()[0]} (detected).")
    if sep == fmt.decimal:
        raise DatasetError(
            f"The delimiter and the decimal separator are both {sep!r}: pick ';' as the delimiter "
            "(data.csv.delimiter), or '.' as the decimal separator (data.csv.decimal).",
            fixes=[("Delimiter ;", {"data.csv.delimiter": ";"})],
        )
    records = _records(kept, sep)

    def where(line: int) -> int:
        return line + skipped

    if not records:
        raise DatasetError("The file is empty.")
    head, rows = (records[0], records[1:]) if fmt.header else (None, records)
    if not rows:
        cols = ", ".join(records[0][2])
        raise DatasetError(f"The file has a header row ({cols}) but no data rows.")
    # The rows' field count: the most common one; on a tie the header's, else the first row's.
    tally = collections.Counter(n for _, n, _ in rows)
    top = max(tally.values())
    tied = [n for n, k in tally.items() if k == top]
    width = (
        head[1] if head is not None and head[1] in tied else (rows[0][1] if rows[0][1] in tied else tied[0])
    )
    lead = records[0]
    lead_fits = lead[1] == width
    through = skipped + lead[0]  # skip_rows that skips the lead line too
    skip_fix = [
        (
            "Skip the first line" if through == 1 else f"Skip the first {through} lines",
            {"data.csv.skip_rows": through},
        )
    ]
    if not lead_fits and through <= 100:
        ragged_rest = [where(ln) for ln, n, _ in records[1:] if n != width]
        what = "it looks like a metadata line (a title, or counts such as scikit-learn's '178,13,…')"
        if lead[1] > width:
            what = "the header names more columns than the rows have"
        if not ragged_rest:
            raise DatasetError(
                f"Line {where(lead[0])} has {lead[1]} field{'s' if lead[1] != 1 else ''}, the rows have "
                f"{width}: {what}. Skip it (data.csv.skip_rows = {through}), "
                "or fix that line.",
                fixes=skip_fix,
            )
    bad = [where(ln) for ln, n, _ in rows if n != width]
    if bad:
        odd = pd.Series([n for _, n, _ in rows if n != width]).value_counts().index.tolist()
        raise DatasetError(
            f"Rows have different numbers of fields: most have {width}, but {_lines(bad)} "
            f"{'has' if len(bad) == 1 else 'have'} {' or '.join(map(str, sorted(odd)))} "
            f"(delimiter {sep!r}). Fix those lines (a missing or extra delimiter, or a text holding "
            "the delimiter without quotes), or pick the right delimiter (data.csv.delimiter)."
        )
    if width == 1 and fmt.delimiter == "auto":
        notes.append("One column: no delimiter found on every row.")
    if head is not None:
        names = head[2]
        numeric = [v for v in names if _NUMBER.match(v)]
        if len(numeric) == len(names) and len(names) > 0:
            shown = ", ".join(names[:4]) + (", …" if len(names) > 4 else "")
            raise DatasetError(
                f"The header row (line {where(head[0])}) holds only numbers ({shown}): it looks like a data "
                f"row. Choose no header row (data.csv.header = false): the columns are then named "
                f"column 1..{width}.",
                fixes=[("No header row", {"data.csv.header": False})],
            )
        if problem := _header_names_problem(names, where(head[0])):
            raise DatasetError(problem)
    else:
        notes.append(f"No header row: columns are named column 1..{width}.")
    if skipped:
        notes.append("Skipped line 1." if skipped == 1 else f"Skipped lines 1 to {skipped}.")
    frame = _frame(kept, sep, fmt.header, fmt.decimal)
    return CsvTable(frame, sep, where(head[0]) if head else None, tuple(notes))


def _header_names_problem(names: list[str], line: int) -> str | None:
    """A header row pandas would not read as given: it renames a repeated name ("a", "a.1") and an
    empty one ("Unnamed: 1"), so a column chosen by name could silently be another one."""
    for i, name in enumerate(names, 1):
        if name == "":
            return (
                f"In the header row (line {line:,}), column {i:,} has no name. Name it (or delete the "
                "column, if it is a saved row index), or choose no header row (data.csv.header = false)."
            )
    first: dict[str, int] = {}
    for i, name in enumerate(names, 1):
        if name in first:
            return (
                f"The header row (line {line:,}) names the column {_quote(name)} twice (columns "
                f"{first[name]:,} and {i:,}): each column needs its own name. Rename one, or choose no "
                "header row (data.csv.header = false)."
            )
        first[name] = i
    return None


def _quote(value: Any, limit: int = 60) -> str:
    """A cell or a name quoted in a message: its repr, cut to ``limit`` characters with its length."""
    if not isinstance(value, str) or len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value):,} characters)"


def _frame(kept: str, sep: str, header: bool, decimal: str) -> pd.DataFrame:
    """pandas, after the structure checks, never with an implicit index (``index_col=False``); the
    exported script reads the file with these same calls."""
    try:
        df = pd.read_csv(
            io.StringIO(kept), sep=sep, header=0 if header else None, index_col=False, decimal=decimal,
            low_memory=False,
        )  # fmt: skip
    except pd.errors.EmptyDataError:
        raise DatasetError("The file is empty.") from None
    except (pd.errors.ParserError, ValueError, OverflowError) as exc:
        raise DatasetError(f"The file could not be read as CSV: {str(exc).strip()}") from None
    if not header:
        df.columns = [f"column {i}" for i in range(1, df.shape[1] + 1)]
    return df


def _decode(data: bytes) -> str:
    sample = data[:65536]
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DatasetError(
            "This file is UTF-16 text, not UTF-8. Re-save it as 'CSV UTF-8' and upload it again."
        )
    if sample.startswith(b"PK\x03\x04"):
        raise DatasetError(
            "This file is not a CSV text file: it is an Excel workbook or a zip archive. "
            "Export it as CSV (comma-separated) first."
        )
    if sample.startswith(b"\x1f\x8b"):
        raise DatasetError("This file is not a CSV text file: it is gzip-compressed. Decompress it first.")
    control = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    if b"\x00" in sample or control > 0.05 * len(sample):
        raise DatasetError(
            "This file is not a CSV text file (it contains binary data). Upload a comma-separated text file."
        )
    try:
        return data.decode("utf-8-sig")  # also plain UTF-8; drops Excel's byte-order mark
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DatasetError(
            f"The file is not UTF-8 text (byte 0x{data[exc.start]:02X} on line {line} cannot be decoded). "
            "Re-save it as 'CSV UTF-8' and upload it again."
        ) from None


_GONE = "The uploaded CSV is not on this server (any more): upload the file again."
_parsed: CheckedCache[CsvTable] = CheckedCache(_CACHE_SIZE)


def read_upload(
    upload_id: str | None, fmt: CsvFormat, uploads_dir: str | os.PathLike | None = None
) -> CsvTable:
    """An uploaded CSV read with ``fmt``: parsed once per (content id, options), then from a bounded
    cache (the page asks on every rerun). Shared: never modify the frame in place."""
    if not upload_id:
        raise DatasetError("Upload a CSV file first.")
    try:
        path = uploads.path_of(upload_id, uploads_dir)
    except uploads.UploadError as exc:
        raise DatasetError(str(exc)) from None
    try:
        st = path.stat()
    except OSError:
        raise DatasetError(_GONE) from None
    # The id names the content; size and mtime too, in case the file was changed on disk after all.
    key = (upload_id, str(path.parent), st.st_size, st.st_mtime_ns, *astuple(fmt))
    return _parsed.get(key, lambda: read_table(path, fmt=fmt, max_bytes=MAX_UPLOAD_BYTES))


def read_config_csv(cfg: DataConfig, uploads_dir: str | os.PathLike | None) -> pd.DataFrame:
    return read_upload(cfg.upload, cfg.csv, uploads_dir).frame


# -- the parts a file names: a split column, or a second file as the test set ---------------------

PART_CODES = {"train": 0, "validation": 1, "test": 2}  # split.TRAIN, VALIDATION, TEST


def config_table(
    cfg: DataConfig, uploads_dir: str | os.PathLike | None, *, text: bool
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The rows a run uses and, when the data names them, each row's part (0 train, 1 validation,
    2 test): from ``data.split_column`` (dropped from the frame: it is no feature), or the rows of
    ``data.test_upload`` appended as the test part. None: the split is drawn at random."""
    df = read_config_csv(cfg, uploads_dir)
    if cfg.split_column is not None and cfg.test_upload is not None:
        raise DatasetError(
            "Choose one way to name the test set: a split column (data.split_column) or a second "
            "file (data.test_upload), not both."
        )
    if cfg.split_column is not None:
        df, part = split_by_column(df, cfg)
    elif cfg.test_upload is not None:
        test = read_test_csv(cfg, uploads_dir)
        df, part = with_test_file(df, test, cfg, text=text)
    else:
        return df, None
    _labels_seen_in_training(df, part, cfg)
    return df, part


def _labels_seen_in_training(df: pd.DataFrame, part: np.ndarray, cfg: DataConfig) -> None:
    """A class only the test (or validation) rows hold would add an output the model never trains
    and change the task (two classes in training, three in all): refused, naming the label."""
    name = cfg.target_column
    if name is None or name not in df.columns:
        return  # the table's own checks name the missing target
    target = df[name]
    if (cfg.task or infer_task(target)) == "regression":
        return
    seen = set(target[part == 0].dropna())
    where = (
        "the test file" if cfg.test_upload is not None else f"the rows the split column {cfg.split_column!r}"
    )
    for code_, word in ((2, "test"), (1, "validation")):
        rows = target[part == code_].dropna()
        new = rows[~rows.isin(seen)]
        if len(new):
            value = new.iloc[0]
            value = value.item() if isinstance(value, np.generic) else value
            said = f"{where} names {word}" if cfg.test_upload is None else where
            raise DatasetError(
                f"The label {_quote(value)} in {name!r} appears only in {said} "
                f"({len(new):,} rows), never in a training row: the model could not learn it. Give "
                f"training rows of that class, or remove those rows."
            )


def split_by_column(df: pd.DataFrame, cfg: DataConfig) -> tuple[pd.DataFrame, np.ndarray]:
    """The frame without the split column, and the part each row names there (train, test,
    validation or val; case and surrounding spaces do not matter). Anything else is refused,
    naming the value and how many rows hold it; so is a file without train or test rows."""
    name = cfg.split_column
    column = _column(df, name, "split column (the one naming each row's part)")
    for other, what in ((cfg.target_column, "target"), (cfg.text_column, "text")):
        if name == other:
            raise DatasetError(
                f"The split column {name!r} is also the {what} column: pick a column that holds "
                "train / test / validation for each row (data.split_column)."
            )
    words = column.map(lambda v: v.strip().casefold() if isinstance(v, str) else None)
    codes = words.map(lambda w: PART_CODES.get(SPLIT_PARTS.get(w, ""), -1) if w is not None else -1)
    bad = codes.to_numpy() < 0
    if bad.any():
        rows_of: dict[str, list[int]] = {}  # each refused value: the data rows holding it
        for pos in np.flatnonzero(bad):
            value = column.iloc[pos]
            value = value.item() if isinstance(value, np.generic) else value  # 1, not np.int64(1)
            rows_of.setdefault("an empty cell" if _blank(value) else _quote(value), []).append(int(pos) + 1)
        listed = [
            f"{value} ({len(rows):,} row{'s' if len(rows) != 1 else ''}, first on data row {rows[0]:,})"
            for value, rows in list(rows_of.items())[:5]
        ]
        tally = rows_of
        more = f" and {len(tally) - 5:,} other values" if len(tally) > 5 else ""
        raise DatasetError(
            f"The split column {name!r} holds {', '.join(listed)}{more}: each row must say train, test "
            "or validation (val), in any case. Fix those cells, or pick another split column."
        )
    part = codes.to_numpy(dtype=np.int64)
    for code_, word in ((0, "train"), (2, "test")):
        if not (part == code_).any():
            found = ", ".join(
                f"{w} ({int((part == c).sum()):,})" for w, c in PART_CODES.items() if (part == c).any()
            )
            raise DatasetError(
                f"The split column {name!r} names no {word} rows (it names {found}): a run needs "
                f"train and test rows. Mark some rows {word}, or choose a random split."
            )
    return df.drop(columns=[name]), part


def split_column_guess(df: pd.DataFrame) -> str | None:
    """A column that already names each row's part (every cell train / test / validation / val, with
    train and test rows), for the page to offer first; the last one if several do. A numeric column
    never names parts."""
    for name in reversed(df.columns):
        column = df[name]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            continue
        words = set(column.map(lambda v: v.strip().casefold() if isinstance(v, str) else None))
        parts = {SPLIT_PARTS.get(w) for w in words if w is not None}
        if None not in words and None not in parts and {"train", "test"} <= parts:
            return str(name)
    return None


def _blank(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or (isinstance(value, str) and not value.strip())
    )


def part_counts(part: np.ndarray | None) -> tuple[int, int, int] | None:
    """Rows named train, validation and test."""
    if part is None:
        return None
    return tuple(int((part == c).sum()) for c in (0, 1, 2))  # type: ignore[return-value]


def read_test_csv(cfg: DataConfig, uploads_dir: str | os.PathLike | None) -> pd.DataFrame:
    """The second file, read the way the first one is (data.csv)."""
    name = cfg.test_file_name or "the test file"
    try:
        return read_upload(cfg.test_upload, cfg.csv, uploads_dir).frame
    except DatasetError as exc:
        raise DatasetError(f"The test file {name}: {exc}", fixes=exc.fixes) from None


def with_test_file(
    df: pd.DataFrame, test: pd.DataFrame, cfg: DataConfig, *, text: bool
) -> tuple[pd.DataFrame, np.ndarray]:
    """Both files as one frame (the test rows last, in the first file's column order) and each
    row's part; the test file must have exactly the first file's columns."""
    name = cfg.test_file_name or "the test file"
    missing = [c for c in df.columns if c not in test.columns]
    extra = [c for c in test.columns if c not in df.columns]
    if missing or extra:
        said = []
        if missing:
            said.append(f"lacks {', '.join(map(_quote, missing))}")
        if extra:
            said.append(f"has {', '.join(map(_quote, extra))}, which the training file does not")
        raise DatasetError(
            f"The test file {name} must have the training file's columns; it {' and '.join(said)}. "
            "Give both files the same header row."
        )
    test = test[list(df.columns)]
    problems = text_problems(test, cfg) if text else table_problems(test, cfg)[0]
    if problems:
        raise DatasetError(f"In the test file {name}: " + " ".join(problems))
    both = pd.concat([df, test], ignore_index=True)
    part = np.concatenate([np.zeros(len(df), np.int64), np.full(len(test), 2, np.int64)])
    return both, part


def _column(df: pd.DataFrame, name: str | None, what: str) -> pd.Series:
    cols = ", ".join(map(str, df.columns))
    if not name:
        raise DatasetError(f"Choose the {what}. Columns: {cols}.")
    if name not in df.columns:
        near = [c for c in df.columns if str(c).strip().casefold() == name.strip().casefold()]
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise DatasetError(f"There is no column {name!r} in the file.{hint} Columns: {cols}.")
    return df[name]


def _rows(mask: pd.Series) -> str:
    """'3 cells, first on data row 5' for the True entries of mask (data rows count from 1)."""
    n = int(mask.sum())
    first = int(np.flatnonzero(mask.to_numpy())[0]) + 1
    return f"{n:,} {'cell' if n == 1 else 'cells'}, first on data row {first:,}"


def numeric_table(df: pd.DataFrame, cfg: DataConfig):
    """Numeric features (float) and the encoded target, with every problem of the table at once."""
    target = _column(df, cfg.target_column, "target column (the one to predict)")
    if len(df.columns) < 2:
        raise DatasetError(f"The file has only the target column {cfg.target_column!r}; add feature columns.")
    _check_min_rows(df)
    problems, fixes = table_problems(df, cfg)
    if problems:
        raise DatasetError(" ".join(problems), fixes=fixes)
    y, task, classes = _encode_target(target, cfg.task)
    features = df.drop(columns=[cfg.target_column])
    numbers = features.apply(_as_numbers).astype(np.float64)
    return numbers, y, task, classes


def table_problems(df: pd.DataFrame, cfg: DataConfig) -> tuple[list[str], list]:
    """Every problem of a table's cells at once (feature columns that are not numbers, empty or
    infinite cells), and the fixes the page may offer."""
    features = df.drop(columns=[cfg.target_column])
    problems = []
    text_cols, comma_cols = [], []
    for name, col in features.items():
        example = _non_numeric_example(col)
        if example is None:
            continue
        where = f"{name!r} (e.g. {_quote(example[1])} on data row {example[0]:,})"
        decimal_comma = isinstance(example[1], str) and _DECIMAL_COMMA.match(example[1].strip())
        (comma_cols if decimal_comma and cfg.csv.decimal == "." else text_cols).append(where)
    fixes = []
    if comma_cols:
        problems.append(
            f"Feature column(s) {', '.join(comma_cols)} hold numbers with a decimal comma: choose ',' as "
            "the decimal separator (data.csv.decimal)."
        )
        fixes.append(("Decimal comma", {"data.csv.decimal": ","}))
    if text_cols:
        problems.append(
            f"Feature column(s) {', '.join(text_cols)} are not numeric: remove them or encode them as "
            "numbers (e.g. one-hot) before uploading."
        )
    problems += _cell_problems(df)
    return problems, fixes


def text_table(df: pd.DataFrame, cfg: DataConfig):
    """Texts and encoded labels of a text CSV; other columns are ignored."""
    text = _column(df, cfg.text_column, "text column (the reviews or documents)")
    target = _column(df, cfg.target_column, "label column (the one to predict)")
    if cfg.text_column == cfg.target_column:
        raise DatasetError("The text column and the label column must be different columns.")
    _check_min_rows(df)
    # Empty strings read as NaN: a column of only empty texts is a float column, not one of numbers.
    if pd.api.types.is_numeric_dtype(text) and not text.isna().all():
        raise DatasetError(
            f"The text column {cfg.text_column!r} holds numbers, not text. Pick the text column."
        )
    problems = text_problems(df, cfg)
    if problems:
        raise DatasetError(" ".join(problems))
    if cfg.task == "regression":
        raise DatasetError("Text data takes class labels: set the task to binary or multiclass.")
    y, task, classes = _encode_target(target, cfg.task)
    if task == "regression":
        raise DatasetError(
            f"The label column {cfg.target_column!r} looks continuous (many different numbers); text data "
            "takes class labels. Pick another label column, or set the task to multiclass if they are "
            "classes."
        )
    return text.astype(str).tolist(), y, task, classes


def text_problems(df: pd.DataFrame, cfg: DataConfig) -> list[str]:
    """Empty texts, and empty or infinite labels."""
    text = df[cfg.text_column]
    empty = text.isna() | (text.astype(str).str.strip() == "")
    problems = []
    if empty.any():
        problems.append(
            f"The text column {cfg.text_column!r} has empty texts ({_rows(empty)}): remove those rows."
        )
    return problems + _cell_problems(df[[cfg.target_column]])


def _check_min_rows(df: pd.DataFrame) -> None:
    if len(df) < MIN_ROWS:
        raise DatasetError(
            f"The file has only {len(df)} data rows; at least {MIN_ROWS} are needed to split off "
            "training, validation and test data."
        )


def _non_numeric_example(col: pd.Series) -> tuple[int, Any] | None:
    """(data row, value) of the first value that is not a number, or None for a numeric column."""
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return None
    present = col.dropna()
    as_numbers = _as_numbers(present)
    bad = present[as_numbers.isna()]
    if bad.empty:
        return None
    return int(col.index.get_loc(bad.index[0])) + 1, bad.iloc[0]


def _cell_problems(df: pd.DataFrame) -> list[str]:
    """Empty and infinite cells, named by column."""
    problems = []
    missing = [f"{name!r} ({_rows(col.isna())})" for name, col in df.items() if col.isna().any()]
    if missing:
        problems.append(f"Empty cells in {', '.join(missing)}: fill them in or drop those rows.")
    infinite = []
    for name, col in df.items():
        if pd.api.types.is_bool_dtype(col):
            continue
        if pd.api.types.is_float_dtype(col):
            mask = pd.Series(np.isinf(col.to_numpy(dtype=np.float64)), index=col.index)
            example = ""
        elif not pd.api.types.is_numeric_dtype(col) and _non_numeric_example(col) is None:
            # numbers pandas could not hold (a 400-digit cell): it leaves them as text
            as_numbers = _as_numbers(col)
            mask = pd.Series(np.isinf(as_numbers.to_numpy(dtype=np.float64)), index=col.index)
            example = _huge_example(col[mask]) if mask.any() else ""
        else:
            continue
        if mask.any():
            infinite.append(f"{name!r} ({_rows(mask)}{example})")
    if infinite:
        problems.append(
            f"Infinite values, or numbers too large for a 64-bit float (beyond ±1.8e308), in "
            f"{', '.join(infinite)}: replace them with finite numbers."
        )
    return problems


def _as_numbers(col: pd.Series) -> pd.Series:
    """Numbers as float64: text that is no number is NaN, a number too large for a float is inf."""
    if pd.api.types.is_numeric_dtype(col):
        return col
    try:
        return pd.to_numeric(col, errors="coerce")
    except OverflowError:  # Python ints too large for a float (a 400-digit cell)

        def one(value: Any) -> float:
            try:
                return float(value)
            except OverflowError:
                return -math.inf if int(value) < 0 else math.inf
            except (TypeError, ValueError):
                return math.nan

        return col.map(one).astype(np.float64)


def _huge_example(cells: pd.Series) -> str:
    text = str(cells.iloc[0]).strip()
    digits = len(re.sub(r"[^0-9]", "", text.split("e")[0].split("E")[0]))
    return f": a {digits:,}-digit number" if digits > 20 else f": {text[:40]!r}"


def infer_task(y: pd.Series) -> str:
    """binary for 2 values; multiclass for a few whole numbers or labels; regression for other numbers."""
    values = _two_values(y)
    distinct = int(values.nunique())
    name = f"The target column {y.name!r}" if y.name is not None else "The target"
    if distinct == 2:
        return "binary"
    few = distinct <= MAX_INFERRED_CLASSES and distinct <= len(values) / 2
    if not pd.api.types.is_numeric_dtype(values):
        if few:
            return "multiclass"
        raise DatasetError(
            f"{name} holds text with {distinct:,} different values: too many to be classes, and "
            "regression needs numbers. Pick another target column, or set the task to multiclass."
        )
    whole = bool(np.all(np.mod(values.to_numpy(dtype=np.float64), 1) == 0))
    return "multiclass" if whole and few else "regression"


def _two_values(y: pd.Series) -> pd.Series:
    """The present values of a target, which must hold at least two different ones."""
    values = y.dropna()
    if values.nunique() < 2:
        name = f"The target column {y.name!r}" if y.name is not None else "The target"
        only = f" ({_label_text(values.iloc[0])!r})" if len(values) else ""
        raise DatasetError(
            f"{name} has only one value{only}: there is nothing to learn. "
            "Pick another target column, or add rows of the other classes."
        )
    return values


def _label_text(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _encode_target(target: pd.Series, task: str | None) -> tuple[np.ndarray, str, list[str]]:
    """Target as numbers (class codes 0..k-1 in sorted label order) and its class names."""
    _two_values(target)
    task = task or infer_task(target)
    name = target.name
    if task == "regression":
        example = _non_numeric_example(target)
        if example is not None:
            raise DatasetError(
                f"Regression needs a numeric target; {name!r} holds text such as {example[1]!r} "
                f"(data row {example[0]:,}). Set the task to binary or multiclass, or pick another column."
            )
        return _as_numbers(target).to_numpy(dtype=np.float64), task, []
    codes, uniques = pd.factorize(target, sort=True)
    if task == "binary" and len(uniques) != 2:
        raise DatasetError(
            f"Binary classification needs exactly 2 classes; {name!r} has {len(uniques):,} different values. "
            "Set the task to multiclass, or pick another target column."
        )
    return codes.astype(np.int64), task, [_label_text(v) for v in uniques]


# The exported script's reader, from the same rules.

CSV_READ = Piece(
    code('''
        def read_csv(path):
            """The CSV as the app reads it: UTF-8 (a byte-order mark is dropped), the first
            SKIP_ROWS lines skipped, then a header row (or columns named column 1..N), DELIMITER
            and DECIMAL as the run chose them; never an implicit index column."""
            with open(path, "rb") as file:
                text = file.read().decode("utf-8-sig")
            parts = text.split("\\n", SKIP_ROWS)
            text = parts[SKIP_ROWS] if len(parts) > SKIP_ROWS else ""
            sep = (detect_delimiter(text) or ",") if DELIMITER == "auto" else DELIMITER
            df = pd.read_csv(
                io.StringIO(text),
                sep=sep,
                header=0 if HEADER else None,
                index_col=False,
                decimal=DECIMAL,
                low_memory=False,
            )
            if not HEADER:
                df.columns = [f"column {i}" for i in range(1, df.shape[1] + 1)]
            return df


        def encode_target(target, task):
            """Regression: the numbers. Classes: codes 0..k-1 in sorted label order."""
            if task == "regression":
                return pd.to_numeric(target).to_numpy(dtype=np.float64), []
            codes, uniques = pd.factorize(target, sort=True)
            return codes.astype(np.int64), [label_text(v) for v in uniques]


        def label_text(value):
            """A class name; a whole-number float label 1.0 is called "1", as the app does."""
            if isinstance(value, float) and value.is_integer():
                return str(int(value))
            return str(value)
    '''),
    ("import io", "import pandas as pd"),
)


def csv_read_pieces(ctx: ScriptContext) -> list[Piece]:
    """The reader, and, for delimiter "auto", the app's own detection rule (its source, verbatim)."""
    if ctx.config.data.csv.delimiter != "auto":
        return [CSV_READ]
    return [Piece(inspect.getsource(detect_delimiter).strip("\n")), CSV_READ]


INFER_TASK = Piece(
    code(f'''
        def infer_task(target):
            """binary for 2 values; multiclass for a few whole numbers or labels (at most
            {MAX_INFERRED_CLASSES}, and at most one per two rows); regression otherwise."""
            values = target.dropna()
            distinct = values.nunique()
            if distinct == 2:
                return "binary"
            if not pd.api.types.is_numeric_dtype(values):
                return "multiclass"
            few = distinct <= {MAX_INFERRED_CLASSES} and distinct <= len(values) / 2
            whole = bool(np.all(np.mod(values.to_numpy(dtype=np.float64), 1) == 0))
            return "multiclass" if whole and few else "regression"
    ''')
)


def given_split(cfg: DataConfig) -> bool:
    """Whether the data names each row's part (a split column, or a second file as the test set)."""
    return cfg.split_column is not None or cfg.test_upload is not None


_CODES = "{" + ", ".join(f'"{w}": {PART_CODES[p]}' for w, p in SPLIT_PARTS.items()) + "}"

SPLIT_COLUMN_READ = Piece(
    code(
        '''
        def read_parts(path):
            """The CSV without SPLIT_COLUMN, and the part each row names there: 0 train,
            1 validation, 2 test (train, validation or val, test; any case)."""
            df = read_csv(path)
            words = df[SPLIT_COLUMN].map(
                lambda v: v.strip().casefold() if isinstance(v, str) else ""
            )
            codes = <<codes>>
            unknown = sorted(set(words) - set(codes))
            if unknown:
                raise ValueError(f"{SPLIT_COLUMN}: {unknown} is not train, val(idation), test")
            part = words.map(codes).to_numpy(np.int64)
            return df.drop(columns=[SPLIT_COLUMN]), part
        ''',
        codes=_CODES,
    )
)

TEST_FILE_READ = Piece(
    code('''
        def read_parts(path):
            """The CSV and the test set TEST_CSV_PATH (the same columns) as one table, the test
            rows last, and the part of each row: 0 train, 2 test."""
            df = read_csv(path)
            test = read_csv(TEST_CSV_PATH)
            if set(test.columns) != set(df.columns):
                raise ValueError(f"{TEST_CSV_PATH} must have the columns of {path}")
            test = test[list(df.columns)]
            part = np.repeat(np.array([0, 2], np.int64), [len(df), len(test)])
            return pd.concat([df, test], ignore_index=True), part
    ''')
)


def csv_parts_pieces(ctx: ScriptContext) -> list[Piece]:
    """``read_parts`` when the data names each row's part; nothing for a random split."""
    d = ctx.config.data
    if d.split_column is not None:
        return [SPLIT_COLUMN_READ]
    if d.test_upload is not None:
        return [TEST_FILE_READ]
    return []
