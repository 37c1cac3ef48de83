"""The conversation: comments, merged tickets, and the full-text index over tickets and comments.

The index holds one document per ticket (subject, description, the bodies of its live
comments) and is kept in step by triggers, in the writing transaction, whatever writes the
rows. Existing tickets are indexed here.

- SQLite: ``ticket_text`` (the document, with an integer key) and the FTS5 table ``ticket_fts``
  over it (external content; Porter stems over unicode61 with diacritics removed). Comments are
  joined by a private-use character: a token of its own, which no query can hold, so a phrase
  never spans two comments.
- PostgreSQL: ``ticket_search`` (a tsvector per ticket, weighted subject A, description B,
  comments C) with a GIN index, in the text search configuration ``support_english``: English
  stems, and accents removed where the ``unaccent`` extension can be installed (a trusted
  extension since PostgreSQL 13; without it search is accent-sensitive). Each part, and each
  comment, starts with a stop word: a gap in the positions, so a phrase never spans two parts.
  A tsvector holds at most 1 MB: past that, a ticket's further comments are not indexed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_UP = [
    """CREATE TABLE ticket_text (
        n INTEGER PRIMARY KEY,
        ticket_id VARCHAR(40) NOT NULL UNIQUE,
        subject TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '',
        comments TEXT NOT NULL DEFAULT ''
    )""",
    """CREATE VIRTUAL TABLE ticket_fts USING fts5(
        subject, description, comments, content='ticket_text', content_rowid='n',
        tokenize='porter unicode61 remove_diacritics 2'
    )""",
    # the FTS index follows ticket_text (the FTS5 manual's external-content triggers)
    """CREATE TRIGGER ticket_text_inserted AFTER INSERT ON ticket_text BEGIN
        INSERT INTO ticket_fts (rowid, subject, description, comments)
        VALUES (new.n, new.subject, new.description, new.comments);
    END""",
    """CREATE TRIGGER ticket_text_updated AFTER UPDATE ON ticket_text BEGIN
        INSERT INTO ticket_fts (ticket_fts, rowid, subject, description, comments)
        VALUES ('delete', old.n, old.subject, old.description, old.comments);
        INSERT INTO ticket_fts (rowid, subject, description, comments)
        VALUES (new.n, new.subject, new.description, new.comments);
    END""",
    """CREATE TRIGGER ticket_text_deleted AFTER DELETE ON ticket_text BEGIN
        INSERT INTO ticket_fts (ticket_fts, rowid, subject, description, comments)
        VALUES ('delete', old.n, old.subject, old.description, old.comments);
    END""",
    # ticket_text follows tickets and comments
    """CREATE TRIGGER ticket_search_inserted AFTER INSERT ON ticket BEGIN
        INSERT INTO ticket_text (ticket_id, subject, description)
        VALUES (new.id, new.subject, coalesce(new.description, ''));
    END""",
    """CREATE TRIGGER ticket_search_updated AFTER UPDATE OF subject, description ON ticket BEGIN
        UPDATE ticket_text SET subject = new.subject, description = coalesce(new.description, '')
        WHERE ticket_id = new.id;
    END""",
    """CREATE TRIGGER comment_search_inserted AFTER INSERT ON "comment" WHEN new.deleted_at IS NULL BEGIN
        UPDATE ticket_text SET comments = comments || char(10, 57344, 10) || new.body WHERE ticket_id = new.ticket_id;
    END""",
    """CREATE TRIGGER comment_search_updated AFTER UPDATE OF body, deleted_at ON "comment" BEGIN
        UPDATE ticket_text SET comments = coalesce((
            SELECT group_concat(body, char(10, 57344, 10)) FROM (
                SELECT body FROM "comment" WHERE ticket_id = new.ticket_id AND deleted_at IS NULL
                ORDER BY created_at, id
            )
        ), '') WHERE ticket_id = new.ticket_id;
    END""",
    """INSERT INTO ticket_text (ticket_id, subject, description)
       SELECT id, subject, coalesce(description, '') FROM ticket""",
]

SQLITE_DOWN = [
    "DROP TRIGGER comment_search_updated",
    "DROP TRIGGER comment_search_inserted",
    "DROP TRIGGER ticket_search_updated",
    "DROP TRIGGER ticket_search_inserted",
    "DROP TABLE ticket_fts",
    "DROP TABLE ticket_text",
]

#: how much of a thread PostgreSQL indexes when it builds a ticket's document afresh: a tsvector
#: holds at most 1 MB, and this much text in the worst case (short distinct words) stays below
COMMENT_CHARS = 200_000

POSTGRES_UP = [
    """DO $$ BEGIN
        CREATE EXTENSION IF NOT EXISTS unaccent;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'unaccent is not available: search will be accent-sensitive';
    END $$""",
    "CREATE TEXT SEARCH CONFIGURATION support_english (COPY = english)",
    """DO $$ BEGIN
        IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'unaccent') THEN
            ALTER TEXT SEARCH CONFIGURATION support_english
                ALTER MAPPING FOR hword, hword_part, word WITH unaccent, english_stem;
        END IF;
    END $$""",
    """CREATE TABLE ticket_search (
        ticket_id VARCHAR(40) PRIMARY KEY REFERENCES ticket (id),
        document TSVECTOR NOT NULL
    )""",
    "CREATE INDEX ix_ticket_search_document ON ticket_search USING gin (document)",
    """CREATE FUNCTION ticket_search_document(ticket_id VARCHAR, comment_chars INTEGER) RETURNS TSVECTOR
    LANGUAGE sql STABLE AS $$
        SELECT setweight(to_tsvector('support_english', t.subject), 'A')
            || setweight(to_tsvector('support_english', 'the ' || coalesce(t.description, '')), 'B')
            || setweight(to_tsvector('support_english', 'the ' || left(coalesce((
                SELECT string_agg(c.body, ' the ' ORDER BY c.created_at, c.id) FROM "comment" c
                WHERE c.ticket_id = t.id AND c.deleted_at IS NULL
            ), ''), $2)), 'C')
        FROM ticket t WHERE t.id = $1
    $$""",
    """CREATE FUNCTION ticket_search_refresh(ticket_id VARCHAR) RETURNS VOID LANGUAGE plpgsql AS $$
    DECLARE
        found TSVECTOR;
    BEGIN
        BEGIN
            found := ticket_search_document(ticket_id, COMMENT_CHARS);
        EXCEPTION WHEN program_limit_exceeded THEN  -- over a tsvector's 1 MB: the ticket's own text
            found := ticket_search_document(ticket_id, 0);
        END;
        INSERT INTO ticket_search AS s (ticket_id, document) VALUES (ticket_id, found)
        ON CONFLICT ON CONSTRAINT ticket_search_pkey DO UPDATE SET document = EXCLUDED.document;
    END $$""",
    """CREATE FUNCTION ticket_search_follow_ticket() RETURNS TRIGGER LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM ticket_search_refresh(NEW.id);
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER ticket_search_follow AFTER INSERT OR UPDATE OF subject, description ON ticket
        FOR EACH ROW EXECUTE FUNCTION ticket_search_follow_ticket()""",
    """CREATE FUNCTION ticket_search_follow_comment() RETURNS TRIGGER LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            IF NEW.deleted_at IS NULL THEN  -- a new reply: its words join the ticket's
                BEGIN
                    UPDATE ticket_search
                    SET document = document || setweight(to_tsvector('support_english', 'the ' || NEW.body), 'C')
                    WHERE ticket_id = NEW.ticket_id;
                EXCEPTION WHEN program_limit_exceeded THEN
                    NULL;  -- the ticket's document is full (a tsvector holds 1 MB): kept as it is
                END;
            END IF;
        ELSE  -- deleted or edited: the ticket's document afresh
            PERFORM ticket_search_refresh(NEW.ticket_id);
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER ticket_search_follow AFTER INSERT OR UPDATE OF body, deleted_at ON "comment"
        FOR EACH ROW EXECUTE FUNCTION ticket_search_follow_comment()""",
    "INSERT INTO ticket_search (ticket_id, document) SELECT id, ticket_search_document(id, COMMENT_CHARS) FROM ticket",
]

POSTGRES_DOWN = [
    'DROP TRIGGER ticket_search_follow ON "comment"',
    "DROP TRIGGER ticket_search_follow ON ticket",
    "DROP FUNCTION ticket_search_follow_comment()",
    "DROP FUNCTION ticket_search_follow_ticket()",
    "DROP FUNCTION ticket_search_refresh(VARCHAR)",
    "DROP TABLE ticket_search",
    "DROP FUNCTION ticket_search_document(VARCHAR, INTEGER)",
    "DROP TEXT SEARCH CONFIGURATION support_english",
]


def upgrade() -> None:
    op.create_table(
        "comment",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ticket_id", sa.String(length=40), nullable=False),
        sa.Column("body", sa.String(length=65536), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("author_id", sa.String(length=40), nullable=True),
        sa.Column("author_role", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["author_id"], ["contact.id"]),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_comment_author_id", "comment", ["author_id"])
    op.create_index("ix_comment_created_at", "comment", ["created_at"])
    op.create_index("ix_comment_tenant", "comment", ["tenant"])
    op.create_index("ix_comment_tenant_created", "comment", ["tenant", "created_at", "id"])
    op.create_index("ix_comment_ticket_created", "comment", ["ticket_id", "created_at", "id"])

    merged_into = sa.Column("merged_into_id", sa.String(length=40), sa.ForeignKey("ticket.id"), nullable=True)
    if op.get_bind().dialect.name == "sqlite":  # ADD COLUMN … REFERENCES: no copy of the table
        op.execute("ALTER TABLE ticket ADD COLUMN merged_into_id VARCHAR(40) REFERENCES ticket (id)")
    else:
        op.add_column("ticket", merged_into)
    op.create_index("ix_ticket_merged_into_id", "ticket", ["merged_into_id"])

    for statement in SQLITE_UP if op.get_bind().dialect.name == "sqlite" else POSTGRES_UP:
        op.execute(statement.replace("COMMENT_CHARS", str(COMMENT_CHARS)))


def downgrade() -> None:
    for statement in SQLITE_DOWN if op.get_bind().dialect.name == "sqlite" else POSTGRES_DOWN:
        op.execute(statement)
    op.drop_index("ix_ticket_merged_into_id", table_name="ticket")
    with op.batch_alter_table("ticket") as batch_op:
        batch_op.drop_column("merged_into_id")
    op.drop_table("comment")
