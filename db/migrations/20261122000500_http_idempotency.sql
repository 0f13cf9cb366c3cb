-- migrate:up
-- The HTTP collector (deno task serve): idempotency records for POST /v1/events, and the
-- small read-only functions its /health, /metrics and dashboard use as pipeline_analyst
-- (which cannot read quality.* or ingest.* directly).
set local role pipeline_owner;

-- One row per (client, Idempotency-Key). It is inserted (status null) at the start of the
-- batch transaction and completed in that same transaction, so the record and the batch
-- commit or roll back together; a concurrent request with the same key waits on the primary
-- key until the first transaction ends, then reads its response.
create table ingest.http_idempotency (
    client text not null check (client ~ '^[0-9a-f]{16,64}$'),
    idempotency_key text not null check (length(idempotency_key) between 1 and 255),
    request_sha256 text not null check (request_sha256 ~ '^[0-9a-f]{64}$'),
    batch_id bigint,
    status int check (status between 100 and 599),
    body text,
    created_at timestamptz not null default now(),
    primary key (client, idempotency_key)
);
create index http_idempotency_created_at_idx on ingest.http_idempotency (created_at);

-- The functions over it (and the collector's read-only figures) live in db/functions/.

revoke all on table ingest.http_idempotency from public;

reset role;

-- migrate:down
set local role pipeline_owner;
drop table if exists ingest.http_idempotency;
reset role;
