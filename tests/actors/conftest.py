from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from ensemble.actors import ActorSystem, Address, open_actor_system
from ensemble.actors.examples import EchoRoom
from ensemble.persistence.database import Database


@pytest.fixture
def room() -> Callable[[], Address]:
    return lambda: Address("room", uuid.uuid4().hex)


@pytest.fixture
def open_system(db: Database) -> Callable[..., Any]:
    @asynccontextmanager
    async def _open(*behaviors: Any, **options: Any) -> AsyncIterator[ActorSystem]:
        options.setdefault("idle_timeout", 60.0)
        async with open_actor_system(db, behaviors or [EchoRoom()], **options) as system:
            yield system

    return _open


@pytest.fixture
async def system(open_system: Callable[..., Any]) -> AsyncIterator[ActorSystem]:
    async with open_system() as s:
        yield s
