"""Form HITs: a run's question kind and assignments per HIT, each HIT's item, and the form answers.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing runs and HITs are ExternalQuestion HITs of one assignment: the server defaults say so.
    with op.batch_alter_table('mturk_run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('question', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False,
                                      server_default='external'))
        batch_op.add_column(sa.Column('assignments', sa.Integer(), nullable=False, server_default='1'))
    with op.batch_alter_table('mturk_hit', schema=None) as batch_op:
        batch_op.add_column(sa.Column('question', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False,
                                      server_default='external'))
        batch_op.add_column(sa.Column('item_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('max_assignments', sa.Integer(), nullable=False, server_default='1'))
    op.create_table('mturk_form_answer',
    sa.Column('assignment_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('hit_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('item_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('worker_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('answers', sa.JSON(), nullable=False),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('assignment_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('submitted_at', sa.Float(), nullable=False),
    sa.Column('auto_approve_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('assignment_id')
    )
    with op.batch_alter_table('mturk_form_answer', schema=None) as batch_op:
        batch_op.create_index('ix_mturk_form_answer_item', ['run_id', 'item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mturk_form_answer_hit_id'), ['hit_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('mturk_form_answer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mturk_form_answer_hit_id'))
        batch_op.drop_index('ix_mturk_form_answer_item')
    op.drop_table('mturk_form_answer')
    with op.batch_alter_table('mturk_hit', schema=None) as batch_op:
        batch_op.drop_column('max_assignments')
        batch_op.drop_column('item_id')
        batch_op.drop_column('question')
    with op.batch_alter_table('mturk_run', schema=None) as batch_op:
        batch_op.drop_column('assignments')
        batch_op.drop_column('question')
