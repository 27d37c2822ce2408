"""The requester's controls: a run's HIT count (`parley run --hits`) and compensation HITs.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 19:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('mturk_run') as batch:
        batch.add_column(sa.Column('max_hits', sa.Integer(), nullable=False, server_default='0'))
    op.create_table('mturk_compensation',
    sa.Column('token', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('worker_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('fee_cents', sa.Integer(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('hit_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('assignment_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('token')
    )
    with op.batch_alter_table('mturk_compensation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mturk_compensation_run_id'), ['run_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('mturk_compensation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mturk_compensation_run_id'))
    op.drop_table('mturk_compensation')
    with op.batch_alter_table('mturk_run') as batch:
        batch.drop_column('max_hits')
