-- Tenants, users and their roles; the actor store (leases, event log,
-- snapshots, alarms).  Later issues add their tables in later migrations.

CREATE TABLE tenants (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    created_by  uuid,
    updated_by  uuid
);

CREATE TABLE users (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email          text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    password_hash  text,
    is_active      boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    created_by     uuid,
    updated_by     uuid
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- One role per user and tenant.  The two product documents name their roles
-- differently; "operator" is also the "lead technician" of the field-service
-- document, and "service" is the identity hubs act with.
CREATE TABLE memberships (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'operator', 'technician', 'viewer', 'service')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    created_by  uuid,
    updated_by  uuid,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id);

-- Actor store ---------------------------------------------------------------

-- One row per actor address.  ``epoch`` grows by one at every activation and
-- fences writers: a stale activation's appends collide on the event log's
-- primary key (the new activation owns the next offsets).
CREATE TABLE actor_leases (
    kind          text NOT NULL,
    key           text NOT NULL,
    epoch         bigint NOT NULL,
    owner         text NOT NULL,
    activated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, key)
);

-- The event log: gap-free per-actor offsets starting at 1.
CREATE TABLE actor_events (
    kind        text NOT NULL,
    key         text NOT NULL,
    "offset"    bigint NOT NULL CHECK ("offset" > 0),
    epoch       bigint NOT NULL,
    type        text NOT NULL,
    payload     bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, key, "offset")
);

-- The latest snapshot of each actor (older ones are useless once replaced).
CREATE TABLE actor_snapshots (
    kind        text NOT NULL,
    key         text NOT NULL,
    "offset"    bigint NOT NULL,
    epoch       bigint NOT NULL,
    version     integer NOT NULL,
    state       bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, key)
);

-- At most one alarm per actor, as in Durable Objects.
CREATE TABLE actor_alarms (
    kind    text NOT NULL,
    key     text NOT NULL,
    due_at  timestamptz NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX actor_alarms_due_idx ON actor_alarms (due_at);
