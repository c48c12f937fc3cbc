"""Answers remember what they answered: reviewer, rubric revision and a digest of the answer; ids per reviewer.

``submissions`` gains ``reviewer_id`` (submission ids are unique per reviewer, no longer globally, so an id says
nothing about other reviewers), ``rubric_revision`` (the revision of the rubric the answer was given on; with the
append-only ``rubric_revisions`` table it recovers each criterion's text and polarity as the reviewer saw them) and
``answer_sha256`` (a digest of the answer, so a reused id with a different answer is refused, not dropped).
``projects`` gains ``blind_terms``: the admin's extra names to mask for that project (JSON list; NULL = none).

Rows stored before this revision are backfilled: the reviewer from the assignment; the revision from the rubric
decision (the revision it was made on) or, for labels, the latest revision of the rubric saved no later than the
answer. ``answer_sha256`` stays empty for them; such answers are compared by their stored labels.

Revision ID: 0002_answer_revision
Revises: 0001
Create Date: 2026-11-25 13:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_answer_revision"
down_revision = "0001"
branch_labels = None
depends_on = None

# SQLite reflects the unnamed UNIQUE(uid) of 0001 without a name; batch mode names it by this convention.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _uid_unique_name() -> str:
    for unique in sa.inspect(op.get_bind()).get_unique_constraints("submissions"):
        if unique["column_names"] == ["uid"] and unique.get("name"):
            return str(unique["name"])  # PostgreSQL: submissions_uid_key
    return "uq_submissions_uid"


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch_op:
        batch_op.add_column(sa.Column("blind_terms", sa.Text(), nullable=True))

    with op.batch_alter_table("submissions") as batch_op:
        batch_op.add_column(sa.Column("reviewer_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("rubric_revision", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("answer_sha256", sa.String(length=64), nullable=True))

    op.execute(
        "UPDATE submissions SET reviewer_id = "
        "(SELECT assignments.reviewer_id FROM assignments WHERE assignments.id = submissions.assignment_id)"
    )
    # A decision stores the revision it left the rubric at; an edit was made on the one before.
    op.execute(
        "UPDATE submissions SET rubric_revision = "
        "(SELECT CASE WHEN d.decision = 'edit' THEN d.revision - 1 ELSE d.revision END "
        "FROM rubric_decisions d WHERE d.submission_id = submissions.id)"
    )
    op.execute(
        "UPDATE submissions SET rubric_revision = COALESCE("
        "(SELECT MAX(r.number) FROM rubric_revisions r "
        "JOIN tasks t ON t.item_id = r.item_id JOIN assignments a ON a.task_id = t.id "
        "WHERE a.id = submissions.assignment_id AND r.created_at <= submissions.created_at), 0) "
        "WHERE rubric_revision IS NULL"
    )

    uid_unique = _uid_unique_name()
    with op.batch_alter_table("submissions", naming_convention=NAMING) as batch_op:
        batch_op.alter_column("reviewer_id", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("rubric_revision", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint(uid_unique, type_="unique")
        batch_op.create_unique_constraint("uq_submissions_reviewer_uid", ["reviewer_id", "uid"])
        batch_op.create_foreign_key("fk_submissions_reviewer_id_users", "users", ["reviewer_id"], ["id"])


def downgrade() -> None:
    # Fails if two reviewers used the same submission id: 0001 cannot hold both.
    with op.batch_alter_table("submissions", naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint("fk_submissions_reviewer_id_users", type_="foreignkey")
        batch_op.drop_constraint("uq_submissions_reviewer_uid", type_="unique")
        batch_op.create_unique_constraint("submissions_uid_key", ["uid"])
        batch_op.drop_column("answer_sha256")
        batch_op.drop_column("rubric_revision")
        batch_op.drop_column("reviewer_id")
    with op.batch_alter_table("projects") as batch_op:
        batch_op.drop_column("blind_terms")
