-- Dedupe (first accepted row wins) and the insert into core.events.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- Whether a valid row whose event_id is already taken conflicts with the stored winner: a
-- fingerprint that differs. Winners stored by earlier versions carry the older text-based
-- fingerprint, so a row that differs from the current one is compared with that form too
-- (here only, on collision). Used by every batch (accept_checked) and every slice
-- (process_slice).
create function ingest.payload_conflicts(
    p_stored bigint,
    p_hash bigint,
    p_event_time timestamptz,
    p_event_type text,
    p_user_id bigint,
    p_session_id text,
    p_product_id bigint,
    p_category text,
    p_price numeric,
    p_quantity int,
    p_currency text,
    p_device text,
    p_traffic_source text,
    p_payment_method text,
    p_search_query text,
    p_email_hash bytea
)
returns boolean
language sql
stable
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
return p_stored <> p_hash
    and p_stored <> hashtextextended(concat_ws('|',
        p_event_time, p_event_type, p_user_id, p_session_id, p_product_id, p_category,
        p_price, p_quantity, p_currency, p_device, p_traffic_source, p_payment_method,
        p_search_query, encode(p_email_hash, 'hex')
    ), 0);

-- The select list that makes a row of core.events from a checked row aliased c (the columns
-- of core.events in order; total_amount = price x quantity on purchases), with p_batch (an
-- SQL expression) as the batch of rows that were not replayed.
create function ingest.event_columns_of(p_batch text)
returns text
language sql
immutable
set search_path = pg_catalog, pg_temp
return format($c$
            c.event_id, c.event_time, c.event_type, c.user_id, c.session_id, c.product_id,
            c.category, c.price, c.quantity,
            case when c.event_type = 'purchase' then c.price * c.quantity end as total_amount,
            c.currency, c.device, c.traffic_source, c.payment_method, c.search_query,
            c.email_hash, c.is_late, coalesce(nullif(c.src_batch_id, 0), %s) as batch_id,
            c.line_no, now() as ingested_at, c.extra$c$, p_batch);

-- The same for batch p_batch_id. Used by every slice (process_slice).
create function ingest.event_columns(p_batch_id bigint)
returns text
language sql
immutable
set search_path = pg_catalog, pg_temp
return ingest.event_columns_of(p_batch_id::text);

-- The view pg_temp.batch_events: this batch's new events, i.e. the valid rows of
-- pg_temp.checked (as rows of core.events) but those in pg_temp.rejected, and the queued
-- events a deferred analytics round claimed into pg_temp.claimed_events (analytics.apply_deferred;
-- empty in a batch). The view is made once per session (it lives with the session's staging
-- tables, ingest.session_staging) and reads the batch from pipeline.events_batch, which this
-- sets (p_batch_id null: the view only); statements over it keep their plans, in batches and
-- in deferred rounds alike. A batch_events view that exists is this one: whoever puts another
-- view under that name (a rebuild) drops it again. p_rejected (whether pg_temp.rejected holds
-- rows) is kept for the callers' sake: the view always reads it, and it is empty when nothing
-- was rejected.
create function ingest.define_batch_events(p_batch_id bigint, p_rejected boolean)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_batch_id is not null then
        perform set_config('pipeline.events_batch', p_batch_id::text, true);
    end if;
    if ingest.own_temp('batch_events') is not null then
        return;
    end if;
    if ingest.own_temp('rejected') is null then
        create temp table rejected (
            line_no bigint, src_batch_id bigint, is_conflict boolean
        ) on commit delete rows;
    end if;
    if ingest.own_temp('claimed_events') is null then
        create temp table claimed_events (like ingest.deferred_events) on commit delete rows;
    end if;
    -- (select …): evaluated once per statement, not per row
    execute format($view$
        create temp view batch_events as
        select %s
        from pg_temp.checked as c
        where c.is_valid
            and not exists (
                select from pg_temp.rejected as r
                where r.line_no = c.line_no and r.src_batch_id = c.src_batch_id
            )
        union all
        select null::uuid, d.event_time, d.event_type, d.user_id, d.session_id, d.product_id,
            d.category, d.price, d.quantity, d.total_amount, d.currency, d.device,
            d.traffic_source, null::text, null::text, null::bytea, null::boolean, d.batch_id,
            null::bigint, null::timestamptz, null::jsonb
        from pg_temp.claimed_events as d
    $view$, ingest.event_columns_of(
        '(select pg_catalog.current_setting(''pipeline.events_batch'')::bigint)'));
