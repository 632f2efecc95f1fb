-- Knowledge base and AI gateway: manuals (documents), the assistant's
-- response cache, the usage ledger and the per-tenant AI request windows.
--
-- A document row is the truth about a manual; the searchable index (FAISS +
-- BM25 blobs in object storage) is a cache of it that the server reconciles
-- with these rows at start (ensemble.knowledge.service).

CREATE TABLE knowledge_documents (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- NULL = a global manual (platform-wide, managed with `ensemble knowledge`).
    tenant_id       uuid REFERENCES tenants (id) ON DELETE CASCADE,
    source          text NOT NULL CHECK (length(source) BETWEEN 1 AND 200),
    filename        text NOT NULL CHECK (length(filename) BETWEEN 1 AND 255),
    media_type      text NOT NULL,
    format          text NOT NULL CHECK (format IN ('pdf', 'markdown', 'text')),
    content_hash    text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
    size_bytes      bigint NOT NULL CHECK (size_bytes > 0),
    manufacturer    text,
    model           text,
    equipment_type  text,
    -- The uploader's category; NULL = inferred per section by the chunker.
    category        text,
    updated_on      text,
    -- What the file declares about itself (front matter, PDF information).
    metadata        jsonb NOT NULL DEFAULT '{}',
    pages           integer NOT NULL CHECK (pages > 0),
    chunks          integer NOT NULL CHECK (chunks > 0),
    object_key      text NOT NULL,
    version         integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      uuid,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    updated_by      uuid
);
-- Identity within a scope (global, or one tenant): the same bytes are the
-- same document (re-ingesting is a no-op), and the same source name is the
-- same manual (a new version replaces the old one).  coalesce() because a
-- plain unique index treats NULL tenants as all distinct.
CREATE UNIQUE INDEX knowledge_documents_hash_key
    ON knowledge_documents (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid), content_hash);
CREATE UNIQUE INDEX knowledge_documents_source_key
    ON knowledge_documents (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid), lower(source));
CREATE INDEX knowledge_documents_tenant_idx ON knowledge_documents (tenant_id, source);

-- Answers of the model, per tenant (an answer may quote the tenant's own
-- manuals, so it is never served to another tenant).  ``key`` hashes the
-- normalized question, the equipment context, the mode and the model.
CREATE TABLE ai_response_cache (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key          text NOT NULL,
    model        text NOT NULL,
    question     text NOT NULL,
    answer       text NOT NULL,
    citations    jsonb NOT NULL DEFAULT '[]',
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    hits         bigint NOT NULL DEFAULT 0,
    last_hit_at  timestamptz,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX ai_response_cache_expiry_idx ON ai_response_cache (expires_at);

-- One row per question the assistant handled: what it cost and how it was
-- answered.  The usage report aggregates these by day.
CREATE TABLE ai_usage (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    at                  timestamptz NOT NULL DEFAULT now(),
    session_id          text,
    request_id          text,
    model               text NOT NULL,
    outcome             text NOT NULL CHECK (outcome IN ('answered', 'cache_hit', 'offline', 'failed')),
    input_tokens        integer NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens       integer NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    cache_read_tokens   integer NOT NULL DEFAULT 0 CHECK (cache_read_tokens >= 0),
    cache_write_tokens  integer NOT NULL DEFAULT 0 CHECK (cache_write_tokens >= 0),
    cost_usd            numeric(14, 6) NOT NULL DEFAULT 0,
    latency_ms          integer,
    error               text
);
CREATE INDEX ai_usage_tenant_at_idx ON ai_usage (tenant_id, at);

-- Model requests per tenant per clock hour (the AI request limit).  In
-- Postgres so that the limit holds across restarts and across nodes.
CREATE TABLE ai_rate_windows (
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    window_start  timestamptz NOT NULL,
    requests      integer NOT NULL,
    PRIMARY KEY (tenant_id, window_start)
);
