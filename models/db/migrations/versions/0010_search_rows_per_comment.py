"""SQLite's full-text index: one row per comment instead of one document per ticket.

Revision 0005 kept a ticket's whole thread in one FTS5 document, so every comment deleted and
re-inserted the tokens of all the comments before it: its cost grew with the thread. Here the
ticket's own text (subject, description) keeps its row in ``ticket_fts``, and each live comment
gets a row of its own in ``comment_fts`` (contentless: the bodies stay only in ``comment``; the
triggers hand FTS5 the old body to delete, as its manual requires). ``comment_search`` gives each
comment the stable integer key FTS5 needs and names its ticket. A comment now costs one key row
and its own tokens. The search (resolvers/search.py) matches each term against both tables and
keeps the tickets where every term matched some part, so the meaning of a query is unchanged: a
ticket matches when its subject, description and comments together hold every term, and a
phrase never spans two parts. PostgreSQL keeps its tsvector per ticket (a comment costs 0.85 of
an update there, see bench/RESULTS.md); its comment trigger now also follows a comment moved to
another ticket and a comment deleted outright (0005 followed edits and soft deletes only).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TOKENIZER = "porter unicode61 remove_diacritics 2"

DROP_0005 = [
    "DROP TRIGGER comment_search_updated",
    "DROP TRIGGER comment_search_inserted",
    "DROP TRIGGER ticket_search_updated",
    "DROP TRIGGER ticket_search_inserted",
    "DROP TABLE ticket_fts",
    "DROP TABLE ticket_text",
]

SQLITE_UP = [
    *DROP_0005,
    """CREATE TABLE ticket_text (
        n INTEGER PRIMARY KEY,
        ticket_id VARCHAR(40) NOT NULL UNIQUE,
        subject TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT ''
    )""",
    f"""CREATE VIRTUAL TABLE ticket_fts USING fts5(
        subject, description, content='ticket_text', content_rowid='n', tokenize='{TOKENIZER}'
    )""",
    """CREATE TRIGGER ticket_text_inserted AFTER INSERT ON ticket_text BEGIN
        INSERT INTO ticket_fts (rowid, subject, description) VALUES (new.n, new.subject, new.description);
    END""",
    """CREATE TRIGGER ticket_text_updated AFTER UPDATE ON ticket_text BEGIN
        INSERT INTO ticket_fts (ticket_fts, rowid, subject, description)
        VALUES ('delete', old.n, old.subject, old.description);
        INSERT INTO ticket_fts (rowid, subject, description) VALUES (new.n, new.subject, new.description);
    END""",
    """CREATE TRIGGER ticket_text_deleted AFTER DELETE ON ticket_text BEGIN
        INSERT INTO ticket_fts (ticket_fts, rowid, subject, description)
        VALUES ('delete', old.n, old.subject, old.description);
    END""",
    """CREATE TRIGGER ticket_search_inserted AFTER INSERT ON ticket BEGIN
        INSERT INTO ticket_text (ticket_id, subject, description)
        VALUES (new.id, new.subject, coalesce(new.description, ''));
    END""",
    """CREATE TRIGGER ticket_search_updated AFTER UPDATE OF subject, description ON ticket BEGIN
        UPDATE ticket_text SET subject = new.subject, description = coalesce(new.description, '')
        WHERE ticket_id = new.id;
    END""",
    """CREATE TABLE comment_search (
        n INTEGER PRIMARY KEY,
        comment_id VARCHAR(40) NOT NULL UNIQUE,
        ticket_id VARCHAR(40) NOT NULL
    )""",
    f"CREATE VIRTUAL TABLE comment_fts USING fts5(body, content='', tokenize='{TOKENIZER}')",
    # last_insert_rowid() is the key row's while the trigger runs
    """CREATE TRIGGER comment_search_inserted AFTER INSERT ON "comment" BEGIN
        INSERT INTO comment_search (comment_id, ticket_id) VALUES (new.id, new.ticket_id);
        INSERT INTO comment_fts (rowid, body) SELECT last_insert_rowid(), new.body WHERE new.deleted_at IS NULL;
    END""",
    """CREATE TRIGGER comment_search_updated AFTER UPDATE OF body, deleted_at, ticket_id ON "comment" BEGIN
        INSERT INTO comment_fts (comment_fts, rowid, body)
        SELECT 'delete', n, old.body FROM comment_search WHERE comment_id = old.id AND old.deleted_at IS NULL;
        UPDATE comment_search SET ticket_id = new.ticket_id WHERE comment_id = new.id AND ticket_id <> new.ticket_id;
        INSERT INTO comment_fts (rowid, body)
        SELECT n, new.body FROM comment_search WHERE comment_id = new.id AND new.deleted_at IS NULL;
    END""",
    """CREATE TRIGGER comment_search_deleted AFTER DELETE ON "comment" BEGIN
        INSERT INTO comment_fts (comment_fts, rowid, body)
        SELECT 'delete', n, old.body FROM comment_search WHERE comment_id = old.id AND old.deleted_at IS NULL;
        DELETE FROM comment_search WHERE comment_id = old.id;
    END""",
    # the index of what is already there
    """INSERT INTO ticket_text (ticket_id, subject, description)
       SELECT id, subject, coalesce(description, '') FROM ticket""",
    """INSERT INTO comment_search (comment_id, ticket_id)
       SELECT id, ticket_id FROM "comment" ORDER BY created_at, id""",
    """INSERT INTO comment_fts (rowid, body)
       SELECT s.n, c.body FROM comment_search s JOIN "comment" c ON c.id = s.comment_id
       WHERE c.deleted_at IS NULL""",
]

SQLITE_DOWN = [
    "DROP TRIGGER comment_search_deleted",
    "DROP TRIGGER comment_search_updated",
    "DROP TRIGGER comment_search_inserted",
    "DROP TABLE comment_fts",
    "DROP TABLE comment_search",
    *DROP_0005[2:],  # the comment triggers had 0005's names: dropped above
]


POSTGRES_FOLLOW_COMMENT = """CREATE OR REPLACE FUNCTION ticket_search_follow_comment() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
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
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM ticket_search_refresh(OLD.ticket_id);
    ELSE  -- edited, deleted, restored or moved: the documents afresh
        PERFORM ticket_search_refresh(NEW.ticket_id);
        IF OLD.ticket_id <> NEW.ticket_id THEN
            PERFORM ticket_search_refresh(OLD.ticket_id);
        END IF;
    END IF;
    RETURN NULL;
