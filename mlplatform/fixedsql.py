"""Reads by SQL compiled once, for hot request paths (the tracking API).

`Model.objects.select_related(...).filter(pk=...)` spends most of its time building and
compiling the query (about 1 ms here, three times the database round trip). Here:
`ChainQuery` (an object and its foreign-key chain, the SELECT built once per vendor
from the models' metadata), `PreparedValues` (a values_list compiled once and rebound),
`compile_objects` (a plain queryset compiled once for `fetch`), the `__any_of` lookup (a list
as one parameter), and `fetch`, which runs them as prepared statements, pipelined, on
PostgreSQL. Rows come back converted as the ORM would; statements show in Django's
query log (debug, tests' query counts) like any other."""

from collections.abc import Sequence
from dataclasses import dataclass
import json
import sqlite3
import time

from django.db import connection
from django.db.models import CharField, Lookup, Model
import psycopg


def fetch(statements: Sequence[tuple[str, Sequence]]) -> list[list[tuple]]:
    """Run fixed statements and return each one's rows. On PostgreSQL they go as
    server-side prepared statements (psycopg prepares a text on its fifth use, so the
    planner's work, often more than the execution, is done once per connection) and
    several are pipelined into one round trip."""
    if connection.vendor != "postgresql":
        results = []
        with connection.cursor() as cursor:
            for sql, params in statements:
                cursor.execute(sql, list(params))
                results.append(cursor.fetchall())
        return results
    connection.ensure_connection()
    raw = connection.connection
    started = time.monotonic()
    with connection.wrap_database_errors:
        if len(statements) == 1:
            with psycopg.Cursor(raw) as cursor:
                cursor.execute(statements[0][0], list(statements[0][1]))
                results = [cursor.fetchall()]
        else:
            with raw.pipeline():
                cursors = [psycopg.Cursor(raw) for _ in statements]
                for cursor, (sql, params) in zip(cursors, statements, strict=True):
                    cursor.execute(sql, list(params))
                results = [cursor.fetchall() for cursor in cursors]
    if connection.queries_logged:
        elapsed = f"{(time.monotonic() - started) / len(statements):.3f}"
        for sql, _params in statements:
            connection.queries_log.append({"sql": sql, "time": elapsed})
    return results


class SqlList(list):
    """A list bound as ONE parameter: an array on PostgreSQL, JSON text on SQLite (read
    back with json_each), so a query over any number of ids keeps one SQL text."""


sqlite3.register_adapter(SqlList, json.dumps)


@CharField.register_lookup
class AnyOf(Lookup):
    """`field__any_of=[...]`: IN with the whole list as one parameter (see SqlList)."""

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = self.rhs if isinstance(self.rhs, SqlList) else SqlList(self.rhs)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s::varchar[])", [*lhs_params, values]
        return f"{lhs} IN (SELECT value FROM json_each(%s))", [*lhs_params, values]  # noqa: S608 (column SQL)


@dataclass(frozen=True)
class Link:
    """`model` joined as `alias` on `<parent alias>.<fk>`; fk is the parent's FK field."""

    model: type[Model]
    alias: str
    parent: str | None = None
    fk: str | None = None


class ChainQuery:
    def __init__(self, links: Sequence[Link], extra: Sequence[str] = (), where: str = "") -> None:
        """links[0] is the selected model; `extra` are SQL expressions appended to the
        select list (their values come back as a tuple); `where` uses the aliases and %s."""
        self.links, self.extra, self.where = list(links), list(extra), where
        self._compiled: dict[str, tuple] = {}

    def _compile(self):
        vendor = connection.vendor
        if vendor in self._compiled:
            return self._compiled[vendor]
        qn = connection.ops.quote_name
        columns, plan, joins, converters = [], [], [], []
        by_alias = {link.alias: link for link in self.links}
        for link in self.links:
            fields = link.model._meta.concrete_fields
            for field in fields:
                expression = field.get_col(link.alias)
                found = connection.ops.get_db_converters(expression) + field.get_db_converters(connection)
                if found:
                    converters.append((len(columns), (found, expression)))
                columns.append(f"{link.alias}.{qn(field.column)}")
            plan.append((link, [f.attname for f in fields]))
            if link.parent is None:
                joins.append(f"{qn(link.model._meta.db_table)} {link.alias}")
            else:
                fk = by_alias[link.parent].model._meta.get_field(link.fk)
                joins.append(
                    f"JOIN {qn(link.model._meta.db_table)} {link.alias} "
                    f"ON {link.alias}.{qn(fk.target_field.column)} = {link.parent}.{qn(fk.column)}"
                )
        sql = f"SELECT {', '.join(columns + self.extra)} FROM {' '.join(joins)} WHERE {self.where}"  # noqa: S608
        self._compiled[vendor] = (sql, plan, converters)
        return self._compiled[vendor]

    def first(self, params: Sequence) -> tuple[Model, tuple] | None:
        """The first row as (instance of links[0] with its chain cached, extra values)."""
        sql, plan, converters = self._compile()
        rows = fetch([(sql, params)])[0]
        if not rows:
            return None
        row = convert_rows(rows[:1], converters)[0]
        objects, start = {}, 0
        for link, names in plan:
            obj = link.model.from_db(connection.alias, names, row[start : start + len(names)])
            start += len(names)
            objects[link.alias] = obj
            if link.parent is not None:
                parent = objects[link.parent]
                parent._meta.get_field(link.fk).set_cached_value(parent, obj)
        return objects[self.links[0].alias], tuple(row[start:])


