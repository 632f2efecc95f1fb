"""Serve the local object store's signed download URLs.

S3 URLs point at S3 itself; this route only answers for a store that signs
its own URLs (the local filesystem one).  The signature is the credential:
no token is needed, and nothing but the exact key signed is reachable.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from ensemble.errors import NotFound
from ensemble.gateway._permissions import PUBLIC
from ensemble.gateway._routing import Api, Call
from ensemble.gateway._validation import QueryModel
from ensemble.gateway.routes._streaming import download_response

api = Api("objects", tag="Files")


class SignedQuery(QueryModel):
    expires: int = Field(ge=0, le=2**53, description="Unix time the link stops working.")
    sig: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(description="The link's signature.")


async def _file_name(conn: Any, key: str) -> str | None:
    name: str | None = await conn.fetchval("SELECT name FROM files WHERE object_key = $1", key)
    return name


@api.route(
    "GET", "/objects/<path:key>", permission=PUBLIC, rate="none", query=SignedQuery,
    raw_media_type="*/*", errors=(403,),
    summary="Download an object through a signed URL (local object store)",
)
async def get_object(call: Call, key: str) -> Any:
    store = call.services.objects
    verify = getattr(store, "verify_signed_url", None)
    if verify is None:
        raise NotFound("this object store serves its own signed URLs")
    q: SignedQuery = call.query
    verify(key, q.expires, q.sig)  # Forbidden when forged, tampered with or expired
    stream = await store.get(key)
    name = await call.db.run(_file_name, key)
    return download_response(stream, filename=name or key.rsplit("/", 1)[-1])
