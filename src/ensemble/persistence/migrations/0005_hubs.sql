-- Hubs and tenant dashboards: print jobs, their transition history, and
-- printer telemetry samples.
--
-- Every table here is a *projection* written by the HubConnection actor in
-- the same transaction as the event that caused it (Behavior.project).  Two
-- rules follow from that, and explain the shapes below:
--
-- * A projection must never fail: a failed write resets the actor, and a hub
--   re-sends an unacknowledged event after it reconnects, so a poison row
--   would loop forever.  Hence no unique key a replay could trip over without
--   ON CONFLICT, and references that may vanish (printer, file, hub) are
--   looked up in the INSERT itself rather than trusted.
-- * The group committer runs projections grouped by statement text, not in
--   event order.  Rows therefore carry the actor offset that wrote them
--   (``version``) and the job row is an upsert that only moves forward.

CREATE TABLE print_jobs (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    printer_id      uuid REFERENCES printers (id) ON DELETE SET NULL,
    hub_id          uuid REFERENCES hubs (id) ON DELETE SET NULL,
    file_id         uuid REFERENCES files (id) ON DELETE SET NULL,
    file_name       text NOT NULL,
    file_size       bigint NOT NULL CHECK (file_size >= 0),
    status          text NOT NULL CHECK (status IN (
                        'queued', 'uploading', 'printing', 'paused', 'completed', 'failed', 'cancelled')),
    progress        integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    bytes_sent      bigint,
    bytes_total     bigint,
    current_layer   integer,
    total_layers    integer,
    remaining_s     integer,
    failure_reason  text,
    command_id      text NOT NULL,
    submitted_by    uuid,
    submitted_at    timestamptz NOT NULL,
    started_at      timestamptz,
    finished_at     timestamptz,
    updated_at      timestamptz NOT NULL,
    version         bigint NOT NULL,   -- HubConnection offset of the last change
    UNIQUE (tenant_id, id)
);
CREATE INDEX print_jobs_tenant_submitted_idx ON print_jobs (tenant_id, submitted_at DESC);
CREATE INDEX print_jobs_tenant_printer_idx ON print_jobs (tenant_id, printer_id, submitted_at DESC);
CREATE INDEX print_jobs_active_idx ON print_jobs (tenant_id, status)
    WHERE status IN ('queued', 'uploading', 'printing', 'paused');

-- One row per job state change (the job history).  No foreign key to
-- print_jobs: the committer may run this insert before the job's upsert.
CREATE TABLE print_job_transitions (
    job_id      uuid NOT NULL,
    version     bigint NOT NULL,
    tenant_id   uuid NOT NULL,
    status      text NOT NULL,
    progress    integer,
    reason      text,
    at          timestamptz NOT NULL,
    PRIMARY KEY (job_id, version)
);

-- Normalized printer status samples, as reported by the hub (ts is the
-- hub's clock: store-and-forward replays keep their original time).
CREATE TABLE printer_samples (
    printer_id     uuid NOT NULL,
    ts             timestamptz NOT NULL,
    tenant_id      uuid NOT NULL,
    hub_id         uuid NOT NULL,
    status         text NOT NULL,
    job_id         text,
    progress       double precision,
    remaining_s    integer,
    layer          integer,
    total_layers   integer,
    nozzle_temp    double precision,
    nozzle_target  double precision,
    bed_temp       double precision,
    bed_target     double precision,
    PRIMARY KEY (printer_id, ts)
);
CREATE INDEX printer_samples_tenant_idx ON printer_samples (tenant_id, printer_id, ts);

-- The latest normalized status of a printer, next to the status column the
-- gateway migration already has (REST shows it; dashboards get it live).
ALTER TABLE printers
    ADD COLUMN status_detail  jsonb,
    ADD COLUMN status_at      timestamptz;
