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

-- analytics.apply_batch, apply_deferred and rebuild_rollups (db/functions/analytics/) use
-- these tables.

reset role;

-- migrate:down
set local role pipeline_owner;
-- nothing queued is lost: fold it into the rollups first (when the functions are there)
do $$
begin
    if to_regprocedure('analytics.apply_deferred()') is not null then
        perform analytics.apply_deferred();
    end if;
end
$$;
drop table if exists ingest.deferred_events;
drop table if exists ingest.deferred_batches;
reset role;
