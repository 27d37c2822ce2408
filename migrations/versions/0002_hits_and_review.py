"""The HIT manager's tables (plans, HITs, qualifications, bonuses) and review decisions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 10:50:50.818337
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('mturk_bonus',
    sa.Column('token', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('assignment_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('worker_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('fee_cents', sa.Integer(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('token')
    )
    with op.batch_alter_table('mturk_bonus', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mturk_bonus_run_id'), ['run_id'], unique=False)

    op.create_table('mturk_hit',
    sa.Column('token', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('slot', sa.Integer(), nullable=False),
    sa.Column('hit_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('charge_cents', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.Column('assignment_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('worker_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('assignment_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('auto_approve_at', sa.Float(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('token'),
    sa.UniqueConstraint('run_id', 'slot', name='uq_mturk_hit_slot')
    )
    with op.batch_alter_table('mturk_hit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mturk_hit_hit_id'), ['hit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mturk_hit_run_id'), ['run_id'], unique=False)

    op.create_table('mturk_qualification',
    sa.Column('account', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('type_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('account', 'name')
    )
    op.create_table('mturk_run',
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('account', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('publishing', sa.Boolean(), nullable=False),
    sa.Column('budget_cents', sa.Integer(), nullable=False),
    sa.Column('reward_cents', sa.Integer(), nullable=False),
    sa.Column('hit_type_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('next_slot', sa.Integer(), nullable=False),
    sa.Column('lifetime_s', sa.Integer(), nullable=False),
    sa.Column('assignment_duration_s', sa.Integer(), nullable=False),
    sa.Column('auto_approval_delay_s', sa.Integer(), nullable=False),
    sa.Column('overbook', sa.Float(), nullable=False),
    sa.Column('locales', sa.JSON(), nullable=False),
    sa.Column('min_approval_rate', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('run_id')
    )
    op.create_table('review_action',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('agent_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('worker_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('assignment_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('review_action', schema=None) as batch_op:
        batch_op.create_index('ix_review_agent', ['agent_id', 'created_at'], unique=False)
        batch_op.create_index('ix_review_run', ['run_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('review_action', schema=None) as batch_op:
        batch_op.drop_index('ix_review_run')
        batch_op.drop_index('ix_review_agent')

    op.drop_table('review_action')
    op.drop_table('mturk_run')
    op.drop_table('mturk_qualification')
    with op.batch_alter_table('mturk_hit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mturk_hit_run_id'))
        batch_op.drop_index(batch_op.f('ix_mturk_hit_hit_id'))

    op.drop_table('mturk_hit')
    with op.batch_alter_table('mturk_bonus', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mturk_bonus_run_id'))

    op.drop_table('mturk_bonus')