end
$$;

-- Dedupes pg_temp.checked against everything stored (first accepted wins) and inserts the
-- accepted rows into core.events. Leaves pg_temp.rejected (valid rows that were duplicates or
-- conflicting duplicates) and the view pg_temp.batch_events (this batch's new events).
create function ingest.accept_checked(p_batch_id bigint, out accepted bigint, out late bigint)
returns record
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
as $$
declare
    v_min timestamptz;
    v_max timestamptz;
    v_valid bigint;
    v_claimed bigint;
begin
    select min(event_time), max(event_time), count(*)
    into v_min, v_max, v_valid
    from pg_temp.checked where is_valid;
    perform core.ensure_partitions(v_min, v_max);

    -- The unique index decides: for each id the batch's first line goes in first, so within
    -- the batch and against every committed (or concurrently committing) batch the first
    -- accepted row wins. Ordering by id also gives concurrent batches one lock order (no
    -- deadlock on shared ids) and walks the btree in order.
    -- Counted with RETURNING: on Citus, ROW_COUNT after an INSERT ... SELECT ... ON CONFLICT
    -- DO NOTHING is the number of rows selected, not inserted (citusdata/citus#3377).
    with claimed as (
        insert into core.event_ids (event_id, payload_hash, batch_id, line_no)
        select c.event_id, c.payload_hash, coalesce(nullif(c.src_batch_id, 0), p_batch_id),
            c.line_no
        from pg_temp.checked as c
        where c.is_valid
        order by c.event_id, c.line_no
        on conflict do nothing
        returning 1
    )
    select count(*) into v_claimed from claimed;

    -- the session's table (ingest.session_staging), or made here (a batch in chunks)
    if ingest.own_temp('rejected') is null then
        create temp table rejected (
            line_no bigint, src_batch_id bigint, is_conflict boolean
        ) on commit delete rows;
    end if;
    delete from pg_temp.rejected;
    if v_claimed < v_valid then
        -- rare: some ids were taken; the taken ones are those whose winner is another row.
        -- Only these rows compare payloads (ingest.payload_conflicts).
        insert into pg_temp.rejected
        select c.line_no, c.src_batch_id,
            ingest.payload_conflicts(e.payload_hash, c.payload_hash,
                c.event_time, c.event_type, c.user_id, c.session_id, c.product_id, c.category,
                c.price, c.quantity, c.currency, c.device, c.traffic_source, c.payment_method,
                c.search_query, c.email_hash)
        from pg_temp.checked as c
        join core.event_ids as e on e.event_id = c.event_id
        where c.is_valid
            and (e.batch_id, e.line_no)
            <> (coalesce(nullif(c.src_batch_id, 0), p_batch_id), c.line_no);
        -- not analyzed: statistics would make every statement over it plan again (and one
        -- kept from a small batch could mislead the next); unanalyzed, the planner sizes it
        -- from its pages, at least 10, which gives hash joins at any size
    end if;

    perform ingest.define_batch_events(p_batch_id, v_claimed < v_valid);

    insert into core.events select * from pg_temp.batch_events;
    get diagnostics accepted = row_count;
    select count(*) into late from pg_temp.batch_events where is_late;
end
$$;

revoke all on function ingest.accept_checked(bigint) from public;
revoke all on function ingest.event_columns(bigint) from public;
revoke all on function ingest.event_columns_of(text) from public;
revoke all on function ingest.define_batch_events(bigint, boolean) from public;
revoke all on function ingest.payload_conflicts(bigint, bigint, timestamptz, text, bigint, text,
    bigint, text, numeric, int, text, text, text, text, text, bytea) from public;
