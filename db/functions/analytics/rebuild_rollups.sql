-- Rebuilding every rollup from the stored data (deno task refresh).
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- Rebuilds every rollup from core.events, quality.batch_metrics and quality.dead_letter, with
-- the same code the batches use (deno task refresh). Waits for batches in flight; blocks new
-- ones until commit. What is queued for deferred analytics is dropped: the rebuild counts
-- those events from core.events.
create function analytics.rebuild_rollups()
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
    truncate analytics.kpi_sessions, analytics.kpi_session_revenue,
        analytics.kpi_session_categories, analytics.kpi_customer_days,
        analytics.kpi_session_products, analytics.kpi_product_baskets, analytics.kpi_basket_totals,
        analytics.kpi_product_pairs, analytics.kpi_hourly, analytics.rollup_revenue,
        analytics.rollup_customer_revenue;
    perform analytics.rebuild_quality();

    drop view if exists pg_temp.batch_events;
    create temp view batch_events as select * from core.events;
    perform analytics.apply_events();
    drop view if exists pg_temp.batch_events;

    select coalesce(sum(events), 0) into v_events from analytics.rollup_daily;
    return jsonb_build_object(
        'events', v_events,
        'ms', round(extract(epoch from clock_timestamp() - v_started)::numeric * 1000, 1)
    );
end
$$;

revoke all on function analytics.rebuild_rollups() from public;
