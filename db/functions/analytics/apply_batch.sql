-- Analytics for each batch: inline in its transaction, or queued and applied later (deferred).
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- Analytics hook, called inside every batch transaction with the batch's new events in
-- pg_temp.batch_events. Inline (the default), it adds them to the rollups now; a replay (no
-- metrics row of its own) rebuilds the quality rollups. A batch that sets
-- pipeline.analytics = 'deferred' (the HTTP collector does, see HTTP_ANALYTICS) does not touch
-- the rollups in its own transaction: rollup rows are hot, and every batch would hold them
-- (and the rollup lock) until its commit. It queues what analytics.apply_events needs, in its
-- own transaction, and analytics.apply_deferred() folds the queue in later.
create function analytics.apply_batch(p_batch_id bigint)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    if current_setting('pipeline.analytics', true) is distinct from 'deferred' then
        perform pg_advisory_xact_lock(analytics.rollup_lock_key());
        if not analytics.apply_quality(p_batch_id) then
            -- a replay: it changed the metrics and dead letter of earlier batches
            perform analytics.rebuild_quality();
        end if;
        -- a file in slices may have rolled its events up already (ingest.roll_up_ahead)
        if current_setting('pipeline.rolled_up_ahead', true) is distinct from p_batch_id::text
        then
            perform analytics.apply_events();
        end if;
        return;
    end if;
    insert into ingest.deferred_batches (batch_id) values (p_batch_id);
    if to_regclass('pg_temp.batch_events') is not null then
        insert into ingest.deferred_events (
            batch_id, event_time, event_type, user_id, session_id, product_id, category,
            quantity, total_amount, price, currency, device, traffic_source
        )
        select
            p_batch_id, event_time, event_type, user_id, session_id, product_id, category,
            quantity, total_amount, price, currency, device, traffic_source
        from pg_temp.batch_events;
    end if;
end
$$;

-- Folds every queued batch and event into the rollups, in the caller's transaction. Returns
-- {batches, events, oldest_queued_at, ms}; {batches: 0, events: 0} when nothing waits.
create function analytics.apply_deferred()
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
set work_mem = '256MB'
as $$
declare
    v_started timestamptz := clock_timestamp();
    v_ids bigint[];
    v_id bigint;
    v_oldest timestamptz;
    v_events bigint := 0;
    v_rebuild boolean := false;
    v_fast boolean := false;
begin
    perform pg_advisory_xact_lock(analytics.rollup_lock_key());

    with claimed as (
        delete from ingest.deferred_batches returning batch_id, queued_at
    )
    select array_agg(batch_id order by batch_id), min(queued_at)
    into v_ids, v_oldest
    from claimed;
    foreach v_id in array coalesce(v_ids, '{}') loop
        if not analytics.apply_quality(v_id) then
            v_rebuild := true;
        end if;
    end loop;
    if v_rebuild then
        perform analytics.rebuild_quality();
    end if;

    if not exists (select from ingest.deferred_events) then
        return jsonb_build_object(
            'batches', coalesce(cardinality(v_ids), 0), 'events', 0, 'oldest_queued_at', v_oldest,
            'ms', round(extract(epoch from clock_timestamp() - v_started)::numeric * 1000, 1)
        );
    end if;
    -- the events of batches that committed after the claim above may be taken here already:
    -- either way each queued row is applied once
    -- (two steps: a statement that names pg_temp.checked fails where there is none)
    if ingest.session_staging_intact() and ingest.own_temp('claimed_events') is not null
        and ingest.own_temp('batch_events') is not null then
        v_fast := not exists (select from pg_temp.checked);
    end if;
    if v_fast then
        -- the session's batch_events view reads pg_temp.claimed_events too
        -- (ingest.define_batch_events): no table or view to make, and the rollups' statements
        -- keep their plans. (pg_temp.checked is empty: no batch in this transaction.)
        delete from pg_temp.claimed_events;
        with claimed as (
            delete from ingest.deferred_events returning *
        )
        insert into pg_temp.claimed_events select * from claimed;
        get diagnostics v_events = row_count;
        if v_events > 0 then
            perform analytics.apply_events();
        end if;
        delete from pg_temp.claimed_events;
        return jsonb_build_object(
            'batches', coalesce(cardinality(v_ids), 0),
            'events', v_events,
            'oldest_queued_at', v_oldest,
            'ms', round(extract(epoch from clock_timestamp() - v_started)::numeric * 1000, 1)
        );
    end if;
    drop table if exists pg_temp.deferred_claimed;
    create temp table deferred_claimed on commit drop as
    select * from ingest.deferred_events with no data;
    with claimed as (
        delete from ingest.deferred_events returning *
    )
    insert into pg_temp.deferred_claimed select * from claimed;
    get diagnostics v_events = row_count;
    if v_events > 0 then
        drop view if exists pg_temp.batch_events;
        create temp view batch_events as select * from pg_temp.deferred_claimed;
        perform analytics.apply_events();
        drop view if exists pg_temp.batch_events;
    end if;
    drop table pg_temp.deferred_claimed;

    return jsonb_build_object(
        'batches', coalesce(cardinality(v_ids), 0),
        'events', v_events,
        'oldest_queued_at', v_oldest,
        'ms', round(extract(epoch from clock_timestamp() - v_started)::numeric * 1000, 1)
    );
end
$$;

revoke all on function analytics.apply_batch(bigint) from public;
revoke all on function analytics.apply_deferred() from public;
grant execute on function analytics.apply_deferred() to pipeline_ingest;
