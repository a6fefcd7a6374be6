"""A model map from the database itself, for users who give no ``--models``.

Names follow what sqlacodegen would generate from the same schema, so that advice
written against them (``selectinload(Author.books)``) reads like the user's code when
they generated their models with it, and reads sensibly when they did not:

- a class per table, from the table name: ``order_items`` -> ``OrderItem``;
- a many-to-one per foreign key on the referencing side, named after the column without
  its ``_id`` (``author_id`` -> ``author``), or after the referenced table in the singular
  when the key is not a single ``*_id`` column;
- the one-to-many on the referenced side, named after the referencing table
  (``Author.books``), with ``_reverse`` added when a table refers to itself;
- an association table (only foreign-key columns, exactly two keys) is no class: each
  side gets a many-to-many named after the other table, through it.

An attribute name already taken (a column, another relationship) gets ``_`` appended.
The catalog is read through pg_catalog with the caller's psycopg connection; nothing is
written. ``source`` is ``"reflected"`` so that the report can say the names are guesses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from explainer.orm.models import MappedClass, ModelMap, RelationshipInfo, table_key

_IRREGULAR = {
    "people": "person",
    "children": "child",
    "men": "man",
    "women": "woman",
    "data": "data",
    "media": "media",
    "series": "series",
    "news": "news",
}


def singular(word: str) -> str:
    """English singular of a table-name word, good enough for naming a model class."""
    lower = word.lower()
    if lower in _IRREGULAR:
        return _IRREGULAR[lower]
    for suffix, replacement in (
        ("ies", "y"),
        ("sses", "ss"),
        ("uses", "us"),
        ("xes", "x"),
        ("ches", "ch"),
        ("shes", "sh"),
    ):
        if lower.endswith(suffix) and len(lower) > len(suffix):
            return word[: -len(suffix)] + replacement
    if lower.endswith("s") and not lower.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def class_name(table: str) -> str:
    """``order_items`` -> ``OrderItem``; ``Customer`` stays ``Customer``."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", table) if w]
    if not words:
        return "Model"
    words[-1] = singular(words[-1])
    name = "".join(w[:1].upper() + w[1:] for w in words)
    return name if name[0].isalpha() else f"T{name}"


_TABLES = """
SELECT c.oid, n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_(toast|temp_)'
ORDER BY n.nspname, c.relname
"""

_COLUMNS = """
SELECT attrelid, attname FROM pg_attribute
WHERE attrelid = ANY(%s) AND attnum > 0 AND NOT attisdropped
ORDER BY attrelid, attnum
"""

_FOREIGN_KEYS = """
SELECT con.conname, con.conrelid, con.confrelid,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num
             ORDER BY k.ord),
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num
             ORDER BY k.ord)
FROM pg_constraint con
WHERE con.contype = 'f' AND con.conrelid = ANY(%s) AND con.confrelid = ANY(%s)
ORDER BY con.conrelid, con.conname
"""

_INDEXES = """
SELECT i.indrelid, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = ANY(%s) AND NOT i.indisprimary
ORDER BY i.indrelid, c.relname
"""


@dataclass
class _Table:
    oid: int
    schema: str
    name: str
    columns: list[str] = field(default_factory=list)
    indexes: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return table_key(self.name, self.schema)


@dataclass(frozen=True)
class _ForeignKey:
    name: str
    source: int
    target: int
    columns: tuple[str, ...]
    referred: tuple[str, ...]


def reflect_models(conn: Any) -> ModelMap:
    """The map of every table the connection's user can see, named as sqlacodegen would.

    ``conn`` is a psycopg connection (typed loosely: only ``execute().fetchall()`` is used).
    """
    tables = {oid: _Table(oid, schema, name) for oid, schema, name in conn.execute(_TABLES)}
    oids = list(tables)
    for oid, column in conn.execute(_COLUMNS, (oids,)).fetchall():
        tables[oid].columns.append(column)
    for oid, index in conn.execute(_INDEXES, (oids,)).fetchall():
        tables[oid].indexes.append(index)
    keys = [
        _ForeignKey(name, source, target, tuple(cols), tuple(referred))
        for name, source, target, cols, referred in conn.execute(
            _FOREIGN_KEYS, (oids, oids)
        ).fetchall()
    ]
    return build_reflected_map(list(tables.values()), keys)


def _association(table: _Table, keys: list[_ForeignKey]) -> bool:
    """sqlacodegen's rule: exactly two foreign keys covering every column."""
    own = [k for k in keys if k.source == table.oid]
    covered = {c for k in own for c in k.columns}
    return len(own) == 2 and covered == set(table.columns)


def _unique(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def build_reflected_map(tables: list[_Table], keys: list[_ForeignKey]) -> ModelMap:
    """Classes and relationships from tables and foreign keys (see the module docstring)."""
    by_oid = {t.oid: t for t in tables}
    associations = {t.oid for t in tables if _association(t, keys)}
    names: dict[int, str] = {}
    used_names: set[str] = set()
    for table in tables:
        if table.oid not in associations:
            names[table.oid] = _unique(class_name(table.name), used_names)
    relationships: dict[int, list[RelationshipInfo]] = {oid: [] for oid in names}
    taken: dict[int, set[str]] = {oid: set(by_oid[oid].columns) for oid in names}

    for key in keys:
        if key.source in associations or key.source not in names or key.target not in names:
            continue
        source, target = by_oid[key.source], by_oid[key.target]
        column = key.columns[0]
        if len(key.columns) == 1 and column.endswith("_id") and len(column) > 3:
            forward = column[:-3]
        else:
            forward = singular(target.name)
        backward = f"{forward}_reverse" if source.oid == target.oid else source.name
        relationships[source.oid].append(
            RelationshipInfo(
                attribute=_unique(forward, taken[source.oid]),
                target_class=names[target.oid],
                target_table=target.key,
                direction="MANYTOONE",
                uselist=False,
                local_columns=key.columns,
                remote_columns=key.referred,
                secondary=None,
                lazy="select",
            )
        )
        relationships[target.oid].append(
            RelationshipInfo(
                attribute=_unique(backward, taken[target.oid]),
                target_class=names[source.oid],
                target_table=source.key,
                direction="ONETOMANY",
                uselist=True,
                local_columns=key.referred,
                remote_columns=key.columns,
                secondary=None,
                lazy="select",
            )
        )

    for oid in sorted(associations):
        first, second = [k for k in keys if k.source == oid]
        for near, far in ((first, second), (second, first)):
            if near.target not in names or far.target not in names:
                continue
            other = by_oid[far.target]
            relationships[near.target].append(
                RelationshipInfo(
                    attribute=_unique(other.name, taken[near.target]),
                    target_class=names[far.target],
                    target_table=other.key,
                    direction="MANYTOMANY",
                    uselist=True,
                    local_columns=near.referred,
                    remote_columns=near.columns,
                    secondary=by_oid[oid].key,
                    lazy="select",
                )
            )

    classes = {
        by_oid[oid].key: MappedClass(
            name=name,
            module="(reflected)",
            file=None,
            line=None,
            table=by_oid[oid].name,
            schema=None if by_oid[oid].schema == "public" else by_oid[oid].schema,
            columns={c: c for c in by_oid[oid].columns},
            relationships=relationships[oid],
            indexes=list(by_oid[oid].indexes),
        )
        for oid, name in names.items()
    }
    return ModelMap(classes=classes, source="reflected")
