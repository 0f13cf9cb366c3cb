-- migrate:up
-- Deferred analytics for the HTTP collector. A batch that sets pipeline.analytics = 'deferred'
-- (the collector does, see HTTP_ANALYTICS) does not touch the rollups in its own transaction:
-- it queues what analytics.apply_events needs, and analytics.apply_deferred() folds everything
-- queued into the rollups in one later transaction (the collector runs it every
-- ANALYTICS_INTERVAL_MS). Rollup rows are hot: with inline analytics every batch holds them
-- (and the rollup lock) until its commit, so concurrent batches queue behind each other.
-- Queued rows are claimed by deleting them, so each is counted exactly once; a crash leaves
-- them queued for the next run.
set local role pipeline_owner;

create table ingest.deferred_batches (
    batch_id bigint primary key,
    queued_at timestamptz not null default clock_timestamp()
);

create table ingest.deferred_events (
    batch_id bigint not null,
    event_time timestamptz not null,
    event_type text not null,
    user_id bigint,
    session_id text not null,
    product_id bigint,
    category text,
    quantity int not null,
    total_amount numeric(20, 2)
);

-- The rollup code the batches ran so far keeps its body under a new name; analytics.apply_batch
-- (called inside every batch transaction with the batch's new events in pg_temp.batch_events)
-- runs it now, or queues the events when the batch asked for deferred analytics.
alter function analytics.apply_batch(bigint) rename to apply_batch_now;

create function analytics.apply_batch(p_batch_id bigint)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    if current_setting('pipeline.analytics', true) is distinct from 'deferred' then
        perform analytics.apply_batch_now(p_batch_id);
        return;
    end if;
    insert into ingest.deferred_batches (batch_id) values (p_batch_id);
    if to_regclass('pg_temp.batch_events') is not null then
        insert into ingest.deferred_events (
            batch_id, event_time, event_type, user_id, session_id, product_id, category,
            quantity, total_amount
        )
        select
            p_batch_id, event_time, event_type, user_id, session_id, product_id, category,
            quantity, total_amount
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
        drop view pg_temp.batch_events;
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

-- analytics.rebuild_rollups (deno task refresh) drops what is queued for deferred analytics
-- before the rebuild it always did (kept under a new name): the rebuild counts those events.
alter function analytics.rebuild_rollups() rename to rebuild_rollups_from_events;

create function analytics.rebuild_rollups()
returns jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    perform pg_advisory_xact_lock(analytics.rollup_lock_key());
    -- waits for batches that are queueing (they do not take the rollup lock) and holds new
    -- ones until commit, so every event is either in core.events below or still queued after
    lock table ingest.deferred_batches, ingest.deferred_events in exclusive mode;
    delete from ingest.deferred_batches;
    delete from ingest.deferred_events;
    return analytics.rebuild_rollups_from_events();
end
$$;

revoke all on function analytics.apply_batch(bigint) from public;
revoke all on function analytics.rebuild_rollups() from public;
revoke all on function analytics.apply_deferred() from public;
grant execute on function analytics.apply_deferred() to pipeline_ingest;

reset role;

-- migrate:down
set local role pipeline_owner;
-- nothing queued is lost: fold it into the rollups first
select analytics.apply_deferred();
drop function analytics.rebuild_rollups();
alter function analytics.rebuild_rollups_from_events() rename to rebuild_rollups;
drop function analytics.apply_batch(bigint);
alter function analytics.apply_batch_now(bigint) rename to apply_batch;
drop function if exists analytics.apply_deferred();
drop table if exists ingest.deferred_events;
drop table if exists ingest.deferred_batches;
reset role;
