"""Initial schema: runs, agents, conversations, messages, event streams, onboarding, world data, workers.

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 10:50:48.768200
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('agent',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('worker_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('assignment_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('hit_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('turk_submit_to', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('conversation_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'assignment_id', name='uq_agent_assignment')
    )
    with op.batch_alter_table('agent', schema=None) as batch_op:
        batch_op.create_index('ix_agent_run_state', ['run_id', 'state'], unique=False)
        batch_op.create_index('ix_agent_worker', ['worker_id', 'run_id'], unique=False)

    op.create_table('conversation',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('context', sa.JSON(), nullable=True),
    sa.Column('participants', sa.JSON(), nullable=False),
    sa.Column('end_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('ended_at', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conversation_run_id'), ['run_id'], unique=False)

    op.create_table('event',
    sa.Column('agent_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('agent_id', 'seq')
    )
    op.create_table('message',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('conversation_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('agent_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('client_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('sender', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('text', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('agent_id', 'client_id', name='uq_message_client_id')
    )
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.create_index('ix_message_conversation', ['conversation_id', 'created_at'], unique=False)

    op.create_table('meta',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('onboarding_result',
    sa.Column('worker_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('task_name', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('worker_id', 'task_name')
    )
    op.create_table('task_run',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('task_module', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('conversations_formed', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('lease_until', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('task_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_task_run_status'), ['status'], unique=False)

    op.create_table('worker',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('blocked', sa.Boolean(), nullable=False),
    sa.Column('block_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('world_data',
    sa.Column('conversation_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('conversation_id')
    )
    with op.batch_alter_table('world_data', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_world_data_run_id'), ['run_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('world_data', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_world_data_run_id'))

    op.drop_table('world_data')
    op.drop_table('worker')
    with op.batch_alter_table('task_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_task_run_status'))

    op.drop_table('task_run')
    op.drop_table('onboarding_result')
    op.drop_table('meta')
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_index('ix_message_conversation')

    op.drop_table('message')
    op.drop_table('event')
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversation_run_id'))

    op.drop_table('conversation')
    with op.batch_alter_table('agent', schema=None) as batch_op:
        batch_op.drop_index('ix_agent_worker')
        batch_op.drop_index('ix_agent_run_state')

    op.drop_table('agent')
