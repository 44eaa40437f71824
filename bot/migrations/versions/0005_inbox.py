"""Durable inbox (events recorded before the platform is answered), shared rate events, outbox links.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 05:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=160), nullable=False),
        sa.Column("chat_id", sa.String(length=128), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("done_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox")),
        sa.UniqueConstraint("channel", "event_id", name="uq_inbox_channel_event"),
    )
    op.create_index("ix_inbox_state_id", "inbox", ["state", "id"], unique=False)
    op.create_index("ix_inbox_chat", "inbox", ["channel", "chat_id", "id"], unique=False)
    op.create_table(
        "rate_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_events")),
    )
    op.create_index("ix_rate_events_key_time", "rate_events", ["key", "created_at"], unique=False)
    with op.batch_alter_table("outbox") as b:
        b.add_column(sa.Column("reply_to", sa.Text(), nullable=True))
        b.add_column(sa.Column("unanswered_id", sa.Integer(), nullable=True))
        b.add_column(sa.Column("followup_id", sa.Integer(), nullable=True))
        b.add_column(sa.Column("origin", sa.String(length=16), nullable=True))
        b.create_index(b.f("ix_outbox_unanswered_id"), ["unanswered_id"], unique=False)
        b.create_index(b.f("ix_outbox_followup_id"), ["followup_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox") as b:
        b.drop_index(b.f("ix_outbox_followup_id"))
        b.drop_index(b.f("ix_outbox_unanswered_id"))
        b.drop_column("origin")
        b.drop_column("followup_id")
        b.drop_column("unanswered_id")
        b.drop_column("reply_to")
    op.drop_index("ix_rate_events_key_time", table_name="rate_events")
    op.drop_table("rate_events")
    op.drop_index("ix_inbox_chat", table_name="inbox")
    op.drop_index("ix_inbox_state_id", table_name="inbox")
    op.drop_table("inbox")
