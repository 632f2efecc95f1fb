-- Gateway tables: auth sessions and refresh tokens, the field-service
-- resources (clients, equipment, jobs), the print-farm resources (hubs,
-- printers), uploaded files and the audit log.
--
-- Tenancy is enforced twice: every query filters on tenant_id, and every
-- reference between tenant-owned rows is a composite foreign key on
-- (tenant_id, id), so a row can never point at another tenant's row even if
-- a query forgot its filter.

-- Auth ----------------------------------------------------------------------

-- One login = one session (a refresh-token family).  Revoking the session
-- ends every token of the family, including the access tokens that name it
-- (the gateway checks the session on every request).
CREATE TABLE auth_sessions (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    refreshed_at    timestamptz,
    revoked_at      timestamptz,
    revoked_reason  text CHECK (revoked_reason IN ('logout', 'reuse', 'membership_removed', 'user_logout_all')),
    user_agent      text,
    ip_address      text
);
CREATE INDEX auth_sessions_user_idx ON auth_sessions (user_id, tenant_id);

-- Refresh tokens are random 256-bit secrets; only their SHA-256 is stored
-- (high entropy makes a slow hash unnecessary).  A token is used once:
-- ``used_at`` set means it was rotated, and presenting it again is reuse.
CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES auth_sessions (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL CHECK (length(token_hash) = 32),
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

-- Field service ----------------------------------------------------------------

CREATE TABLE clients (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    phone       text,
    email       text,
    address     text,
    notes       text,
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  uuid,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  uuid,
    UNIQUE (tenant_id, id)
);
CREATE INDEX clients_tenant_name_idx ON clients (tenant_id, name);
CREATE INDEX clients_tenant_status_idx ON clients (tenant_id, status);

CREATE TABLE equipment (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    client_id        uuid,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    manufacturer     text,
    model_number     text,
    serial_number    text,
    system_type      text,
    install_date     date,
    warranty_expiry  date,
    notes            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       uuid,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    updated_by       uuid,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id) ON DELETE SET NULL (client_id)
);
CREATE INDEX equipment_tenant_idx ON equipment (tenant_id, name);
CREATE INDEX equipment_client_idx ON equipment (tenant_id, client_id);

-- Service jobs.  ``status`` moves only through the transition table in
-- persistence/repos/job_states.py; the CHECK lists the same states.
CREATE TABLE jobs (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    client_id         uuid NOT NULL,
    equipment_id      uuid,
    title             text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description       text,
    status            text NOT NULL DEFAULT 'unassigned' CHECK (status IN (
                          'unassigned', 'assigned', 'accepted', 'declined',
                          'in_progress', 'completed', 'cancelled')),
    priority          text NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    scheduled_date    timestamptz,
    assigned_to       uuid REFERENCES users (id) ON DELETE SET NULL,
    assigned_by       uuid,
    assigned_at       timestamptz,
    accepted_at       timestamptz,
    declined_at       timestamptz,
    decline_reason    text,
    started_at        timestamptz,
    completed_at      timestamptz,
    completion_notes  text,
    cancelled_at      timestamptz,
    notes             text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    created_by        uuid,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    updated_by        uuid,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, equipment_id) REFERENCES equipment (tenant_id, id) ON DELETE SET NULL (equipment_id)
);
CREATE INDEX jobs_tenant_status_idx ON jobs (tenant_id, status);
CREATE INDEX jobs_tenant_scheduled_idx ON jobs (tenant_id, scheduled_date);
CREATE INDEX jobs_assigned_idx ON jobs (tenant_id, assigned_to);
CREATE INDEX jobs_client_idx ON jobs (tenant_id, client_id);

-- Print farm --------------------------------------------------------------------

