"""Seeding: make the database match the demo catalog, creating only what is missing.

Every step looks first and creates second, through the repositories (and,
for print jobs, the hub actor) that the REST API uses, so running it again
creates nothing and the data is what the API itself would have made:

1. the owner signs the tenant up (``tenants.signup``), the others are added
   as members (``users.add_member``); passwords come from the credentials
   file, or are generated and stored there, and an account whose password
   does not match the file is reset to it (so the printed credentials always
   work);
2. the hub is provisioned as ``ensemble hub provision`` does and claimed with
   its claim code as ``POST /api/v1/hubs/claim`` does; its secret goes into the
   credentials file.  A demo hub whose secret is lost is released and
   replaced, since only a derived key is stored;
3. three OPC UA printers behind the hub, five print files in the object store;
4. when the tenant has no print job yet: a cancelled one and two queued ones
   that the fleet then completes and fails (``_director.py``);
5. the sample manuals (``ensure_sample_manuals``, idempotent by content hash).
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from ensemble.demo import _catalog as catalog
from ensemble.demo._credentials import CREDENTIALS_FILE, DemoCredentials, load_credentials, new_password, save_credentials
from ensemble.demo._jobs import cancel_print_job, submit_print_job
from ensemble.errors import Conflict
from ensemble.log import get_logger
from ensemble.persistence.objects import tenant_key
from ensemble.persistence.repos import Actor, files, hubs, print_jobs, printers, tenants, users

if TYPE_CHECKING:
    from ensemble.gateway._passwords import PasswordHasher
    from ensemble.server import Services

__all__ = ["DemoSeed", "DemoUser", "DemoPrinter", "seed_demo", "credentials_path"]

log = get_logger("ensemble.demo")


@dataclasses.dataclass(frozen=True)
class DemoUser:
    email: str
    name: str
    role: str
    password: str
    user_id: uuid.UUID


@dataclasses.dataclass(frozen=True)
class DemoPrinter:
    printer_id: uuid.UUID
    name: str
    index: int  # into catalog.PRINTERS


@dataclasses.dataclass(frozen=True)
class DemoSeed:
    tenant_id: uuid.UUID
    tenant_name: str
    users: tuple[DemoUser, ...]
    hub_id: str
    hub_secret: str
    printers: tuple[DemoPrinter, ...]
    files: dict[str, uuid.UUID]  # file name -> file id
    credentials_path: Path
    created: dict[str, int]  # what this run created or reset, by kind

    @property
    def owner(self) -> DemoUser:
        return self.users[0]


def credentials_path(data_dir: Path) -> Path:
    return data_dir / CREDENTIALS_FILE


async def seed_demo(services: Services, *, origin: str, path: Path | None = None) -> DemoSeed:
    """Create what is missing of the demo; ``origin`` is the server's ``http://host:port``."""
    from ensemble.gateway._passwords import PasswordHasher

    path = path or credentials_path(services.settings.data_dir)
    stored = load_credentials(path) or DemoCredentials()
    run = _Seeding(services, PasswordHasher(services.settings), path, stored)
    await run.people()
    await run.hub()
    await run.fleet()
    await run.print_files()
    await run.jobs(origin)
    await run.manuals()
    seed = run.result()
    log.info("demo_seeded", tenant_id=str(seed.tenant_id), hub_id=seed.hub_id,
             created={k: v for k, v in seed.created.items() if v})
    return seed


