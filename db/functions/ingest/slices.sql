-- One file on every core, effects included: a batch loaded in chunks (chunks.sql) is finished
-- by several slice sessions at once, made atomic with a two-phase commit.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).
--
-- After the chunk sessions committed their checked rows, and while the batch's own transaction
-- T holds the batch (ingest.require_chunked_batch):
--   1. ingest.prepare_slices(batch, n) in a transaction of its own: the partitions of
--      core.events the batch needs (created and committed first: a slice must never wait on
--      another slice's uncommitted DDL).
--   2. n slice sessions, each in its own transaction: ingest.process_slice(batch, n, slice, ...)
--      then PREPARE TRANSACTION ingest.slice_gid(batch, slice). A valid row belongs to the
--      slice ingest.slice_of(event_id, n), so no two slices ever claim the same id; an invalid
--      row to the slice line_no % n. Each slice claims its ids in core.event_ids, inserts its
--      events, writes its dead letter rows (conflicting duplicates included) and returns its
--      counts and its rejected lines.
--   3. T: ingest.finish_slices(batch, ..., the slices' results): metrics, analytics over the
--      batch's new events (the valid rows of the chunks minus the slices' rejected lines),
--      ledger, and one row per slice in ingest.prepared_slices: the decision. T commits.
--   4. COMMIT PREPARED of every slice, then the scratch tables are swept.
-- A crash before T commits leaves prepared slices whose batch wrote no decision: recovery
-- rolls them back. A crash after it leaves prepared slices whose gids are in
-- ingest.prepared_slices: recovery commits them. ingest.prepared_decisions says which is which;
-- the ingester (at start and before each load in slices) and `deno task maintain` act on it
-- (COMMIT/ROLLBACK PREPARED cannot run inside a function).

-- The slice of a valid row (by its event_id: every copy of an id lands in one slice).
create function ingest.slice_of(p_event_id uuid, p_slices int)
returns int
language sql
immutable
parallel safe
return abs(uuid_hash_extended(p_event_id, 0) % p_slices)::int;

-- The global transaction id of a batch's slice (pg_prepared_xacts.gid). Gids are unique in the
-- whole server, batch ids only in their database: the database's oid is part of it.
create function ingest.slice_gid(p_batch_id bigint, p_slice int)
returns text
language sql
stable
set search_path = pg_catalog, pg_temp
return format('pipeline_slice_%s_%s_%s',
    (select d.oid from pg_catalog.pg_database as d where d.datname = current_database()),
    p_batch_id, p_slice);

-- Step 1: the monthly partitions the batch's valid rows need, created and committed before the
-- slices start. Refuses when the server cannot prepare transactions. Returns the valid rows.
create function ingest.prepare_slices(p_batch_id bigint, p_chunks int)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
as $$
declare
    v_min timestamptz;
    v_max timestamptz;
    v_valid bigint;
begin
    perform ingest.require_chunked_batch(p_batch_id);
    if current_setting('max_prepared_transactions')::int = 0 then
        raise exception 'a file loaded in slices needs max_prepared_transactions > 0 (it is 0 on this server)'
            using errcode = '55000',
            hint = 'set max_prepared_transactions (at least 2 x the ingesters'' --chunks, e.g. 16) in postgresql.conf and restart PostgreSQL (make down && make up for the embedded server), or load with --chunks 1';
    end if;
    execute format('select min(event_time), max(event_time), count(*) from (%s) as c
            where c.is_valid',
        array_to_string(array(select 'select event_time, is_valid from ' || t
            from unnest(ingest.chunk_tables(p_batch_id, p_chunks, 'checked')) as t),
            ' union all '))
    into v_min, v_max, v_valid;
    perform core.ensure_partitions(v_min, v_max);
    return v_valid;
end
$$;

-- Step 2, in a slice session: the slice's complete work (see above). Touches no temporary
-- object (a transaction that did cannot be prepared). Returns {slice, valid, accepted, late,
-- duplicates, conflicts, invalid, rejected: [line_no...], reasons, invalid_rows}.
create function ingest.process_slice(
    p_batch_id bigint,
    p_chunks int,
    p_slice int,
    p_slices int,
    p_name text
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
set work_mem = '256MB'
set random_page_cost = 1.1
-- a slice may wait for an id another load holds. If that load is itself a file in slices, its
-- holder is a prepared slice, which commits only once every slice of its file prepared, and
-- one of those may wait on this one: a cycle PostgreSQL cannot see (prepared transactions wait
-- on nobody). It is broken here, as a serialization failure the loader retries.
set lock_timeout = '30s'
as $$
declare
    v_checked text[];
    v_stage text[];
    v_all text;
    v_mine text;
    v_valid bigint;
    v_claimed bigint;
    v_accepted bigint;
    v_late bigint;
    v_rej_lines bigint[] := '{}';
    v_rej_conflict boolean[] := '{}';
    v_dead bigint := 0;
    v_dead_lines bigint[];
    v_reasons jsonb;
    v_invalid_rows jsonb;
begin
    perform ingest.require_chunked_batch(p_batch_id);
    if p_slices is null or p_slices < 1 or p_slice is null or p_slice < 0
        or p_slice >= p_slices then
        raise exception 'slice % of % is not valid', p_slice, p_slices
            using errcode = '22023', hint = 'number the slices 0 .. n-1';
    end if;
    v_checked := ingest.chunk_tables(p_batch_id, p_chunks, 'checked');
    v_stage := ingest.chunk_tables(p_batch_id, p_chunks, 'stage');
    v_all := array_to_string(array(select 'select * from ' || t from unnest(v_checked) as t),
        ' union all ');
    v_mine := format('c.is_valid and ingest.slice_of(c.event_id, %s) = %s', p_slices, p_slice);

    -- the claim: for each id the batch's first line goes in first (ordered by id, then line);
    -- a line not claimed is rejected: its id's winner is another line (stored before, or an
    -- earlier line of the batch)
    execute format($q$
        with mine as materialized (
            select c.event_id, c.payload_hash, coalesce(nullif(c.src_batch_id, 0), %1$s) as batch_id,
                c.line_no
            from (%2$s) as c
            where %3$s
        ),
        claimed as (
            insert into core.event_ids (event_id, payload_hash, batch_id, line_no)
            select event_id, payload_hash, batch_id, line_no
            from mine
            order by event_id, line_no
            on conflict do nothing
            returning batch_id, line_no
        )
        select (select count(*) from mine), (select count(*) from claimed),
            coalesce((
                select array_agg(m.line_no order by m.line_no)
                from mine as m
                where not exists (
                    select from claimed as k
                    where k.batch_id = m.batch_id and k.line_no = m.line_no
                )
            ), '{}')$q$,
        p_batch_id, v_all, v_mine)
    into v_valid, v_claimed, v_rej_lines;

    if cardinality(v_rej_lines) > 0 then
        -- rare: whether each rejected line conflicts with its id's winner (only those lines
        -- are looked up: a constant array, hashed)
        execute format($q$
            select coalesce(array_agg(c.line_no order by c.line_no), '{}'),
                coalesce(array_agg(ingest.payload_conflicts(e.payload_hash, c.payload_hash,
                    c.event_time, c.event_type, c.user_id, c.session_id, c.product_id,
                    c.category, c.price, c.quantity, c.currency, c.device, c.traffic_source,
                    c.payment_method, c.search_query, c.email_hash) order by c.line_no), '{}')
            from (%s) as c
            join core.event_ids as e on e.event_id = c.event_id
            where %s and c.line_no = any (%L::bigint[])$q$,
            v_all, v_mine, v_rej_lines)
        into v_rej_lines, v_rej_conflict;
    end if;

    execute format($q$
        with inserted as (
            insert into core.events
            select %s
            from (%s) as c
            where %s %s
            returning is_late
        )
        select count(*), count(*) filter (where is_late) from inserted$q$,
        ingest.event_columns(p_batch_id), v_all, v_mine,
        -- a constant array: hashed, not scanned per row as a parameter or subquery would be
        case when cardinality(v_rej_lines) > 0 then
            format('and c.line_no <> all (%L::bigint[])', v_rej_lines) else '' end)
    into v_accepted, v_late;

    -- the dead letter: this slice's invalid rows (by line) and its conflicting duplicates,
    -- with the values as sent. Their lines first (few), then only those rows of the checked
    -- and staged chunks (constant arrays, hashed), joined
    execute format('select coalesce(array_agg(c.line_no), ''{}'') from (%s) as c
            where not c.is_valid and c.line_no %% %s = %s',
        array_to_string(array(select 'select line_no, is_valid from ' || t
            from unnest(v_checked) as t), ' union all '),
        p_slices, p_slice)
    into v_dead_lines;
    v_dead_lines := v_dead_lines || array(
        select l from unnest(v_rej_lines, v_rej_conflict) as r (l, conflict) where r.conflict);
    if cardinality(v_dead_lines) > 0 then
        execute format($q$
            insert into quality.dead_letter (
                batch_id, source, line_no, reasons, event_id, event_time, event_type, user_id,
                session_id, product_id, category, price, quantity, currency, device,
                traffic_source, payment_method, search_query, user_email_sealed, schema_version,
                extra
            )
            select %1$s, $1, c.line_no,
                ingest.dead_letter_reasons(c.is_valid, c.mask),
                s.event_id, s.event_time, s.event_type, s.user_id, s.session_id, s.product_id,
                s.category, s.price, s.quantity, s.currency, s.device, s.traffic_source,
                s.payment_method, s.search_query, core.seal_email(s.user_email),
                c.schema_version, s.extra
            from (select * from (%2$s) as c0 where c0.line_no = any (%4$L::bigint[])) as c
            join (select * from (%3$s) as s0 where s0.line_no = any (%4$L::bigint[])) as s
                on s.line_no = c.line_no$q$,
            p_batch_id, v_all,
            array_to_string(array(select 'select * from ' || t from unnest(v_stage) as t),
                ' union all '),
            v_dead_lines)
        using p_name;
        get diagnostics v_dead = row_count;
    end if;

    -- what this session sees of the batch's dead letter is its own rows
    select coalesce(jsonb_object_agg(reason, n), '{}') into v_reasons
    from (
        select reason, count(*) as n
        from quality.dead_letter as d, unnest(d.reasons) as reason
        where d.batch_id = p_batch_id
        group by reason
    ) as x;
    select coalesce(jsonb_agg(jsonb_build_object('line_no', d.line_no, 'reasons', d.reasons)
        order by d.line_no), '[]')
    into v_invalid_rows
    from (
        select line_no, reasons from quality.dead_letter
        where batch_id = p_batch_id order by line_no limit 1000
    ) as d;

    return jsonb_build_object(
        'slice', p_slice,
        'valid', v_valid,
        'accepted', v_accepted,
        'late', v_late,
        'duplicates', (select count(*) from unnest(v_rej_conflict) as x where not x),
        'conflicts', (select count(*) from unnest(v_rej_conflict) as x where x),
        'invalid', v_dead - (select count(*) from unnest(v_rej_conflict) as x where x),
        'rejected', to_jsonb(v_rej_lines),
        'reasons', v_reasons,
        'invalid_rows', v_invalid_rows
    );
