-- One file on every core: a batch staged and checked by several chunk sessions in parallel,
-- then finished by one short transaction. Repeatable (see db/functions/README.md).
--
-- The batch's own transaction (call it T) opens it with ingest.open_batch(..., p_chunks => n),
-- which takes the batch's advisory lock and creates no staging table. Each chunk session then,
-- in one transaction of its own:
--   ingest.open_chunk(batch, k, header) -> COPY into ingest_scratch.stage_<batch>_<k>
--   -> ingest.check_chunk(batch, k, settings) -> commit
-- check_chunk runs the same ingest.check_stage as every other batch (the rules exist once) and
-- keeps its result in ingest_scratch.checked_<batch>_<k>. Back in T,
-- ingest.process_chunks(batch, n, ...) puts views named pg_temp.stage and pg_temp.checked over
-- all chunks and runs what must be serial (dedupe claim, typed insert, dead letter, metrics,
-- ledger, analytics) with ingest.finish_batch; its commit drops the scratch tables.
-- Only T has effects: a crash anywhere before T commits leaves scratch tables and nothing
-- else; ingest.sweep_scratch drops the tables of batches whose T is gone.

-- The advisory lock key of a batch loaded in chunks (held by T until it ends).
create function ingest.scratch_key(p_batch_id bigint)
returns bigint
language sql
immutable
set search_path = pg_catalog, pg_temp
return hashtextextended('ingest scratch ' || p_batch_id, 0);

-- Refuses when no open transaction holds the batch (T ended or never opened it in chunks).
create function ingest.require_chunked_batch(p_batch_id bigint)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if pg_try_advisory_xact_lock(ingest.scratch_key(p_batch_id)) then
        raise exception 'batch % is not open for chunks (its transaction ended, or it was not opened with p_chunks)',
            p_batch_id
            using errcode = '55000',
            hint = 'open the batch with ingest.open_batch(..., p_chunks) in another session and keep that transaction open while the chunks load';
    end if;
end
$$;

-- Creates chunk p_chunk's staging table for COPY (the header is the file's, as given to
-- open_batch). Returns {copy_table, copy_columns}.
create function ingest.open_chunk(p_batch_id bigint, p_chunk int, p_header text[])
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_plan jsonb;
begin
    perform ingest.require_chunked_batch(p_batch_id);
    if p_chunk is null or p_chunk < 1 then
        raise exception 'chunk number % is not valid', p_chunk
            using errcode = '22023', hint = 'number the chunks 1, 2, ... n';
    end if;
    v_plan := ingest.plan_stage(p_header);
    if v_plan ? 'reason' then
        raise exception 'the header cannot be loaded: %', v_plan ->> 'reason'
            using errcode = '22023', hint = 'open_batch rejects this header: do not load chunks for it';
    end if;
    return jsonb_build_object(
        'copy_table', ingest.create_stage(p_batch_id, (v_plan ->> 'schema_version')::int,
            v_plan ->> 'extra', v_plan ->> 'extra_json', p_chunk),
        'copy_columns', v_plan ->> 'copy_columns',
        -- on Citus: commit the COPY, then ingest.distribute_chunk and ingest.check_chunk,
        -- each in a transaction of its own (see distribute_chunk)
        'on_cluster', ingest.on_cluster()
    );
end
$$;

-- Citus only: spreads a committed chunk over the workers by line number (an event_id may be
-- missing) and creates the co-located table its checked rows go to, shaped by the check itself
-- (run once over no rows). The workers check it in the next transaction (ingest.check_chunk):
-- the connections that run the check see only committed tables. The COPY went to a
-- coordinator table because a COPY into a distributed table logs in to the workers as the
-- ingest role, which may not; this function moves the rows as the owner.
create function ingest.distribute_chunk(p_batch_id bigint, p_chunk int)
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_stage text := format('ingest_scratch.%I', format('stage_%s_%s', p_batch_id, p_chunk));
    v_checked text := format('ingest_scratch.%I', format('checked_%s_%s', p_batch_id, p_chunk));
begin
    perform ingest.require_chunked_batch(p_batch_id);
    if not ingest.on_cluster() or to_regclass(v_stage) is null then
        raise exception 'chunk % of batch % is not a staged chunk on a Citus cluster',
            p_chunk, p_batch_id
            using errcode = '55000', hint = 'call ingest.open_chunk and COPY first';
    end if;
    perform ingest.drop_temp_stage();
    execute format('create temp table stage (like %s including generated including defaults)',
        v_stage);
    perform ingest.check_stage('{}');
    execute format('create unlogged table %s (like pg_temp.checked)', v_checked);
    drop table pg_temp.checked;
    perform ingest.drop_temp_stage();
    begin
        execute format('select pg_catalog.create_distributed_table(%L, %L)', v_stage, 'line_no');
        execute format('select pg_catalog.create_distributed_table(%L, %L, colocate_with => %L)',
            v_checked, 'line_no', v_stage);
    exception when others then
        -- the cluster cannot take the chunk now (e.g. a worker being re-synced after a
        -- restart): it is checked on the coordinator instead, with the same rules
        raise warning 'chunk % of batch % is checked on the coordinator: %',
            p_chunk, p_batch_id, sqlerrm;
        execute format('drop table %s', v_checked);
        return false;
    end;
    return true;
