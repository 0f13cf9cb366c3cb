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

-- Called inside every batch transaction with the batch's new events in pg_temp.batch_events:
-- applies them to the rollups now, or queues them when the batch asked for deferred analytics.
create or replace function analytics.apply_batch(p_batch_id bigint)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    if current_setting('pipeline.analytics', true) = 'deferred' then
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
        return;
    end if;
    perform pg_advisory_xact_lock(analytics.rollup_lock_key());
    if not analytics.apply_quality(p_batch_id) then
        -- a replay: it changed the metrics and dead letter of earlier batches
        perform analytics.rebuild_quality();
    end if;
    perform analytics.apply_events();
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

-- Rebuilds every rollup from core.events, quality.batch_metrics and quality.dead_letter, with
-- the same code the batches use. Waits for batches in flight; blocks new ones until commit.
-- What is queued for deferred analytics is dropped: the rebuild counts those events already.
create or replace function analytics.rebuild_rollups()
returns jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
set work_mem = '256MB'
as $$
declare
    v_started timestamptz := clock_timestamp();
    v_events bigint;
begin
    perform pg_advisory_xact_lock(analytics.rollup_lock_key());
    -- waits for batches that are queueing (they do not take the rollup lock) and holds new
    -- ones until commit, so every event is either in core.events below or still queued after
    lock table ingest.deferred_batches, ingest.deferred_events in exclusive mode;
    delete from ingest.deferred_batches;
    delete from ingest.deferred_events;
    truncate analytics.rollup_daily, analytics.rollup_hourly, analytics.rollup_categories,
        analytics.rollup_products, analytics.rollup_customers, analytics.seen_day_visitors,
        analytics.seen_day_sessions;
    perform analytics.rebuild_quality();

    if to_regclass('pg_temp.batch_events') is not null then
        drop view pg_temp.batch_events;
    end if;
    create temp view batch_events as select * from core.events;
    perform analytics.apply_events();
    drop view pg_temp.batch_events;

    select coalesce(sum(events), 0) into v_events from analytics.rollup_daily;
    return jsonb_build_object(
        'events', v_events,
        'ms', round(extract(epoch from clock_timestamp() - v_started)::numeric * 1000, 1)
    );
end
$$;

revoke all on function analytics.apply_deferred() from public;
grant execute on function analytics.apply_deferred() to pipeline_ingest;

reset role;

-- migrate:down
set local role pipeline_owner;
-- nothing queued is lost: fold it into the rollups first
select analytics.apply_deferred();
create or replace function analytics.apply_batch(p_batch_id bigint)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    perform pg_advisory_xact_lock(analytics.rollup_lock_key());
    if not analytics.apply_quality(p_batch_id) then
        -- a replay: it changed the metrics and dead letter of earlier batches
        perform analytics.rebuild_quality();
    end if;
    perform analytics.apply_events();
end
$$;

-- Rebuilds every rollup from core.events, quality.batch_metrics and quality.dead_letter, with
-- the same code the batches use. Waits for batches in flight; blocks new ones until commit.
create or replace function analytics.rebuild_rollups()
returns jsonb
language plpgsql
set search_path = pg_catalog, pg_temp
set work_mem = '256MB'
as $$
declare
    v_started timestamptz := clock_timestamp();
    v_events bigint;
begin
    perform pg_advisory_xact_lock(analytics.rollup_lock_key());
    truncate analytics.rollup_daily, analytics.rollup_hourly, analytics.rollup_categories,
        analytics.rollup_products, analytics.rollup_customers, analytics.seen_day_visitors,
        analytics.seen_day_sessions;
    perform analytics.rebuild_quality();

    if to_regclass('pg_temp.batch_events') is not null then
        drop view pg_temp.batch_events;
    end if;
    create temp view batch_events as select * from core.events;
    perform analytics.apply_events();
    drop view pg_temp.batch_events;

    select coalesce(sum(events), 0) into v_events from analytics.rollup_daily;
    return jsonb_build_object(
        'events', v_events,
        'ms', round(extract(epoch from clock_timestamp() - v_started)::numeric * 1000, 1)
    );
end
$$;

drop function if exists analytics.apply_deferred();
drop table if exists ingest.deferred_events;
drop table if exists ingest.deferred_batches;
reset role;
