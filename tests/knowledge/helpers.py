"""Builders shared by the knowledge tests."""

from __future__ import annotations

import io
from collections.abc import Sequence

from pypdf import PdfReader, PdfWriter

from ensemble.knowledge import Chunk
from ensemble.knowledge._pdfwrite import Block, render_pdf


def pdf_of(pages: Sequence[Sequence[Block]], *, title: str = "Test manual", footer: str | None = None) -> bytes:
    return render_pdf(pages, title=title, footer=footer)


def encrypted(pdf: bytes, *, user_password: str, algorithm: str = "AES-128") -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def chunk(
    cid: str,
    text: str,
    *,
    document_id: str = "doc",
    page: int = 1,
    manufacturer: str | None = None,
    model: str | None = None,
    equipment_type: str | None = None,
    category: str | None = None,
    tenant_id: str | None = None,
) -> Chunk:
    return Chunk(
        id=cid,
        document_id=document_id,
        content_hash="0" * 64,
        page=page,
        position=0,
        text=text,
        heading=None,
        source=f"{document_id} manual",
        manufacturer=manufacturer,
        model=model,
        equipment_type=equipment_type,
        category=category,
        tenant_id=tenant_id,
    )