class PreparedValues:
    """A `values_list` query compiled once, run again with other arguments.

    `build(*markers)` returns the queryset with marker strings where the arguments go
    (a string marker for a value, `[marker]` with `__any_of` for a list); the compiled
    SQL is kept per database vendor and each call binds the real values in the
    markers' places. Rows come back as tuples, converted as the ORM would."""

    def __init__(self, build, arity: int) -> None:
        self.build, self.markers = build, tuple(f"\x00mlp-arg-{i}\x00" for i in range(arity))
        self._compiled: dict[str, tuple] = {}

    def _slot(self, param) -> tuple[int, bool] | None:
        if isinstance(param, SqlList) and len(param) == 1 and param[0] in self.markers:
            return self.markers.index(param[0]), True
        if isinstance(param, str) and param in self.markers:
            return self.markers.index(param), False
        return None

    def _compile(self):
        vendor = connection.vendor
        if vendor not in self._compiled:
            compiler = self.build(*self.markers).query.get_compiler(connection=connection)
            sql, params = compiler.as_sql()
            slots = [self._slot(p) for p in params]
            if sorted(s[0] for s in slots if s is not None) != list(range(len(self.markers))):
                raise ValueError("every argument must appear exactly once as a query parameter")
            columns = [expression for expression, _sql, _alias in compiler.select[: compiler.col_count]]
            converters = compiler.get_converters(columns)
            self._compiled[vendor] = (sql, list(params), slots, list(converters.items()))
        return self._compiled[vendor]

    def statement(self, *args) -> tuple[str, list]:
        sql, params, slots, _converters = self._compile()
        bound = [
            p if slot is None else (SqlList(args[slot[0]]) if slot[1] else args[slot[0]])
            for p, slot in zip(params, slots, strict=True)
        ]
        return sql, bound

    def convert(self, rows: list[tuple]) -> list[tuple]:
        return convert_rows(rows, self._compile()[3])


def rows_many(calls: Sequence[tuple[PreparedValues, tuple]]) -> list[list[tuple]]:
    """Several prepared reads; on PostgreSQL pipelined into one round trip."""
    results = fetch([prepared.statement(*args) for prepared, args in calls])
    return [prepared.convert(rows) for (prepared, _args), rows in zip(calls, results, strict=True)]


@dataclass(frozen=True)
class ObjectsStatement:
    """A plain queryset compiled: its SQL, parameters and how rows become objects."""

    model: type[Model]
    sql: str
    params: tuple
    names: tuple[str, ...]
    converters: tuple

    def objects(self) -> list[Model]:
        rows = convert_rows(fetch([(self.sql, self.params)])[0], list(self.converters))
        return [self.model.from_db(connection.alias, self.names, row) for row in rows]


def compile_objects(queryset) -> ObjectsStatement:
    """A plain queryset (no select_related, annotations or deferred fields) compiled for
    `fetch`; keep it to run the same read again without the ORM's work."""
    compiler = queryset.query.get_compiler(connection=connection)
    sql, params = compiler.as_sql()
    model = queryset.model
    fields = model._meta.concrete_fields
    klass_info = compiler.klass_info or {}
    if klass_info.get("related_klass_infos") or compiler.annotation_col_map or compiler.col_count != len(fields):
        raise ValueError("compile_objects takes plain querysets only")
    columns = [expression for expression, _sql, _alias in compiler.select[: compiler.col_count]]
    converters = tuple(compiler.get_converters(columns).items())
    return ObjectsStatement(model, sql, tuple(params), tuple(f.attname for f in fields), converters)


def convert_rows(rows: list[tuple], converters: list) -> list[tuple]:
    """Apply the ORM's (position, (converters, expression)) list to raw rows."""
    if not converters:
        return rows
    out = []
    for row in rows:
        row = list(row)
        for pos, (found, expression) in converters:
            for convert in found:
                row[pos] = convert(row[pos], expression, connection)
        out.append(tuple(row))
    return out
