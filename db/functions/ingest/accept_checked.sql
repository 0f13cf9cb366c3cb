-- Dedupe (first accepted row wins) and the insert into core.events.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

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

    drop table if exists pg_temp.rejected;
    create temp table rejected (
        line_no bigint, src_batch_id bigint, is_conflict boolean
    ) on commit drop;
    if v_claimed < v_valid then
        -- rare: some ids were taken; the taken ones are those whose winner is another row.
        -- Only these rows compare payloads: a conflict is a fingerprint that differs. Winners
        -- stored by earlier versions carry the older text-based fingerprint, so a row that
        -- differs from the current one is compared with that form too (here only, on collision).
        insert into pg_temp.rejected
        select c.line_no, c.src_batch_id,
            e.payload_hash <> c.payload_hash
            and e.payload_hash <> hashtextextended(concat_ws('|',
                c.event_time, c.event_type, c.user_id, c.session_id, c.product_id, c.category,
                c.price, c.quantity, c.currency, c.device, c.traffic_source, c.payment_method,
                c.search_query, encode(c.email_hash, 'hex')
            ), 0)
        from pg_temp.checked as c
        join core.event_ids as e on e.event_id = c.event_id
        where c.is_valid
            and (e.batch_id, e.line_no)
            <> (coalesce(nullif(c.src_batch_id, 0), p_batch_id), c.line_no);
        analyze pg_temp.rejected;
    end if;

    drop view if exists pg_temp.batch_events;
    execute format($view$
        create temp view batch_events as
        select
            c.event_id, c.event_time, c.event_type, c.user_id, c.session_id, c.product_id,
            c.category, c.price, c.quantity,
            case when c.event_type = 'purchase' then c.price * c.quantity end as total_amount,
            c.currency, c.device, c.traffic_source, c.payment_method, c.search_query,
            c.email_hash, c.is_late, coalesce(nullif(c.src_batch_id, 0), %s) as batch_id,
            c.line_no, now() as ingested_at, c.extra
        from pg_temp.checked as c
        where c.is_valid %s
    $view$, p_batch_id, case when v_claimed < v_valid then $anti$
            and not exists (
                select from pg_temp.rejected as r
                where r.line_no = c.line_no and r.src_batch_id = c.src_batch_id
            ) $anti$ else '' end);

    insert into core.events select * from pg_temp.batch_events;
    get diagnostics accepted = row_count;
    select count(*) into late from pg_temp.batch_events where is_late;
end
$$;

revoke all on function ingest.accept_checked(bigint) from public;
