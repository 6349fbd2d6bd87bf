"""Database helpers the ORM does not offer in the shape the pipeline needs."""

import functools
import operator
from collections.abc import Callable, Sequence

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models import Model

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
    columns = [meta.get_field(name) for name in fields]
    pk = meta.pk
    casts = [f"CAST(%s AS {field.db_type(connection)})" for field in (pk, *columns)]
    row_sql = "(" + ", ".join(casts) + ")"
    quote = connection.ops.quote_name
    assignments = ", ".join(
        f"{quote(field.column)} = v.column{position}"
        for position, field in enumerate(columns, start=2)
    )
    readers = _readers((pk, *columns), connection, inserting=False)
    params = [read(obj) for obj in objects for read in readers]
    # Only identifiers from the model's own meta are formatted in; every value is a parameter.
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {assignments} "  # noqa: S608
        f"FROM (VALUES {', '.join([row_sql] * len(objects))}) AS v "
        f"WHERE {quote(meta.db_table)}.{quote(pk.column)} = v.column1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


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
