"""Database helpers the ORM does not offer in the shape the pipeline needs."""

from collections.abc import Sequence

from django.db import connection
from django.db.models import Model


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
    if connection.vendor != "postgresql":
        model.objects.bulk_update(objects, fields)
        return
    # Well under PostgreSQL's 65,535 parameters a statement.
    for start in range(0, len(objects), 1000):
        _update_chunk(model, objects[start : start + 1000], fields)


def _update_chunk(model: type[Model], objects: Sequence[Model], fields: Sequence[str]) -> None:
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
    params: list = []
    for obj in objects:
        params.append(pk.get_db_prep_save(obj.pk, connection))
        for field in columns:
            params.append(field.get_db_prep_save(getattr(obj, field.attname), connection))
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
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objects)
        return
    meta = model._meta
    fields = [field for field in meta.concrete_fields if field is not meta.pk]
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
                copy.write_row(
                    [obj.pk]
                    + [
                        field.get_db_prep_save(field.pre_save(obj, True), connection)
                        for field in fields
                    ]
                )
    for obj in objects:
        obj._state.adding = False
        obj._state.db = connection.alias