end
$$;

-- On a Citus worker: checks one shard of a chunk's staging table into the co-located shard of
-- its checked table, with the same ingest.check_stage. ingest.check_chunk calls it through
-- run_command_on_colocated_placements, once per shard, in parallel. Returns the rows checked.
create function ingest.check_shard(p_stage text, p_checked text, p_settings jsonb)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_rows bigint;
begin
    -- temp objects only: Citus refuses DDL on a worker unless told it is not to be propagated
    perform set_config('citus.enable_ddl_propagation', 'off', true);
    perform ingest.drop_temp_stage();
    execute format('create temp view stage as select * from %s', p_stage::regclass);
    perform ingest.check_stage(p_settings);
    execute format('insert into %s select * from pg_temp.checked', p_checked::regclass);
    get diagnostics v_rows = row_count;
    drop table pg_temp.checked;
    perform ingest.drop_temp_stage();
    return v_rows;
end
$$;

-- Checks the rows a chunk session staged (ingest.check_stage, the rules of every batch) and
-- keeps the result for T in ingest_scratch.checked_<batch>_<chunk>. Returns the rows checked.
create function ingest.check_chunk(p_batch_id bigint, p_chunk int, p_settings jsonb)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_rows bigint;
    v_stage text := format('ingest_scratch.%I', format('stage_%s_%s', p_batch_id, p_chunk));
    v_checked text := format('ingest_scratch.%I', format('checked_%s_%s', p_batch_id, p_chunk));
    v_failed text;
begin
    perform ingest.require_chunked_batch(p_batch_id);
    if ingest.on_cluster() and to_regclass(v_checked) is not null then
        -- Citus (after ingest.distribute_chunk): every shard is checked on its worker, in
        -- parallel
        execute format($q$
            select string_agg(format('%%s:%%s shard %%s: %%s', nodename, nodeport, shardid1,
                result), '; ')
            from pg_catalog.run_command_on_colocated_placements(%L, %L, %L)
            where not success$q$,
            v_stage, v_checked,
            format('select ingest.check_shard(''%%s'', ''%%s'', %s::jsonb)',
                replace(quote_literal(p_settings::text), '%', '%%')))
        into v_failed;
        if v_failed is not null then
            raise exception 'chunk % of batch % could not be checked on the workers: %',
                p_chunk, p_batch_id, v_failed
                using errcode = '58000', hint = 'nothing was loaded: retry the file';
        end if;
        execute format('select count(*) from %s', v_checked) into v_rows;
        return v_rows;
    end if;
    if to_regclass(v_stage) is null then
        raise exception 'chunk % of batch % was not opened', p_chunk, p_batch_id
            using errcode = '55000', hint = 'call ingest.open_chunk and COPY first';
    end if;
    -- the view over this very chunk, always made here: a session of the pool may hold a view
    -- another chunk's transaction left (on Citus a chunk commits before its check)
    perform ingest.drop_temp_stage();
    execute format('create temp view stage as select * from %s', v_stage);
    perform ingest.check_stage(p_settings);
    execute format('create unlogged table ingest_scratch.%I as select * from pg_temp.checked',
        format('checked_%s_%s', p_batch_id, p_chunk));
    get diagnostics v_rows = row_count;
    drop table pg_temp.checked;
    perform ingest.drop_temp_stage();
    return v_rows;
end
$$;

-- The scratch tables of a batch's chunks 1..p_chunks of one kind ('stage' or 'checked'),
-- qualified; refuses the batch when one is missing (its session did not commit).
create function ingest.chunk_tables(p_batch_id bigint, p_chunks int, p_kind text)
returns text[]
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_out text[] := '{}';
    v_name text;
begin
    if p_chunks is null or p_chunks < 1 then
        raise exception 'a batch in chunks has at least one chunk (got %)', p_chunks
            using errcode = '22023';
    end if;
    if p_kind not in ('stage', 'checked') then
        raise exception 'unknown chunk table kind "%"', p_kind using errcode = '22023';
    end if;
    for k in 1 .. p_chunks loop
        v_name := format('ingest_scratch.%I', format('%s_%s_%s', p_kind, p_batch_id, k));
        if to_regclass(v_name) is null then
            raise exception 'chunk % of batch % is missing (%): its session did not commit',
                k, p_batch_id, p_kind
                using errcode = '55000', hint = 'nothing was loaded: retry the file';
        end if;
        v_out := v_out || v_name;
    end loop;
    return v_out;
end
$$;