END $$"""

POSTGRES_UP = [
    POSTGRES_FOLLOW_COMMENT,
    'DROP TRIGGER ticket_search_follow ON "comment"',
    """CREATE TRIGGER ticket_search_follow AFTER INSERT OR DELETE OR UPDATE OF body, deleted_at, ticket_id
        ON "comment" FOR EACH ROW EXECUTE FUNCTION ticket_search_follow_comment()""",
]

POSTGRES_DOWN = [
    'DROP TRIGGER ticket_search_follow ON "comment"',
    """CREATE TRIGGER ticket_search_follow AFTER INSERT OR UPDATE OF body, deleted_at ON "comment"
        FOR EACH ROW EXECUTE FUNCTION ticket_search_follow_comment()""",
]  # the function's DELETE and move branches are then never taken: 0005's behaviour


def upgrade() -> None:
    for statement in SQLITE_UP if op.get_bind().dialect.name == "sqlite" else POSTGRES_UP:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        for statement in POSTGRES_DOWN:
            op.execute(statement)
    else:
        for statement in SQLITE_DOWN:
            op.execute(statement)
        # back to one document per ticket: revision 0005's own statements, then the threads
        for statement in _revision_0005().SQLITE_UP:
            op.execute(statement)
        op.execute(THREADS_0005)


#: each ticket's live comments, oldest first, as revision 0005 kept them in its document
THREADS_0005 = """UPDATE ticket_text SET comments = coalesce((
    SELECT group_concat(body, char(10, 57344, 10)) FROM (
        SELECT body FROM "comment" WHERE ticket_id = ticket_text.ticket_id AND deleted_at IS NULL
        ORDER BY created_at, id
    )
), '')"""


def _revision_0005() -> ModuleType:
    path = Path(__file__).with_name("0005_conversation_and_search.py")
    spec = importlib.util.spec_from_file_location("support_graph_revision_0005", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
