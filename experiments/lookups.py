"""SQL LIKE / ILIKE as Django lookups, so the search language compiles to the ORM with
the pattern always a bound parameter. SQLite's LIKE ignores case, so there LIKE runs as
GLOB (case-sensitive) with the pattern translated; ILIKE runs as LIKE."""

from django.db.models import CharField, Lookup, TextField


def like_to_glob(pattern: str) -> str:
    out = []
    for ch in pattern:
        if ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        elif ch in "*?[]":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)


class _PatternLookup(Lookup):
    operator = "LIKE"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} {self.operator} {rhs}", [*lhs_params, *rhs_params]


class SqlLike(_PatternLookup):
    lookup_name = "sql_like"

    def as_sqlite(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} GLOB {rhs}", [*lhs_params, *[like_to_glob(p) for p in rhs_params]]


class SqlILike(_PatternLookup):
    lookup_name = "sql_ilike"
    operator = "ILIKE"

    def as_sqlite(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} LIKE {rhs}", [*lhs_params, *rhs_params]


for field in (CharField, TextField):
    field.register_lookup(SqlLike)
    field.register_lookup(SqlILike)