exception when lock_not_available then
    raise exception 'slice % of batch % waited 30 s for an event id another load holds', p_slice,
        p_batch_id
        using errcode = '40001',
        hint = 'nothing of this file was loaded: it is retried (two files in slices sharing ids wait on each other''s prepared slices)';
end
$$;

-- The temp views pg_temp.stage and pg_temp.checked over the batch's chunk tables, in T.
create function ingest.view_chunks(p_batch_id bigint, p_chunks int)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    perform ingest.drop_temp_stage();
    if to_regclass('pg_temp.checked') is not null then
        drop table pg_temp.checked;
    end if;
    execute 'create temp view stage as ' || array_to_string(array(
        select 'select * from ' || t
        from unnest(ingest.chunk_tables(p_batch_id, p_chunks, 'stage')) as t), ' union all ');
    execute 'create temp view checked as ' || array_to_string(array(
        select 'select * from ' || t
        from unnest(ingest.chunk_tables(p_batch_id, p_chunks, 'checked')) as t), ' union all ');
end
$$;

-- Step 2's companion, in T while the slices run: the batch's events rolled up ahead of the
-- slices, so the rollups (the largest serial part of a file in slices) run on the cores the
-- slices leave. The lines the slices will reject are predicted from core.event_ids as T sees
-- it, by their rule: every copy of an id stored before but the stored line itself, and every
-- later line of an id new to the store (the first line wins). The prediction goes to
-- pg_temp.rejected, the rollups see pg_temp.batch_events (ingest.define_batch_events), and
-- pipeline.rolled_up_ahead names the batch so analytics.apply_batch does not roll it up again.
-- The caller runs this inside a savepoint, after ingest.prepare_slices (whose partitions this
-- transaction must not hold a lock against), and keeps it only when
-- ingest.rolled_up_as_predicted says the slices rejected exactly those lines; otherwise it
-- rolls back to the savepoint and finish_slices rolls up after the slices, as without it.
-- Returns the lines predicted rejected.
create function ingest.roll_up_ahead(p_batch_id bigint, p_chunks int)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
set work_mem = '256MB'
set random_page_cost = 1.1
as $$
declare
    v_lo uuid;
    v_hi uuid;
    v_stored boolean;
    v_rejected bigint;
