"""DKIM signing keys: ``dkim_keys`` (issue 17, DKIM signing).

One row per domain and selector: the private key (only the signer reads it), the public
key as published (the TXT record's ``p=``) and the key's schedule -- published from
``published_at``, signing from ``signs_from`` until ``retires_at``.  In the database, not in
a key directory, so every node sharing one PostgreSQL signs with the same keys and a
rotation made by ``mailstack dkim rotate`` reaches them all (docs/architecture.md).

Revision ID: 0017
Revises: 0016
"""
import sqlalchemy as sa
from alembic import op

from mailstack.store.schema import UTCDateTime

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "dkim_keys",
        sa.Column("id", sa.Integer().with_variant(sa.BigInteger(), "postgresql"), primary_key=True),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("selector", sa.String(63), nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("private_key", sa.Text(), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("published_at", UTCDateTime, nullable=False),
        sa.Column("signs_from", UTCDateTime, nullable=False),
        sa.Column("retires_at", UTCDateTime),
        sa.UniqueConstraint("domain", "selector", name="uq_dkim_keys_domain_selector"),
    )


def downgrade():
    op.drop_table("dkim_keys")
