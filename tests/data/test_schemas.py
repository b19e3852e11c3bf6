"""The staged tables' row types: built by column name, they must hold the schema's columns in its order,
since a Parquet part is written from them by position."""

import pytest

from rmcore.data.lake import schemas


@pytest.mark.parametrize("table", sorted(schemas.ROWS))
def test_a_row_type_has_its_schema_columns_in_order(table: str) -> None:
    row, schema = schemas.ROWS[table]
    assert row._fields == tuple(schema.names)  # type: ignore[attr-defined]
