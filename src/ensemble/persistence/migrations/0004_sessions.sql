-- Diagnostic sessions: the query tables of the DiagnosticSession actor.
--
-- The actor's event log is the truth; these tables are its projection,
-- written by diagnostic_project() in the same transaction as the events
-- (Behavior.project), so REST reads and reports never need the actor and
-- never see a message the log does not have.
--
-- Deliberately no foreign keys to clients, jobs, equipment or users: a
-- projection row must never make the actor's commit fail (that would reset
-- the actor and refuse the session's messages), and a deleted client must
-- not delete the record of what was diagnosed.  Reads LEFT JOIN instead.

CREATE TABLE diagnostic_sessions (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    client_id         uuid NOT NULL,
    job_id            uuid,
    equipment_id      uuid,
    equipment         jsonb,  -- the context the assistant got: name, manufacturer, model, type, serial
    mode              text NOT NULL CHECK (mode IN ('guided', 'expert', 'quick')),
    title             text,
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'completed')),
    summary           text,
    is_collaborative  boolean NOT NULL DEFAULT false,
    message_count     integer NOT NULL DEFAULT 0,
    last_message_at   timestamptz,
    last_offset       bigint NOT NULL DEFAULT 0,
    completed_at      timestamptz,
    completed_by      uuid,
    created_at        timestamptz NOT NULL,
    created_by        uuid,
    created_by_name   text,
    updated_at        timestamptz NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX diagnostic_sessions_tenant_created_idx ON diagnostic_sessions (tenant_id, created_at DESC, id DESC);
CREATE INDEX diagnostic_sessions_client_idx ON diagnostic_sessions (tenant_id, client_id, created_at DESC);
CREATE INDEX diagnostic_sessions_status_idx ON diagnostic_sessions (tenant_id, status, created_at DESC);

-- technician_id is the user's id as text, or 'ai' for the AI participant.
CREATE TABLE diagnostic_participants (
    session_id     uuid NOT NULL REFERENCES diagnostic_sessions (id) ON DELETE CASCADE,
    tenant_id      uuid NOT NULL,
    technician_id  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('primary', 'invited', 'ai')),
    name           text NOT NULL,
    member_role    text,
    invited_by     uuid,
    joined_at      timestamptz NOT NULL,
    left_at        timestamptz,
    PRIMARY KEY (session_id, technician_id)
);
CREATE INDEX diagnostic_participants_tech_idx ON diagnostic_participants (tenant_id, technician_id, left_at);

-- Every message, reading and attachment, in the session's offset order.
-- ``body`` is exactly what the socket broadcast (the REST history returns it).
CREATE TABLE diagnostic_messages (
    id              uuid PRIMARY KEY,
    session_id      uuid NOT NULL REFERENCES diagnostic_sessions (id) ON DELETE CASCADE,
    tenant_id       uuid NOT NULL,
    "offset"        bigint NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('text', 'reading', 'attachment', 'ai', 'ai_error')),
    role            text NOT NULL CHECK (role IN ('user', 'assistant')),
    content         text NOT NULL,
    sender_id       text NOT NULL,  -- the technician's id, or 'ai'
    sender_name     text,
    sender_role     text,  -- primary, invited, ai
    client_id       text,
    client_sent_at  timestamptz,  -- when an offline client says it wrote the message
    "timestamp"     timestamptz NOT NULL,  -- when the server stored it
    body            jsonb NOT NULL,
    UNIQUE (session_id, "offset")
);
CREATE INDEX diagnostic_messages_tenant_idx ON diagnostic_messages (tenant_id, "timestamp" DESC);

-- One function for every projected event: the actor sends one statement
-- text, so the group committer keeps a session's projections in offset order.
CREATE FUNCTION diagnostic_project(p_session uuid, e jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    s  jsonb;
    p  jsonb;
    m  jsonb;
    at timestamptz := (e->>'at')::timestamptz;
    off bigint := (e->>'offset')::bigint;
BEGIN
    CASE e->>'type'
    WHEN 'session_created' THEN
        s := e->'session';
        INSERT INTO diagnostic_sessions (
            id, tenant_id, client_id, job_id, equipment_id, equipment, mode, title,
            created_at, created_by, created_by_name, updated_at, last_offset)
        VALUES (
            p_session, (s->>'tenant_id')::uuid, (s->>'client_id')::uuid, (s->>'job_id')::uuid,
            (s->>'equipment_id')::uuid, s->'equipment', s->>'mode', s->>'title',
            at, (s->>'created_by')::uuid, s->>'created_by_name', at, off);
    WHEN 'participant_joined' THEN
        p := e->'participant';
        INSERT INTO diagnostic_participants (
            session_id, tenant_id, technician_id, role, name, member_role, invited_by, joined_at, left_at)
        SELECT d.id, d.tenant_id, p->>'id', p->>'role', p->>'name', p->>'member_role',
               (p->>'invited_by')::uuid, at, NULL
          FROM diagnostic_sessions d WHERE d.id = p_session
        ON CONFLICT (session_id, technician_id) DO UPDATE SET
            role = EXCLUDED.role, name = EXCLUDED.name, member_role = EXCLUDED.member_role,
            invited_by = EXCLUDED.invited_by, joined_at = EXCLUDED.joined_at, left_at = NULL;
        UPDATE diagnostic_sessions
           SET is_collaborative = is_collaborative OR p->>'role' = 'invited', updated_at = at, last_offset = off
         WHERE id = p_session;
    WHEN 'participant_left' THEN
        UPDATE diagnostic_participants SET left_at = at
         WHERE session_id = p_session AND technician_id = e->>'participant_id';
        UPDATE diagnostic_sessions SET updated_at = at, last_offset = off WHERE id = p_session;
    WHEN 'new_message', 'reading', 'attachment_added' THEN
        m := e->'message';
        INSERT INTO diagnostic_messages (
            id, session_id, tenant_id, "offset", kind, role, content, sender_id, sender_name, sender_role,
            client_id, client_sent_at, "timestamp", body)
        SELECT (m->>'id')::uuid, d.id, d.tenant_id, off, m->>'kind', m->>'role', m->>'text',
               m->>'sender_id', m->>'sender_name', m->>'sender_role', m->>'client_id',
               (m->>'client_sent_at')::timestamptz, at, m
          FROM diagnostic_sessions d WHERE d.id = p_session;
        UPDATE diagnostic_sessions
           SET message_count = message_count + 1, last_message_at = at, updated_at = at, last_offset = off
         WHERE id = p_session;
    WHEN 'session_completed' THEN
        UPDATE diagnostic_sessions
           SET status = 'completed', summary = e->>'summary', completed_at = at,
               completed_by = (e->>'completed_by')::uuid, updated_at = at, last_offset = off
         WHERE id = p_session;
    ELSE
        NULL;  -- events without a projection
    END CASE;
END
$$;