begin
    perform ingest.opened_batch(p_batch_id);
    perform ingest.view_chunks(p_batch_id, p_chunks);
    drop table if exists pg_temp.rejected;
    create temp table rejected (line_no bigint, src_batch_id bigint) on commit drop;
    -- no stored id within the range of the batch's ids (time-ordered ids, new data): none of
    -- them is stored, and no row needs a look-up
    -- (uuid has no min() and max())
    v_lo := (select c.event_id from pg_temp.checked as c where c.is_valid
        order by c.event_id limit 1);
    v_hi := (select c.event_id from pg_temp.checked as c where c.is_valid
        order by c.event_id desc limit 1);
    v_stored := exists (
        select from core.event_ids as e where e.event_id between v_lo and v_hi);
    insert into pg_temp.rejected
    select v.line_no, 0
    from pg_temp.checked as v
    where v_stored and v.is_valid and exists (
        select from core.event_ids as e
        where e.event_id = v.event_id
            and (e.batch_id, e.line_no)
            <> (coalesce(nullif(v.src_batch_id, 0), p_batch_id), v.line_no)
    )
    union all
    select v.line_no, 0
    from pg_temp.checked as v
    join (
        select c.event_id, min(c.line_no) as line_no
        from pg_temp.checked as c
        where c.is_valid
        group by c.event_id
        having count(*) > 1
    ) as f on f.event_id = v.event_id and f.line_no <> v.line_no
    where v.is_valid and not (v_stored
        and exists (select from core.event_ids as e where e.event_id = v.event_id));
    get diagnostics v_rejected = row_count;
    perform ingest.define_batch_events(p_batch_id, v_rejected > 0);
    -- the rollups read the batch's events several times: from the chunks once, here, in the
    -- columns they use (those ingest.deferred_events keeps), then from this narrow table
    create temp table ahead_events on commit drop as
    select event_time, event_type, user_id, session_id, product_id, category, quantity,
        total_amount, price, currency, device, traffic_source
    from pg_temp.batch_events;
    drop view pg_temp.batch_events;
    create temp view batch_events as select * from pg_temp.ahead_events;
    perform pg_advisory_xact_lock(analytics.rollup_lock_key());
    perform analytics.apply_events();
    perform set_config('pipeline.rolled_up_ahead', p_batch_id::text, true);
    return v_rejected;
