"""CSV and TSV files: their readers; text checks, header detection, a fast strict parse with pyarrow.

- A file with a NUL byte or bytes that are not UTF-8 in its first 64 KiB is not a text table
  (a binary file named .csv): an error, before any parsing.
- Header detection, on the first 20 rows: the first row is a header when it holds no number at
  all, or when some column holds text in the first row and numbers below it. Otherwise every row
  is data and the columns are named by position: 0, 1, 2, ...
- pyarrow parses the file (multithreaded, about 10x pandas' speed on large files) and rejects
  rows whose field count differs from the first row; lpae then finds the first such line to name
  it in the message. Empty fields, NA, NaN and null are missing values (also in text columns).
"""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from lpae.data.convert import FileOptions, Raw

SNIFF_BYTES = 1 << 16
SNIFF_ROWS = 20


def read_csv(path: Path, options: FileOptions) -> Raw:
    return Raw(read_delimited(path, ","), label_column=options.label)


def read_tsv(path: Path, options: FileOptions) -> Raw:
    return Raw(read_delimited(path, "\t"), label_column=options.label)


def read_delimited(path: Path, delimiter: str) -> pd.DataFrame:
    """Read a delimited text table; every problem raises ValueError naming ``path``."""
    head = read_text_head(path)
    rows = [row for row in csv.reader(io.StringIO(head), delimiter=delimiter) if "".join(row).strip()]
    rows = rows[:SNIFF_ROWS]
    if not rows:
        raise ValueError(f"{path}: the file is empty (no rows, only blank lines)")
    header = has_header(rows)
    try:
        table = pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(autogenerate_column_names=not header),
            parse_options=pa_csv.ParseOptions(delimiter=delimiter),
            convert_options=pa_csv.ConvertOptions(strings_can_be_null=True),
        )
    except pa.ArrowInvalid as error:
        if "Expected" in str(error) and "columns" in str(error):
            raise ValueError(f"{path}: ragged rows: {first_ragged_line(path, delimiter)}") from None
        raise ValueError(f"{path}: cannot parse as {describe(delimiter)}: {error}") from None
    frame = table.to_pandas()
    if not header:
        frame.columns = [str(j) for j in range(len(frame.columns))]
    return frame


def wide_encoding(raw: bytes) -> str | None:
    """UTF-16 or UTF-32 when the first bytes say so (a byte-order mark, or text whose every other
    byte is NUL, as Excel and PowerShell write it), else None."""
    for mark, name in (
        (codecs.BOM_UTF32_LE, "UTF-32"),
        (codecs.BOM_UTF32_BE, "UTF-32"),
        (codecs.BOM_UTF16_LE, "UTF-16"),
        (codecs.BOM_UTF16_BE, "UTF-16"),
    ):
        if raw.startswith(mark):
            return name
    head = raw[:512]
    if len(head) >= 8 and (head[1::2].count(0) == len(head[1::2]) or head[0::2].count(0) == len(head[0::2])):
        return "UTF-16"
    return None


def read_text_head(path: Path) -> str:
    """The first 64 KiB as text; a binary or non-UTF-8 file raises ValueError."""
    with open(path, "rb") as handle:
        raw = handle.read(SNIFF_BYTES)
    encoding = wide_encoding(raw)
    if encoding is not None:
        raise ValueError(
            f"{path}: is {encoding} text; lpae reads UTF-8 tables: save it as UTF-8 (e.g. "
            f"`iconv -f {encoding} -t UTF-8 {path.name} > {path.stem}-utf8{path.suffix}`)"
        )
    if b"\x00" in raw:
        raise ValueError(f"{path}: is a binary file, not a text table (it contains NUL bytes)")
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        text = decoder.decode(raw, final=len(raw) < SNIFF_BYTES)
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path}: is not UTF-8 text (byte {error.start} cannot be decoded); is it a binary file?"
        ) from None
    if len(raw) == SNIFF_BYTES:  # drop the last, possibly cut, line
        text = text[: text.rfind("\n") + 1] or text
    return text.lstrip("\ufeff")


def has_header(rows: list[list[str]]) -> bool:
    """Whether the first row names the columns (rules in the module docstring)."""
    first = rows[0]
    if not any(is_number(field) for field in first):
        return any(field.strip() for field in first)
    for column, field in enumerate(first):
        below = [row[column] for row in rows[1:] if column < len(row) and row[column].strip()]
        if not is_number(field) and field.strip() and below and all(is_number(v) for v in below):
            return True
    return False


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def first_ragged_line(path: Path, delimiter: str) -> str:
    """'line 4 has 2 fields, expected 3': the first non-blank line whose field count differs."""
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        expected = None
        for row in reader:
            if not row:
                continue
            if expected is None:
                expected = len(row)
            elif len(row) != expected:
                return (
                    f"line {reader.line_num} has {len(row)} fields, expected {expected} as in the first row"
                )
    return "rows have different numbers of fields"


def describe(delimiter: str) -> str:
    return "TSV" if delimiter == "\t" else "CSV"