-- T's part: every chunk of the batch (committed by its session) under pg_temp.stage and
-- pg_temp.checked, then ingest.finish_batch. Refuses the batch when a chunk is missing.
create function ingest.process_chunks(
    p_batch_id bigint,
    p_chunks int,
    p_expected_rows bigint,
    p_malformed jsonb,
    p_settings jsonb,
    p_copy_ms numeric default null
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_stage text[];
    v_checked text[];
    v_staged bigint;
    v_checked_rows bigint;
    v_lines bigint;
begin
    v_stage := array(select 'select * from ' || t
        from unnest(ingest.chunk_tables(p_batch_id, p_chunks, 'stage')) as t);
    v_checked := array(select 'select * from ' || t
        from unnest(ingest.chunk_tables(p_batch_id, p_chunks, 'checked')) as t);
    perform ingest.drop_temp_stage();
    if to_regclass('pg_temp.checked') is not null then
        drop table pg_temp.checked;
    end if;
    if ingest.on_cluster() then
        -- Citus: the chunks live on the workers; each staged row must have been checked
        -- exactly once (the workers' checks commit on their own): refuse the batch otherwise
        for k in 1 .. p_chunks loop
            execute format('select (select count(*) from ingest_scratch.%I),
                    c.n, c.lines
                from (select count(*) as n, count(distinct line_no) as lines
                      from ingest_scratch.%I) as c',
                format('stage_%s_%s', p_batch_id, k), format('checked_%s_%s', p_batch_id, k))
            into v_staged, v_checked_rows, v_lines;
            if v_checked_rows <> v_staged or v_lines <> v_staged then
                raise exception 'chunk % of batch % has % rows staged but % checked (% lines)',
                    k, p_batch_id, v_staged, v_checked_rows, v_lines
                    using errcode = '40001', hint = 'nothing was loaded: the file is retried';
            end if;
        end loop;
        -- the serial part reads them here once
        execute 'create temp table stage on commit drop as '
            || array_to_string(v_stage, ' union all ');
        execute 'create temp table checked on commit drop as '
            || array_to_string(v_checked, ' union all ');
    else
        execute 'create temp view stage as ' || array_to_string(v_stage, ' union all ');
        execute 'create temp view checked as ' || array_to_string(v_checked, ' union all ');
    end if;
    return ingest.finish_batch(
        p_batch_id, p_expected_rows, p_malformed, p_settings, p_copy_ms, false);
end
$$;

-- Drops the scratch tables of batches whose transaction is gone (a crash, a kill, a rollback
-- after the chunks committed). Safe at any time: a live batch's lock keeps its tables.
-- Returns the number of tables dropped.
create function ingest.sweep_scratch()
returns int
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v record;
    v_dropped int := 0;
begin
    for v in
        select c.relname, (regexp_match(c.relname, '^(?:stage|checked)_([0-9]+)_[0-9]+$'))[1]::bigint
            as batch_id
        from pg_class as c
        where c.relnamespace = 'ingest_scratch'::regnamespace and c.relkind = 'r'
        order by c.relname
    loop
        if v.batch_id is not null
            and pg_try_advisory_xact_lock(ingest.scratch_key(v.batch_id))
            -- a prepared slice still reads them: dropping would wait for its commit or
            -- rollback (recovery, ingest.prepared_decisions, comes first)
            and not exists (
                select from pg_catalog.pg_prepared_xacts as p
                where p.database = current_database()
                    and p.gid ~ format('^pipeline_slice_[0-9]+_%s_[0-9]+$', v.batch_id)
            ) then
            -- cascade: temp views other sessions left over it (see ingest.drop_stage)
            execute format('drop table if exists ingest_scratch.%I cascade', v.relname);
            v_dropped := v_dropped + 1;
        end if;
    end loop;
    return v_dropped;
end
$$;

revoke all on function ingest.scratch_key(bigint) from public;
revoke all on function ingest.chunk_tables(bigint, int, text) from public;
revoke all on function ingest.require_chunked_batch(bigint) from public;
revoke all on function ingest.open_chunk(bigint, int, text[]) from public;
revoke all on function ingest.check_chunk(bigint, int, jsonb) from public;
revoke all on function ingest.process_chunks(bigint, int, bigint, jsonb, jsonb, numeric) from public;
revoke all on function ingest.sweep_scratch() from public;
revoke all on function ingest.distribute_chunk(bigint, int) from public;
revoke all on function ingest.check_shard(text, text, jsonb) from public;
grant execute on function ingest.distribute_chunk(bigint, int) to pipeline_ingest;
grant execute on function ingest.open_chunk(bigint, int, text[]) to pipeline_ingest;
grant execute on function ingest.check_chunk(bigint, int, jsonb) to pipeline_ingest;
grant execute on function ingest.process_chunks(bigint, int, bigint, jsonb, jsonb, numeric)
    to pipeline_ingest;
grant execute on function ingest.sweep_scratch() to pipeline_ingest;