end
$$;

-- Whether the slices rejected exactly the lines ingest.roll_up_ahead predicted (p_results:
-- the slices' process_slice results). False when a load beside this one stored one of the
-- batch's ids after the prediction was made.
create function ingest.rolled_up_as_predicted(p_batch_id bigint, p_results jsonb)
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    return coalesce(current_setting('pipeline.rolled_up_ahead', true) = p_batch_id::text, false)
        and array(select r.line_no from pg_temp.rejected as r order by 1)
        = array(
            select l::bigint
            from jsonb_array_elements(p_results) as x,
                jsonb_array_elements_text(x -> 'rejected') as l
            order by 1);
end
$$;

-- Step 3, in T (the batch's own transaction, opened with p_chunks): checks that the slices'
-- results cover every staged row once, then what only T does: the malformed rows' dead letter,
-- metrics, analytics over the batch's new events, the ledger, and the decision (one row per
-- slice in ingest.prepared_slices). p_results: the slices' process_slice results, one per
-- slice 0 .. n-1. The caller commits, then commits every prepared slice.
create function ingest.finish_slices(
    p_batch_id bigint,
    p_chunks int,
    p_expected_rows bigint,
    p_malformed jsonb,
    p_settings jsonb,
    p_copy_ms numeric,
    p_results jsonb
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
set work_mem = '256MB'
as $$
declare
    v_ctx jsonb := ingest.opened_batch(p_batch_id);
    v_started timestamptz := clock_timestamp();
    v_slices int := jsonb_array_length(p_results);
    v_malformed bigint := coalesce(jsonb_array_length(p_malformed), 0);
    v_staged bigint;
    v_valid bigint;
    v_invalid bigint;
    v_sum record;
    v_reasons jsonb;
    v_invalid_rows jsonb;
begin
    if v_slices is null or v_slices < 1 or array(
        select (r ->> 'slice')::int from jsonb_array_elements(p_results) as r order by 1
    ) is distinct from array(select generate_series(0, v_slices - 1)) then
        raise exception 'batch % needs one result per slice 0 .. n-1', p_batch_id
            using errcode = '22023', hint = 'nothing was loaded: retry the file';
    end if;

    perform ingest.view_chunks(p_batch_id, p_chunks);

    select count(*), count(*) filter (where is_valid), count(*) filter (where not is_valid)
    into v_staged, v_valid, v_invalid
    from pg_temp.checked;
    if v_staged + v_malformed <> p_expected_rows then
        raise exception 'batch % staged % rows (+% malformed) but the client sent %',
            p_batch_id, v_staged, v_malformed, p_expected_rows
            using errcode = '22000', hint = 'the COPY stream was cut short: retry the file';
    end if;
    select sum((r ->> 'valid')::bigint)::bigint as valid,
        sum((r ->> 'accepted')::bigint)::bigint as accepted,
        sum((r ->> 'late')::bigint)::bigint as late,
        sum((r ->> 'duplicates')::bigint)::bigint as duplicates,
        sum((r ->> 'conflicts')::bigint)::bigint as conflicts,
        sum((r ->> 'invalid')::bigint)::bigint as invalid
    into v_sum
    from jsonb_array_elements(p_results) as r;
    if v_sum.valid <> v_valid or v_sum.invalid <> v_invalid
        or v_sum.accepted + v_sum.duplicates + v_sum.conflicts <> v_valid then
        raise exception 'the slices of batch % handled % valid and % invalid rows of % and %',
            p_batch_id, v_sum.valid, v_sum.invalid, v_valid, v_invalid
            using errcode = '40001', hint = 'nothing was loaded: retry the file';
    end if;

    -- the batch's new events: the valid rows but those the slices rejected
    drop table if exists pg_temp.rejected;
    create temp table rejected (line_no bigint, src_batch_id bigint) on commit drop;
    insert into pg_temp.rejected
    select l::bigint, 0
    from jsonb_array_elements(p_results) as r, jsonb_array_elements_text(r -> 'rejected') as l;
    perform ingest.define_batch_events(p_batch_id, v_sum.duplicates + v_sum.conflicts > 0);

    perform ingest.dead_letter_malformed(p_batch_id, v_ctx ->> 'name', p_malformed);

    select coalesce(jsonb_object_agg(reason, n), '{}') into v_reasons
    from (
        select x.key as reason, sum(x.value::bigint) as n
        from (
            select e.key, e.value
            from jsonb_array_elements(p_results) as r, jsonb_each_text(r -> 'reasons') as e
            union all
            select 'malformed_row', v_malformed::text where v_malformed > 0
        ) as x
        group by x.key
    ) as y;
    select coalesce(jsonb_agg(i order by (i ->> 'line_no')::bigint), '[]')
    into v_invalid_rows
    from (
        select i
        from (
            select i from jsonb_array_elements(p_results) as r,
                jsonb_array_elements(r -> 'invalid_rows') as i
            union all
            select jsonb_build_object('line_no', (m ->> 'line_no')::bigint,
                'reasons', jsonb_build_array('malformed_row'))
            from jsonb_array_elements(coalesce(p_malformed, '[]')) as m
        ) as u
        order by (i ->> 'line_no')::bigint
        limit 1000
    ) as f;

    insert into ingest.prepared_slices (gid, batch_id, slice)
    select ingest.slice_gid(p_batch_id, s), p_batch_id, s
    from generate_series(0, v_slices - 1) as s;

    return ingest.close_batch(p_batch_id, v_staged + v_malformed, v_sum.accepted,
        v_sum.duplicates, v_sum.late, v_reasons, v_invalid_rows, p_settings, p_copy_ms,
        v_started, false);
end
$$;

-- Recovery: what to do with each prepared slice transaction of this database. 'commit' when
-- its batch committed the decision (ingest.prepared_slices), 'rollback' when its batch's
-- transaction ended without it, 'wait' while that transaction is still open; owner: the role
-- that prepared it, the only one (with superusers) that may finish it. The caller runs
-- COMMIT PREPARED / ROLLBACK PREPARED (scripts/lib/ingest/slices.ts), outside a transaction.
create function ingest.prepared_decisions()
returns table (gid text, batch_id bigint, action text, owner text)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v record;
    v_batch bigint;
begin
    for v in
        select p.gid, p.owner::text as owner
        from pg_catalog.pg_prepared_xacts as p
        where p.database = current_database() and p.gid ~ '^pipeline_slice_[0-9]+_[0-9]+_[0-9]+$'
        order by p.gid
    loop
        v_batch := (regexp_match(v.gid, '^pipeline_slice_[0-9]+_([0-9]+)_'))[1]::bigint;
        gid := v.gid;
        batch_id := v_batch;
        owner := v.owner;
        -- the lock first: once it is free the batch's transaction has ended, and the next
        -- statement's snapshot shows whether it committed the decision
        if not pg_try_advisory_xact_lock(ingest.scratch_key(v_batch)) then
            action := 'wait';
        elsif exists (select from ingest.prepared_slices as s where s.gid = v.gid) then
            action := 'commit';
        else
            action := 'rollback';
        end if;
        return next;
    end loop;
end
$$;

revoke all on function ingest.slice_of(uuid, int) from public;
revoke all on function ingest.slice_gid(bigint, int) from public;
revoke all on function ingest.prepare_slices(bigint, int) from public;
revoke all on function ingest.process_slice(bigint, int, int, int, text) from public;
revoke all on function ingest.finish_slices(bigint, int, bigint, jsonb, jsonb, numeric, jsonb)
    from public;
revoke all on function ingest.view_chunks(bigint, int) from public;
revoke all on function ingest.roll_up_ahead(bigint, int) from public;
revoke all on function ingest.rolled_up_as_predicted(bigint, jsonb) from public;
revoke all on function ingest.prepared_decisions() from public;
grant execute on function ingest.slice_gid(bigint, int) to pipeline_ingest;
grant execute on function ingest.prepare_slices(bigint, int) to pipeline_ingest;
grant execute on function ingest.process_slice(bigint, int, int, int, text) to pipeline_ingest;
grant execute on function ingest.finish_slices(bigint, int, bigint, jsonb, jsonb, numeric, jsonb)
    to pipeline_ingest;
grant execute on function ingest.prepared_decisions() to pipeline_ingest;
grant execute on function ingest.roll_up_ahead(bigint, int) to pipeline_ingest;
grant execute on function ingest.rolled_up_as_predicted(bigint, jsonb) to pipeline_ingest;