-- Hubs are provisioned at the factory (id + secret) and belong to no tenant
-- until claimed with a short-lived claim code.
--
-- ``hmac_key`` is the hub's shared secret itself, not a hash of it: the
-- server must recompute the HMAC of the hub's handshake to verify it, which
-- a one-way hash would not allow.  It never leaves the server (no API
-- returns it).  ``claim_code_hash`` is SHA-256 of the normalised claim code:
-- codes are short but live minutes and claims are rate limited, and a
-- deterministic hash is what lets the claim look the hub up by code.
CREATE TABLE hubs (
    id                     uuid PRIMARY KEY,
    tenant_id              uuid REFERENCES tenants (id) ON DELETE SET NULL,
    name                   text CHECK (name IS NULL OR length(name) BETWEEN 1 AND 200),
    hmac_key               bytea NOT NULL CHECK (length(hmac_key) >= 32),
    claim_code_hash        bytea,
    claim_code_expires_at  timestamptz,
    firmware_version       text,
    hardware_revision      text,
    last_seen_at           timestamptz,
    is_online              boolean NOT NULL DEFAULT false,
    local_ip_address       text,
    wifi_signal_strength   integer,
    claimed_at             timestamptz,
    claimed_by             uuid,
    created_at             timestamptz NOT NULL DEFAULT now(),
    created_by             uuid,
    updated_at             timestamptz NOT NULL DEFAULT now(),
    updated_by             uuid,
    UNIQUE (tenant_id, id),
    CHECK ((claim_code_hash IS NULL) = (claim_code_expires_at IS NULL)),
    CHECK (tenant_id IS NULL OR claim_code_hash IS NULL)
);
CREATE INDEX hubs_tenant_idx ON hubs (tenant_id);
CREATE UNIQUE INDEX hubs_claim_code_idx ON hubs (claim_code_hash) WHERE claim_code_hash IS NOT NULL;

-- A printer's hub must be a hub of the same tenant; the repository checks
-- that under a row lock (a composite key would be undone when the hub is
-- released, which must detach printers instead).
CREATE TABLE printers (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    hub_id            uuid REFERENCES hubs (id) ON DELETE SET NULL,
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    model             text NOT NULL CHECK (length(model) BETWEEN 1 AND 200),
    manufacturer      text,
    serial_number     text,
    firmware_version  text,
    connection_type   text NOT NULL DEFAULT 'bambu'
                          CHECK (connection_type IN ('bambu', 'prusa', 'octoprint', 'klipper', 'opcua', 'other')),
    ip_address        text,
    status            text NOT NULL DEFAULT 'offline'
                          CHECK (status IN ('idle', 'printing', 'paused', 'maintenance', 'offline', 'error')),
    location          text,
    is_active         boolean NOT NULL DEFAULT true,
    sort_order        integer NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    created_by        uuid,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    updated_by        uuid,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, name)
);
CREATE INDEX printers_hub_idx ON printers (hub_id);
CREATE INDEX printers_tenant_sort_idx ON printers (tenant_id, sort_order);

-- Files -------------------------------------------------------------------------

-- The object lives in the object store under tenants/{tenant_id}/files/{id};
-- the user's file name is only metadata, never part of the key.
CREATE TABLE files (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    object_key    text NOT NULL UNIQUE,
    content_type  text NOT NULL,
    size_bytes    bigint NOT NULL CHECK (size_bytes >= 0),
    etag          text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    uuid,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    uuid,
    UNIQUE (tenant_id, id)
);
CREATE INDEX files_tenant_created_idx ON files (tenant_id, created_at DESC);

-- Audit log -----------------------------------------------------------------------

-- Written in the same transaction as the change it records.  ``actor_id``
-- has no foreign key on purpose: the trail outlives the users it names.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    actor_id    uuid,
    action      text NOT NULL,
    entity      text NOT NULL,
    entity_id   text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    request_id  text,
    details     jsonb
);
CREATE INDEX audit_log_tenant_at_idx ON audit_log (tenant_id, at DESC, id DESC);
CREATE INDEX audit_log_entity_idx ON audit_log (tenant_id, entity, entity_id);
