-- migrate:up
-- Scratch staging for a file loaded in parallel chunks (db/functions/ingest/chunks.sql): each
-- chunk session COPYs into its own unlogged table here and validates it into another; the
-- batch's final transaction reads them all and drops them. Unlogged: nothing in them is ever
-- the only copy of anything (the file is), so they skip the WAL. Tables are created and dropped
-- by pipeline_owner's functions only; the ingest role may insert (COPY) into the stage tables it
-- is given and nothing else.
create schema if not exists ingest_scratch authorization pipeline_owner;
revoke all on schema ingest_scratch from public;
grant usage on schema ingest_scratch to pipeline_ingest;

-- migrate:down
drop schema if exists ingest_scratch cascade;
