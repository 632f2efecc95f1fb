"""Repositories: one module per resource, each a set of asyncio-side functions.

Call them through the database, one crossing per operation::

    row = await db.transaction(clients.create, actor, {"name": "Acme"})

Every function takes the tenant from an :class:`Actor` (or an explicit
``tenant_id``) built from the verified token, and filters on it.
"""

from ensemble.persistence.repos._common import Actor, Page

__all__ = ["Actor", "Page"]
