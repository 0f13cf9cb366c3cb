-- The per-batch staging table that COPY (or replay) fills.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- Creates the staging table that COPY fills, for one batch. Returns its name.
-- One session's batch (p_chunk null: files, HTTP, Kafka, replay): pg_temp.stage, one of the
-- session's staging tables (ingest.session_staging), which live as long as the session and
-- are emptied at every commit; created again only when the header's shape differs.
-- A temp table, not an unlogged one: creating and dropping an unlogged table per batch costs
-- more (its files and init fork), and parallel workers, which a regular table would allow,
-- cannot run the lateral check query anyway (docs/measurements.md).
-- p_extra: DDL of the x_N columns (columns outside the pipeline's); p_extra_json: the
-- expression over them that fills the generated column extra (else extra is a plain column).
-- p_chunk: one chunk of a batch loaded in parallel (db/functions/ingest/chunks.sql): the table
-- is the unlogged ingest_scratch.stage_<batch>_<chunk>, which other sessions can read once this
-- one commits, and pg_temp.stage is a view of it (so ingest.check_stage reads it as usual).
create function ingest.create_stage(
    p_batch_id bigint, p_schema_version int, p_extra text, p_extra_json text default null,
    p_chunk int default null
)
returns text
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_table text := format('ingest_scratch.%I', format('stage_%s_%s', p_batch_id, p_chunk));
begin
    if p_chunk is null then
        perform ingest.session_staging(p_schema_version, p_extra, p_extra_json);
        return 'pg_temp.stage';
    end if;
    perform ingest.drop_temp_stage();
    execute format('create unlogged table %s (%s)', v_table,
        ingest.stage_columns(p_schema_version, p_extra, p_extra_json));
    execute format('grant insert on %s to pipeline_ingest', v_table);
    execute format('create temp view stage as select * from %s', v_table);
    return v_table;
end
$$;

-- The columns of a staging table (all text, as COPY gives them) for a header's shape.
create function ingest.stage_columns(p_schema_version int, p_extra text, p_extra_json text)
returns text
language sql
immutable
set search_path = pg_catalog, pg_temp
return format(
    'line_no bigint, event_id text, event_time text, event_type text, user_id text,
    session_id text, product_id text, category text, price text, quantity text,
    currency text, device text, traffic_source text, payment_method text,
    search_query text, user_email text,
    schema_version int not null default %s, src_batch_id bigint, ref_id bigint,
    extra jsonb %s %s', p_schema_version,
    case when p_extra_json is not null
        then format('generated always as (%s) stored', p_extra_json) else '' end,
    coalesce(p_extra, ''));

-- The oid of the session's temp relation p_name, null when there is none. Refuses one the
-- caller's role (the pipeline's owner, in its SECURITY DEFINER functions) does not own: a
-- session may create temp objects of its own under these names, and the pipeline must never
-- read or write them as its own.
create function ingest.own_temp(p_name text)
returns oid
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v oid := to_regclass('pg_temp.' || quote_ident(p_name));
begin
    if v is not null and (select c.relowner from pg_class as c where c.oid = v)
        is distinct from (select r.oid from pg_roles as r where r.rolname = current_user) then
        raise exception 'pg_temp.% in this session was not made by the pipeline', p_name
            using errcode = '42501',
            hint = 'drop it, or load from a session that did not create it';
    end if;
    return v;
end
$$;

-- The oids of the session's staging tables as they are now (see below).
create function ingest.session_staging_oids()
returns text
language sql
stable
set search_path = pg_catalog, pg_temp
return format('%s %s %s', ingest.own_temp('stage'), ingest.own_temp('checked'),
    ingest.own_temp('rejected'));

-- Whether pg_temp.stage, checked and rejected are still the session's staging tables that
-- ingest.session_staging made (nothing dropped or replaced them since).
create function ingest.session_staging_intact()
returns boolean
language sql
stable
set search_path = pg_catalog, pg_temp
return coalesce(starts_with(current_setting('pipeline.staging', true),
    ingest.session_staging_oids() || ' '), false);

