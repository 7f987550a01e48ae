"""MTA-STS and TLS-RPT (issue 17, part 3): ``mta_sts_policies`` and ``tls_results``.

``mta_sts_policies``: the policies other domains serve, cached per domain with the id of
their ``_mta-sts`` record and their expiry (RFC 8461 §5.1), so a restart or another node
keeps enforcing them and a failed fetch falls back on them.  ``tls_results``: outbound TLS
sessions counted per recipient domain, UTC day and result, for the daily TLS-RPT reports
(RFC 8460); a day's rows go once its report is queued.

Revision ID: 0018
Revises: 0017
"""
import sqlalchemy as sa
from alembic import op

from mailstack.store.schema import UTCDateTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "mta_sts_policies",
        sa.Column("domain", sa.String(253), primary_key=True),
        sa.Column("policy_id", sa.String(32), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("mx", sa.Text(), nullable=False),
        sa.Column("max_age", sa.Integer(), nullable=False),
        sa.Column("policy_text", sa.Text(), nullable=False),
        sa.Column("fetched_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "tls_results",
        sa.Column("id", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), primary_key=True),
        sa.Column("domain", sa.String(253), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("policy_type", sa.String(16), nullable=False),
        sa.Column("policy_id", sa.String(32), nullable=False),
        sa.Column("result_type", sa.String(48), nullable=False),
        sa.Column("mx_host", sa.String(255), nullable=False),
        sa.Column("remote_ip", sa.String(45), nullable=False),
        sa.Column("sessions", sa.Integer(), nullable=False),
        sa.UniqueConstraint("domain", "day", "policy_type", "policy_id", "result_type",
                            "mx_host", "remote_ip", name="uq_tls_results_key"),
    )


def downgrade():
    op.drop_table("tls_results")
    op.drop_table("mta_sts_policies")
