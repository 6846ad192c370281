"""Alembic environment: runs on the connection the Store hands over (or on the configured URL)."""

from alembic import context
from sqlalchemy import create_engine

import comms.store.ledger  # noqa: F401  (its tables join the metadata)
from comms.store.schema import metadata

config = context.config
connection = config.attributes.get("connection")


def run(conn) -> None:
    context.configure(connection=conn, target_metadata=metadata, render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:
    with create_engine(config.get_main_option("sqlalchemy.url")).begin() as conn:
        run(conn)
