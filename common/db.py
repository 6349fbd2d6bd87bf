"""Database helpers the ORM does not offer in the shape the pipeline needs."""

import functools
import json
import operator
from collections.abc import Callable, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from uuid import UUID

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models import Model
from psycopg.types.json import Jsonb

# Fields whose Python value psycopg adapts exactly as the field's own get_db_prep_save
# would (PostgreSQL): their values skip that per-value trip through the field, which was
# the largest single cost of a batch's write (a batch of 50 leads sends about 10,000 values).
_PLAIN_FIELD_TYPES = frozenset(
    {
        models.AutoField,
        models.BigAutoField,
        models.BigIntegerField,
        models.BooleanField,
        models.CharField,
        models.DateTimeField,
        models.EmailField,
        models.FloatField,
        models.IntegerField,
        models.PositiveIntegerField,
        models.PositiveSmallIntegerField,
        models.SmallIntegerField,
        models.TextField,
        models.URLField,
    }
)


@functools.cache
def _plain_reader(field: models.Field, *, inserting: bool) -> Callable[[Model], object] | None:
    """Return a plain attribute read when it gives the value the database takes, or None."""
    target = field.target_field if field.is_relation else field
    computed = inserting and (
        getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
    )
    if type(target) in _PLAIN_FIELD_TYPES and not computed:
        return operator.attrgetter(field.attname)
    return None


def _readers(fields, connection, *, inserting: bool) -> list[Callable[[Model], object]]:
    """How to read each field's value of an object as `connection`'s database takes it."""

    def prepared(field):
        if inserting:
            return lambda obj: field.get_db_prep_save(field.pre_save(obj, True), connection)
        return lambda obj: field.get_db_prep_save(getattr(obj, field.attname), connection)

    return [_plain_reader(field, inserting=inserting) or prepared(field) for field in fields]


def rows_update(objects: Sequence[Model], fields: Sequence[str]) -> None:
    """Save `fields` of many rows of one model in one UPDATE, each row its own values.

    What `QuerySet.bulk_update` does, without its cost: it builds a CASE WHEN per field
    and row through the expression machinery, which took 70% of a 100-lead batch's CPU.
    On PostgreSQL this is one `UPDATE … FROM (VALUES …)`; elsewhere (the embedded SQLite
    of `make demo`) it falls back to `bulk_update`.
    """
    if not objects:
        return
    model = type(objects[0])
    if connections[DEFAULT_DB_ALIAS].vendor != "postgresql":
        model.objects.bulk_update(objects, fields)
        return
    # Well under PostgreSQL's 65,535 parameters a statement.
    for start in range(0, len(objects), 1000):
        _update_chunk(model, objects[start : start + 1000], fields)


def _update_chunk(model: type[Model], objects: Sequence[Model], fields: Sequence[str]) -> None:
    connection = connections[DEFAULT_DB_ALIAS]
    meta = model._meta
    pk = meta.pk
    columns = [pk, *(meta.get_field(name) for name in fields)]
    names = [field.column for field in columns]
    named_readers = list(zip(names, _readers(columns, connection, inserting=False), strict=True))
    # One JSON parameter, not one a value: psycopg parses a statement of more than 50
    # parameters anew each time and renders every value through Python, which was a
    # sixth of a batch's CPU; json.dumps is C. jsonb_populate_recordset reads the rows
    # with the table's own column types, and JSON null is SQL NULL, as Django stores None.
    rows = json.dumps(
        [{name: read(obj) for name, read in named_readers} for obj in objects],
        default=_json_value,
    )
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    assignments = ", ".join(f"{quote(name)} = v.{quote(name)}" for name in names[1:])
    # Only identifiers from the model's own meta are formatted in; the rows are a parameter.
    sql = (
        f"UPDATE {table} SET {assignments} "  # noqa: S608
        f"FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb) AS v "
        f"WHERE {table}.{quote(pk.column)} = v.{quote(pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [rows])


def _json_value(value: object) -> object:
    """A value json.dumps cannot write, as text PostgreSQL reads into its column's type."""
    if isinstance(value, Jsonb):  # a JSONField's value, as get_db_prep_save wraps it
        return value.obj
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    raise TypeError(f"rows_update cannot send a {type(value).__name__} value")


def rows_insert(objects: Sequence[Model]) -> None:
    """Insert many new rows of one model and set their primary keys, as `bulk_create` does.

    On PostgreSQL the keys are drawn from the table's sequence in one query and the rows
    sent with COPY, which costs a fraction of `bulk_create`'s per-value SQL building (a
    100-lead batch writes about a thousand observations). Elsewhere it is `bulk_create`.
    """
    if not objects:
        return
    model = type(objects[0])
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objects)
        return
    meta = model._meta
    fields = [field for field in meta.concrete_fields if field is not meta.pk]
    readers = _readers(fields, connection, inserting=True)
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(objects)],
        )
        for obj, (pk,) in zip(objects, cursor.fetchall(), strict=True):
            obj.pk = pk
        columns = ", ".join(quote(field.column) for field in (meta.pk, *fields))
        copying = cursor.cursor.copy(f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN")
        # Past Django's cursor wrapper, so its error translation (IntegrityError) is asked for.
        with connection.wrap_database_errors, copying as copy:
            for obj in objects:
                copy.write_row([obj.pk] + [read(obj) for read in readers])
    for obj in objects:
        obj._state.adding = False
        obj._state.db = connection.alias
