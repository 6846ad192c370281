"""customers hold the changing state and a pointer to the snapshot, not a copy of its data

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Read from the snapshot the row points at (its Parquet files hold them, immutably).
COPIED = [("name", sa.String(200), False), ("email", sa.String(254), True), ("country", sa.String(2), False),
          ("locale", sa.String(35), False), ("timezone", sa.String(64), False),
          ("consent_email", sa.Boolean(), False), ("consent_sms", sa.Boolean(), False),
          ("consent_letter", sa.Boolean(), False), ("do_not_contact", sa.Boolean(), False),
          ("days_past_due", sa.Integer(), False)]


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        for name, _, _ in COPIED:
            batch_op.drop_column(name)


def downgrade() -> None:
    # the copies come back empty-but-valid; the next import fills them again
    defaults = {sa.String: "", sa.Boolean: "0", sa.Integer: "0"}
    with op.batch_alter_table("customers", schema=None) as batch_op:
        for name, kind, nullable in COPIED:
            default = None if nullable else sa.text(f"'{defaults[type(kind)]}'")
            batch_op.add_column(sa.Column(name, kind, nullable=nullable, server_default=default))
