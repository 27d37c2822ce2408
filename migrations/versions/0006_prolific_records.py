"""Prolific records in the database (they were a JSON file under the data directory): each run's study plan,
the studies Parley made, its participant groups, bonuses (created, being paid, paid) and the submissions seen.

A ledger file from before (`prolific_ledger.json`) is not imported: it only ever held the built-in Prolific's
development records.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 19:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('prolific_bonus',
    sa.Column('account', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('submission_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('worker_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('fee_cents', sa.Integer(), nullable=False),
    sa.Column('vat_cents', sa.Integer(), nullable=False),
    sa.Column('bulk_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('account', 'key')
    )
    with op.batch_alter_table('prolific_bonus', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_prolific_bonus_run_id'), ['run_id'], unique=False)

    op.create_table('prolific_group',
    sa.Column('account', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('group_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('account', 'name')
    )
    op.create_table('prolific_run',
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('account', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('task_module', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('reward_cents', sa.Integer(), nullable=False),
    sa.Column('budget_cents', sa.Integer(), nullable=False),
    sa.Column('estimated_minutes', sa.Integer(), nullable=False),
    sa.Column('max_minutes', sa.Integer(), nullable=False),
    sa.Column('overbook', sa.Float(), nullable=False),
    sa.Column('publishing', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('run_id')
    )
    op.create_table('prolific_study',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('study_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('reward_cents', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('prolific_study', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_prolific_study_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_prolific_study_study_id'), ['study_id'], unique=False)

    op.create_table('prolific_submission',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('account', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('study_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('participant_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('prolific_submission', schema=None) as batch_op:
        batch_op.create_index('ix_prolific_submission_run', ['account', 'run_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('prolific_submission', schema=None) as batch_op:
        batch_op.drop_index('ix_prolific_submission_run')

    op.drop_table('prolific_submission')
    with op.batch_alter_table('prolific_study', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_prolific_study_study_id'))
        batch_op.drop_index(batch_op.f('ix_prolific_study_run_id'))

    op.drop_table('prolific_study')
    op.drop_table('prolific_run')
    op.drop_table('prolific_group')
    with op.batch_alter_table('prolific_bonus', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_prolific_bonus_run_id'))

    op.drop_table('prolific_bonus')
