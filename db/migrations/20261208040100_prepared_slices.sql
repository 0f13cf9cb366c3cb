-- migrate:up
-- A file loaded in slices (db/functions/ingest/slices.sql): each slice session does its share of
-- the batch's work and ends with PREPARE TRANSACTION; the batch's own transaction then records
-- here the prepared transactions it decided to commit, in the same commit as the ledger row.
-- A row here is the decision: recovery (ingest.prepared_decisions) commits a leftover prepared
-- transaction whose gid is here, and rolls back one whose batch ended without writing it.
set local role pipeline_owner;

create table ingest.prepared_slices (
    gid text primary key,
    batch_id bigint not null,
    slice int not null check (slice >= 0),
    decided_at timestamptz not null default now()
);
create index prepared_slices_batch on ingest.prepared_slices (batch_id);

comment on table ingest.prepared_slices is
'The prepared slice transactions each committed batch decided to commit (its 2PC decision record).';

reset role;

-- migrate:down
drop table if exists ingest.prepared_slices;
