"""customer answers: events, checkouts, payments, arrangements, contact opt-outs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 20:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('campaign', sa.String(length=64), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('variant', sa.String(length=64), nullable=True),
    sa.Column('customer_id', sa.String(length=64), nullable=True),
    sa.Column('message_id', sa.String(length=100), nullable=True),
    sa.Column('dedupe_key', sa.String(length=128), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_events_dedupe_key'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_campaign_kind', ['campaign', 'kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_occurred_at'), ['occurred_at'], unique=False)

    op.create_table('checkouts',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('campaign', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('waive', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkouts'))
    )
    with op.batch_alter_table('checkouts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkouts_customer_id'), ['customer_id'], unique=False)

    op.create_table('payments',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('provider_ref', sa.String(length=100), nullable=False),
    sa.Column('checkout_id', sa.String(length=32), nullable=True),
    sa.Column('campaign', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('waived', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.ForeignKeyConstraint(['checkout_id'], ['checkouts.id'], name=op.f('fk_payments_checkout_id_checkouts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments')),
    sa.UniqueConstraint('provider', 'provider_ref', name=op.f('uq_payments_provider'))
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payments_customer_id'), ['customer_id'], unique=False)

    op.create_table('arrangements',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('campaign', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('months', sa.Integer(), nullable=True),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('until', sa.Date(), nullable=True),
    sa.Column('reason', sa.String(length=32), nullable=True),
    sa.Column('details', sa.Text(), nullable=True),
    sa.Column('schedule', sa.JSON(), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_arrangements'))
    )
    with op.batch_alter_table('arrangements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_arrangements_customer_id'), ['customer_id'], unique=False)

    op.create_table('contact_opt_outs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('address_digest', sa.String(length=64), nullable=True),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('campaign', sa.String(length=64), nullable=True),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_opt_outs'))
    )
    with op.batch_alter_table('contact_opt_outs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contact_opt_outs_address_digest'), ['address_digest'], unique=False)
        batch_op.create_index(batch_op.f('ix_contact_opt_outs_customer_id'), ['customer_id'], unique=False)


def downgrade() -> None:
    for table in ('contact_opt_outs', 'arrangements', 'payments', 'checkouts', 'events'):
        op.drop_table(table)
