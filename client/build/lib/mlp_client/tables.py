"""Results that read well everywhere: a terminal table, JSON, CSV, an HTML table in
Jupyter (`_repr_html_`) and a pandas DataFrame (`to_pandas()`)."""

from collections.abc import Iterator, Sequence
import csv
import html
import io
import json
from typing import Any


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


class Table(Sequence):
    """Rows (dicts) with an ordered list of columns."""

    def __init__(
        self, rows: list[dict], columns: list[str] | None = None, *, title: str = "", total: int | None = None
    ):
        self.rows = rows
        self.columns = columns or _columns(rows)
        self.title = title
        self.total = len(rows) if total is None else total

    def __getitem__(self, index):  # type: ignore[override]
        return self.rows[index]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict]:
        return iter(self.rows)

    def __repr__(self) -> str:
        return f"<Table {self.title or ''} rows={len(self.rows)} columns={self.columns}>"

    def to_pandas(self):
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("to_pandas() needs pandas: pip install 'mlp-client[pandas]'") from exc
        return pd.DataFrame([{c: row.get(c) for c in self.columns} for row in self.rows], columns=self.columns)

    def to_json(self) -> str:
        return json.dumps(self.rows, indent=2, default=str)

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow([_cell(row.get(c)) for c in self.columns])
        return out.getvalue()

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_cell(row.get(c)))}</td>" for c in self.columns) + "</tr>"
            for row in self.rows
        )
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def rich(self):
        from rich.table import Table as RichTable

        table = RichTable(title=self.title or None)
        for column in self.columns:
            table.add_column(column, overflow="fold")
        for row in self.rows:
            table.add_row(*[_cell(row.get(c)) for c in self.columns])
        return table


class Record(dict):
    """One object (a job, a gate, an endpoint): a dict that shows itself as a two-column table."""

    def to_json(self) -> str:
        return json.dumps(self, indent=2, default=str)

    def as_table(self) -> Table:
        return Table([{"field": k, "value": v} for k, v in self.items()], ["field", "value"])

    def to_csv(self) -> str:
        return Table([dict(self)], list(self.keys())).to_csv()

    def to_pandas(self):
        return Table([dict(self)], list(self.keys())).to_pandas()

    def _repr_html_(self) -> str:
        return self.as_table()._repr_html_()

    def rich(self):
        return self.as_table().rich()


def _columns(rows: list[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    return list(seen)