-- The session's staging tables for a batch in one session, empty: pg_temp.stage (the
-- header's shape), pg_temp.checked (the check's result, ingest.check_stage), pg_temp.rejected
-- (valid rows that lost to a stored event_id, ingest.accept_checked) and the view
-- pg_temp.batch_events over them (ingest.define_batch_events). They are created once per
-- session and header shape, `on commit delete rows`: a batch then creates and drops no table,
-- and the statements over them keep their plans from batch to batch (creating and dropping
-- them cost a small batch ~3-4 ms of DDL and as much again in planning: docs/throughput.md).
-- pipeline.staging (a session setting, undone with the transaction that set it, as the
-- tables are) holds the tables' oids and the shape; anything else that drops or replaces one
-- of them (the chunk and slice paths' views) makes the next batch create them again. The view
-- is made again alone when a deferred analytics round or a rebuild, which put a view of their
-- own under its name, dropped it (ingest.define_batch_events).
create function ingest.session_staging(p_schema_version int, p_extra text, p_extra_json text)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_shape text := md5(ingest.stage_columns(p_schema_version, p_extra, p_extra_json));
begin
    if ingest.session_staging_oids() || ' ' || v_shape
        = current_setting('pipeline.staging', true) then
        -- emptied at every commit; a second batch in one transaction starts empty too
        delete from pg_temp.stage;
        delete from pg_temp.checked;
        delete from pg_temp.rejected;
        return;
    end if;
    perform ingest.drop_temp_stage();
    drop table if exists pg_temp.checked;
    drop table if exists pg_temp.rejected;
    execute format('create temp table stage (%s) on commit delete rows',
        ingest.stage_columns(p_schema_version, p_extra, p_extra_json));
    grant insert on pg_temp.stage to pipeline_ingest;
    perform ingest.create_checked();
    create temp table rejected (
        line_no bigint, src_batch_id bigint, is_conflict boolean
    ) on commit delete rows;
    perform ingest.define_batch_events(null, true);
    perform set_config('pipeline.staging', ingest.session_staging_oids() || ' ' || v_shape,
        false);
end
$$;

-- Whether this database is a Citus coordinator with workers (chunks are then checked there).
create function ingest.on_cluster()
returns boolean
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_workers int;
begin
    if not exists (select from pg_extension where extname = 'citus') then
        return false;
    end if;
    execute 'select count(*) from pg_catalog.pg_dist_node where groupid <> 0 and isactive'
        into v_workers;
    return v_workers > 0;
end
$$;

-- Drops this session's staging table (or view) and the temp objects over it.
create function ingest.drop_temp_stage()
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v record;
begin
    drop view if exists pg_temp.batch_events;
    -- named by their real schema (pg_temp_N): Citus resolves "drop view pg_temp.x" wrongly
    for v in
        select c.relkind, n.nspname, c.relname
        from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
        where c.oid = to_regclass('pg_temp.stage')
            or c.oid = to_regclass('pg_temp.checked') and c.relkind = 'v'
    loop
        execute format('drop %s %I.%I',
            case v.relkind when 'v' then 'view' else 'table' end, v.nspname, v.relname);
    end loop;
end
$$;

-- Drops a batch's staging table and the temp objects over it, at the end of the batch (so a
-- replay can follow a load in the same session), and the scratch tables of its chunks.
create function ingest.drop_stage(p_batch_id bigint)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_table text;
begin
    if ingest.session_staging_intact() then
        -- a batch of one session, in the session's staging tables: nothing to drop (they
        -- are emptied at commit), and it had no chunks
        return;
    end if;
    perform ingest.drop_temp_stage();
    for v_table in
        select c.relname from pg_class as c
        where c.relnamespace = 'ingest_scratch'::regnamespace and c.relkind = 'r'
            and c.relname ~ format('^(stage|checked)_%s_[0-9]+$', p_batch_id)
    loop
        -- cascade: a temp view another session left over the chunk (its session ended the
        -- chunk's transaction without the check, as on Citus) must not keep the table
        execute format('drop table ingest_scratch.%I cascade', v_table);
    end loop;
end
$$;

revoke all on function ingest.create_stage(bigint, int, text, text, int) from public;
revoke all on function ingest.stage_columns(int, text, text) from public;
revoke all on function ingest.session_staging(int, text, text) from public;
revoke all on function ingest.session_staging_oids() from public;
revoke all on function ingest.own_temp(text) from public;
revoke all on function ingest.session_staging_intact() from public;
revoke all on function ingest.on_cluster() from public;
revoke all on function ingest.drop_temp_stage() from public;
revoke all on function ingest.drop_stage(bigint) from public;
-- a chunk session on Citus drops its temp view over the chunk before it commits (loader.ts);
-- it touches only the caller's own temp objects
grant execute on function ingest.drop_temp_stage() to pipeline_ingest;
