-- migrate:up
-- Retention: how long each kind of data is kept (deno task maintain and the ingester apply it
-- through core.apply_retention, db/functions/core/retention.sql). keep null = forever.
-- Change a row with SQL, e.g.
--   update core.retention set keep = interval '30 days' where kind = 'dead_letter';
set local role pipeline_owner;

create table core.retention (
    kind text primary key,
    keep interval check (keep is null or keep > interval '0'),
    action text not null,
    note text not null,
    check (
        (kind = 'events' and action in ('drop', 'detach'))
        or (kind = 'partitions_ahead' and action = 'create' and keep is not null)
        or (kind not in ('events', 'partitions_ahead') and action = 'delete')
    )
);

insert into core.retention (kind, keep, action, note) values
    ('events', interval '25 months', 'drop',
        'monthly partitions of core.events whose whole month is older than this: drop (or detach: kept as a standalone table for archiving); their ids leave the dedupe guard'),
    ('partitions_ahead', interval '3 months', 'create',
        'partitions of core.events created ahead, from the current month on'),
    ('dead_letter', interval '90 days', 'delete', 'quality.dead_letter rows by created_at'),
    ('batch_metrics', interval '400 days', 'delete',
        'quality.batch_metrics, quality.alerts and quality.replays rows by finish time'),
    ('ledger', interval '400 days', 'delete',
        'ingest.files rows by finished_at: a file older than this is no longer recognised as a re-send (its rows still dedupe while their ids are kept)'),
    ('analytics_membership', interval '400 days', 'delete',
        'analytics.seen_day_visitors and seen_day_sessions rows by day (the rollups themselves are kept)'),
    ('processed_files', interval '30 days', 'delete', 'files in DATA_DIR/processed by modification time'),
    ('rejected_files', interval '90 days', 'delete', 'files in DATA_DIR/rejected by modification time');

-- the last runs of maintenance, for /metrics and troubleshooting
create table core.maintenance_runs (
    run_id bigint generated always as identity primary key,
    clock timestamptz not null,
    result jsonb not null,
    finished_at timestamptz not null default now()
);

revoke all on table core.retention, core.maintenance_runs from public;

reset role;

-- migrate:down
set local role pipeline_owner;
drop table if exists core.maintenance_runs cascade;
drop table if exists core.retention cascade;
reset role;
