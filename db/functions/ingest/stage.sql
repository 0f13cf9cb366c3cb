-- The per-batch staging table that COPY (or replay) fills.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- Creates this batch's staging table pg_temp.stage (all text, dropped at commit) for COPY.
-- A temp table, not an unlogged one: creating and dropping an unlogged table per batch cost
-- ~7 ms more (its files and init fork), and parallel workers, which a regular table would
-- allow, cannot run the lateral check query anyway (measured: the Gather sits under it).
-- p_extra: DDL of the x_N columns (columns outside the pipeline's); p_extra_json: the
-- expression over them that fills the generated column extra (else extra is a plain column).
create function ingest.create_stage(
    p_batch_id bigint, p_schema_version int, p_extra text, p_extra_json text default null
)
returns text
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    perform p_batch_id;
    drop table if exists pg_temp.stage;
    execute format(
        'create temp table stage (
            line_no bigint, event_id text, event_time text, event_type text, user_id text,
            session_id text, product_id text, category text, price text, quantity text,
            currency text, device text, traffic_source text, payment_method text,
            search_query text, user_email text,
            schema_version int not null default %s, src_batch_id bigint, ref_id bigint,
            extra jsonb %s %s
        ) on commit drop', p_schema_version,
        case when p_extra_json is not null
            then format('generated always as (%s) stored', p_extra_json) else '' end,
        coalesce(p_extra, ''));
    grant insert on pg_temp.stage to pipeline_ingest;
    return 'pg_temp.stage';
end
$$;

-- Drops a batch's staging table and the temp objects over it, at the end of the batch (so a
-- replay can follow a load in the same session).
create function ingest.drop_stage(p_batch_id bigint)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    perform p_batch_id;
    drop view if exists pg_temp.batch_events;
    drop table if exists pg_temp.stage;
end
$$;

revoke all on function ingest.create_stage(bigint, int, text, text) from public;
revoke all on function ingest.drop_stage(bigint) from public;