class _Seeding:
    def __init__(self, services: Services, hasher: PasswordHasher, path: Path, stored: DemoCredentials) -> None:
        self.services = services
        self.db = services.db
        self.hasher = hasher
        self.path = path
        self.stored = stored
        self.credentials = DemoCredentials(hub_id=stored.hub_id, hub_secret=stored.hub_secret)
        self.created: dict[str, int] = dict.fromkeys(
            ("tenants", "users", "memberships", "passwords_reset", "hubs", "hubs_released", "printers",
             "printers_moved", "files", "print_jobs", "manuals"), 0)
        self.tenant_id: uuid.UUID | None = None
        self.users: list[DemoUser] = []
        self.hub_uuid: uuid.UUID | None = None
        self.printers: list[DemoPrinter] = []
        self.files: dict[str, uuid.UUID] = {}

    @property
    def tenant(self) -> uuid.UUID:
        assert self.tenant_id is not None
        return self.tenant_id

    @property
    def actor(self) -> Actor:
        assert self.users
        return Actor(tenant_id=self.tenant, user_id=self.users[0].user_id, request_id="ensemble-demo")

    def _password(self, email: str) -> tuple[str, bool]:
        """The stored password for ``email`` (and True), or a new one (and False)."""
        stored = self.stored.passwords.get(email.lower())
        return (stored, True) if stored else (new_password(), False)

    async def _ensure_password(self, account: dict[str, Any], password: str, known: bool) -> None:
        if known and await self.hasher.verify(account.get("password_hash"), password):
            return
        password_hash = await self.hasher.hash(password)
        await self.db.run(users.set_password_hash, account["id"], password_hash)
        self.created["passwords_reset"] += 1

    def _save(self) -> None:
        self.credentials.passwords = {u.email: u.password for u in self.users}
        save_credentials(self.path, self.credentials, [
            {"email": u.email, "password": u.password, "role": u.role, "name": u.name} for u in self.users
        ])

    # -- 1. the tenant and its people ---------------------------------------------------

    async def people(self) -> None:
        owner_spec, *others = catalog.USERS
        password, known = self._password(owner_spec.email)
        account = await self.db.run(users.find_for_login, owner_spec.email)
        if account is None:
            password_hash = await self.hasher.hash(password)
            user, tenant = await self.db.run(
                lambda conn: tenants.signup(
                    conn, email=owner_spec.email, name=owner_spec.name, password_hash=password_hash,
                    tenant_name=catalog.TENANT_NAME, tenant_slug=None, request_id="ensemble-demo",
                )
            )
            self.tenant_id = tenant["id"]
            self.created["tenants"] += 1
            self.created["users"] += 1
            owner_id = user["id"]
        else:
            owned = [m for m in account["memberships"]
                     if m["tenant_name"] == catalog.TENANT_NAME and m["role"] == "owner"]
            if not owned:
                raise Conflict(
                    f"the demo account {owner_spec.email} exists but owns no tenant named {catalog.TENANT_NAME!r}; "
                    "use a fresh database (or data directory) for the demo"
                )
            self.tenant_id = owned[0]["tenant_id"]
            owner_id = account["id"]
            await self._ensure_password(account, password, known)
        self.users.append(DemoUser(owner_spec.email, owner_spec.name, "owner", password, owner_id))

        for spec in others:
            password, known = self._password(spec.email)
            account = await self.db.run(users.find_for_login, spec.email)
            role = spec.role
            if account is None:
                password_hash = await self.hasher.hash(password)
                member = await self.db.run(
                    lambda conn, s=spec, h=password_hash: users.add_member(
                        conn, self.actor, email=s.email, name=s.name, role=s.role, password_hash=h)
                )
                self.created["users"] += 1
                self.created["memberships"] += 1
                user_id = member["id"]
            else:
                user_id = account["id"]
                membership = [m for m in account["memberships"] if m["tenant_id"] == self.tenant_id]
                if membership:
                    role = membership[0]["role"]  # a role changed in the console stays changed
                else:
                    await self.db.run(
                        lambda conn, s=spec: users.add_member(
                            conn, self.actor, email=s.email, name=None, role=s.role, password_hash=None)
                    )
                    self.created["memberships"] += 1
                await self._ensure_password(account, password, known)
            self.users.append(DemoUser(spec.email, spec.name, role, password, user_id))
        self._save()

    # -- 2. the hub -------------------------------------------------------------------------

    async def hub(self) -> None:
        from ensemble.gateway.sockets.hubs import notify_hub_changed
        from ensemble.hubs.protocol import derive_hub_key, generate_hub_credentials

        assert self.tenant_id is not None
        keep: uuid.UUID | None = None
        if self.credentials.hub_id and self.credentials.hub_secret:
            hub_uuid = uuid.UUID(self.credentials.hub_id)
            found = await self.db.run(hubs.credentials, hub_uuid)
            expected = derive_hub_key(self.credentials.hub_id, self.credentials.hub_secret)
            if found is not None and found[1] == expected and found[0] in (None, self.tenant_id):
                keep = hub_uuid
                if found[0] is None:  # released in the console: claim it back
                    await self._claim(hub_uuid)
        if keep is None:
            # A demo hub we cannot sign for (its secret is gone with the old
            # file): release it, as POST /hubs/{id}/release does, and make a new one.
            tenant = self.tenant
            page = await self.db.run(lambda conn: hubs.list_hubs(conn, tenant, search=catalog.HUB_NAME, limit=100))
            for old in page.items:
                if old["name"] == catalog.HUB_NAME:
                    await self.db.run(hubs.release, self.actor, old["id"])
                    await notify_hub_changed(self.services, old["id"])
                    self.created["hubs_released"] += 1
            creds = generate_hub_credentials()
            keep = uuid.UUID(creds.hub_id)
            await self.db.run(
                lambda conn: hubs.provision(conn, hub_id=keep, hmac_key=derive_hub_key(creds.hub_id, creds.secret),
                                            firmware_version="ensemble-demo")
            )
            self.credentials.hub_id, self.credentials.hub_secret = creds.hub_id, creds.secret
            self._save()  # before claiming: a secret never exists only in memory
            await self._claim(keep)
            self.created["hubs"] += 1
        self.hub_uuid = keep

    async def _claim(self, hub_uuid: uuid.UUID) -> None:
        from ensemble.gateway.sockets.hubs import notify_hub_changed

        ttl = self.services.settings.hub_claim_code_ttl_s
        code, _ = await self.db.run(hubs.issue_claim_code, hub_uuid, ttl)
        row = await self.db.run(hubs.claim, self.actor, code, catalog.HUB_NAME)
        await notify_hub_changed(self.services, row["id"])

    # -- 3. printers and print files ------------------------------------------------------------

    async def fleet(self) -> None:
        from ensemble.gateway.sockets.hubs import notify_hub_changed

        assert self.tenant_id is not None and self.hub_uuid is not None
        tenant = self.tenant
        page = await self.db.run(lambda conn: printers.list_printers(conn, tenant, limit=1000))
        by_name = {row["name"]: row for row in page.items}
        for index, spec in enumerate(catalog.PRINTERS):
            row = by_name.get(spec.name)
            if row is None:
                row = await self.db.run(printers.create, self.actor, {
                    "name": spec.name, "model": spec.model, "manufacturer": spec.manufacturer,
                    "serial_number": spec.serial_number, "connection_type": "opcua", "location": spec.location,
                    "hub_id": self.hub_uuid, "is_active": True, "sort_order": index + 1,
                })
                self.created["printers"] += 1
            elif row["hub_id"] != self.hub_uuid:
                row = await self.db.run(printers.update, self.actor, row["id"], {"hub_id": self.hub_uuid})
                self.created["printers_moved"] += 1
            self.printers.append(DemoPrinter(row["id"], spec.name, index))
        # The hub's actor learns its printers now rather than at the first unknown report.
        await notify_hub_changed(self.services, self.hub_uuid)

    async def print_files(self) -> None:
        tenant = self.tenant
        store = self.services.objects.scoped(tenant)
        for spec in catalog.PRINT_FILES:
            page = await self.db.run(
                lambda conn, s=spec: files.list_files(conn, tenant, search=s.name, limit=100))
            same = [row for row in page.items if row["name"] == spec.name]
            if same:
                self.files[spec.name] = same[-1]["id"]  # the oldest: the demo's own
                continue
            # As POST /api/v1/files: the bytes under a key made from the new id, then the row.
            file_id = uuid.uuid4()
            key = tenant_key(tenant, "files", str(file_id))
            info = await store.put(key, catalog.print_file_bytes(spec), content_type="text/plain",
                                   metadata={"file-id": str(file_id)})
            try:
                await self.db.run(files.create, self.actor, {
                    "id": file_id, "name": spec.name, "object_key": key, "content_type": "text/plain",
                    "size_bytes": info.size, "etag": info.etag,
                })
            except BaseException:
                with trio.CancelScope(shield=True):
                    await store.delete(key)
                raise
            self.files[spec.name] = file_id
            self.created["files"] += 1

    # -- 4. print jobs, once ---------------------------------------------------------------------

    async def jobs(self, origin: str) -> None:
        tenant = self.tenant
        page = await self.db.run(lambda conn: print_jobs.list_jobs(conn, tenant, limit=1))
        if page.total:
            return
        owner = self.users[0].user_id
        for printer_index, file_name in catalog.SEEDED_JOBS:
            job = await submit_print_job(
                self.services, tenant_id=tenant, user_id=owner,
                printer_id=self.printers[printer_index].printer_id, file_id=self.files[file_name], origin=origin,
            )
            self.created["print_jobs"] += 1
            if file_name == catalog.CANCELLED_FILE:
                # Still queued (the hub has not connected yet): its command is dropped, nothing reaches a device.
                await cancel_print_job(self.services, tenant_id=tenant, user_id=owner, job_id=job["id"],
                                       reason=catalog.CANCEL_REASON)

    # -- 5. manuals ----------------------------------------------------------------------------------

    async def manuals(self) -> None:
        from ensemble.knowledge.service import ensure_sample_manuals

        outcomes = await ensure_sample_manuals(self.services.knowledge)
        self.created["manuals"] += sum(1 for o in outcomes if o.outcome != "unchanged")

    def result(self) -> DemoSeed:
        assert self.tenant_id is not None and self.hub_uuid is not None and self.credentials.hub_secret
        return DemoSeed(
            tenant_id=self.tenant_id, tenant_name=catalog.TENANT_NAME, users=tuple(self.users),
            hub_id=str(self.hub_uuid), hub_secret=self.credentials.hub_secret, printers=tuple(self.printers),
            files=dict(self.files), credentials_path=self.path, created=self.created,
        )
