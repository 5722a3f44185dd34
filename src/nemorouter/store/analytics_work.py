"""What a job's requests covered: documents, pages, pages re-asked (the job view).

From the metadata the batch runner sends with each request (`doc`, `page`, a PDF chunk's
`pages`, `reask` on the second ask), kept as JSON text in the spend row. Counted by the
database (SQLite's JSON1, PostgreSQL's jsonb), not by the gateway: a job of 100k requests
is not read into the process that serves requests. Requests without that metadata (any
other client of the job) count in the job's `requests` only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, case, cast, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from nemorouter.store.schema import spend


def _sqlite_fields() -> tuple[ColumnElement[Any], ...]:
    m = spend.c.metadata
    return (
        case((func.json_type(m, "$.doc") == "text", func.json_extract(m, "$.doc"))),
        case((func.json_type(m, "$.page") == "integer", func.json_extract(m, "$.page"))),
        case((func.json_type(m, "$.pages") == "array", func.json_array_length(m, "$.pages")),
             else_=0),
        case((func.json_type(m, "$.reask") == "true", 1), else_=0),
    )  # fmt: skip


def _postgresql_fields() -> tuple[ColumnElement[Any], ...]:
    m = cast(spend.c.metadata, JSONB)
    return (
        case((func.jsonb_typeof(m["doc"]) == "string", m["doc"].astext)),
        case((func.jsonb_typeof(m["page"]) == "number", m["page"].astext)),
        case((func.jsonb_typeof(m["pages"]) == "array", func.jsonb_array_length(m["pages"])),
             else_=0),
        case((m["reask"].astext == "true", 1), else_=0),
    )  # fmt: skip


async def job_work(connection: AsyncConnection, job_id: str) -> dict[str, int]:
    """`{documents, pages, reasked_pages}`: distinct documents and pages (as the runner's
    summary.json counts them: a page retried or re-asked is still one page), and the pages
    asked again because the first answer was not acceptable."""
    fields = _postgresql_fields() if connection.dialect.name == "postgresql" else _sqlite_fields()
    doc, page, chunk, reask = fields
    per_request = (
        select(doc.label("doc"), page.label("page"), chunk.label("n"), reask.label("r"))
        .where(spend.c.job_id == job_id, spend.c.metadata.is_not(None))
        .subquery()
    )
    # One row per page asked (its first page, for a PDF chunk): retries and re-asks share it.
    per_page = (
        select(
            per_request.c.doc,
            func.max(per_request.c.n).label("n"),
            func.max(per_request.c.r).label("r"),
        )
        .where(per_request.c.doc.is_not(None), per_request.c.page.is_not(None))
        .group_by(per_request.c.doc, per_request.c.page)
        .subquery()
    )
    pages = case((per_page.c.n > 0, per_page.c.n), else_=1)  # a chunk covers its `pages`
    query = select(
        func.count(func.distinct(per_page.c.doc)),
        func.coalesce(func.sum(pages), 0),
        func.coalesce(func.sum(case((per_page.c.r == 1, pages), else_=0)), 0),
    )
    documents, covered, reasked = (await connection.execute(query)).one()
    return {"documents": int(documents), "pages": int(covered), "reasked_pages": int(reasked)}
