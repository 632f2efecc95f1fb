"""Object storage: one interface, a local-filesystem and an S3 backend.

Keys are ``/``-paths; tenant data lives under ``tenants/{tenant_id}/`` (build
keys with :func:`tenant_key`, never by string formatting) and global content
under a namespace such as ``manuals/`` (:func:`global_key`).  Routes acting
for a tenant use ``store.scoped(tenant_id)``, which refuses other keys.
"""

from ._base import (
    DEFAULT_CONTENT_TYPE,
    MAX_LIST_LIMIT,
    MAX_SIGNED_URL_TTL_S,
    ObjectInfo,
    ObjectStore,
    ObjectStream,
    ObjectSummary,
    ScopedObjectStore,
)
from ._factory import open_object_store
from ._keys import (
    MAX_KEY_BYTES,
    global_key,
    tenant_key,
    tenant_prefix,
    validate_key,
    validate_prefix,
)
from ._local import LocalObjectStore, open_local_store
from ._s3 import S3ObjectStore, open_s3_store
from ._signing import URL_PREFIX, UrlSigner, load_signing_key

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "MAX_KEY_BYTES",
    "MAX_LIST_LIMIT",
    "MAX_SIGNED_URL_TTL_S",
    "URL_PREFIX",
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectStore",
    "ObjectStream",
    "ObjectSummary",
    "S3ObjectStore",
    "ScopedObjectStore",
    "UrlSigner",
    "global_key",
    "load_signing_key",
    "open_local_store",
    "open_object_store",
    "open_s3_store",
    "tenant_key",
    "tenant_prefix",
    "validate_key",
    "validate_prefix",
]
