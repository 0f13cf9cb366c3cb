-- The per-batch staging table that COPY (or replay) fills.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- Creates this batch's staging table pg_temp.stage (all text, dropped at commit) for COPY.
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
    v_table text := case
        when p_chunk is null then 'pg_temp.stage'
        else format('ingest_scratch.%I', format('stage_%s_%s', p_batch_id, p_chunk))
    end;
begin
    perform ingest.drop_temp_stage();
    execute format(
        'create %s table %s (
            line_no bigint, event_id text, event_time text, event_type text, user_id text,
            session_id text, product_id text, category text, price text, quantity text,
            currency text, device text, traffic_source text, payment_method text,
            search_query text, user_email text,
            schema_version int not null default %s, src_batch_id bigint, ref_id bigint,
            extra jsonb %s %s
        ) %s', case when p_chunk is null then 'temp' else 'unlogged' end, v_table,
        p_schema_version,
        case when p_extra_json is not null
            then format('generated always as (%s) stored', p_extra_json) else '' end,
        coalesce(p_extra, ''), case when p_chunk is null then 'on commit drop' else '' end);
    execute format('grant insert on %s to pipeline_ingest', v_table);
    if p_chunk is not null then
        execute format('create temp view stage as select * from %s', v_table);
    end if;
    return v_table;
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
revoke all on function ingest.on_cluster() from public;
revoke all on function ingest.drop_temp_stage() from public;
revoke all on function ingest.drop_stage(bigint) from public;
-- a chunk session on Citus drops its temp view over the chunk before it commits (loader.ts);
-- it touches only the caller's own temp objects
grant execute on function ingest.drop_temp_stage() to pipeline_ingest;
