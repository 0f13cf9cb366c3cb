-- migrate:up
-- The lake (docs/lake.md): closed UTC days exported to Apache Iceberg tables by deno task
-- export. lake.tables says what is exported, lake.exports is the ledger (one row per table and
-- day: the Iceberg snapshot that holds it, its row count and checksum), lake.settings when a day
-- is closed and whether export is enabled (retention then keeps what is not in the ledger).
-- The Iceberg SQL catalog (PyIceberg's, also read by Spark's and Trino's JDBC catalogs) lives in
-- its own schema, lake_catalog, created here so that the catalog owner is known.
set local role pipeline_owner;

create schema lake;
create schema lake_catalog;

create table lake.settings (
    only_row boolean primary key default true check (only_row),
    is_enabled boolean not null default false,
    close_after interval not null default interval '1 day' check (close_after >= interval '0'),
    updated_at timestamptz not null default now()
);
insert into lake.settings (only_row) values (true);

create table lake.tables (
    table_name text primary key check (table_name ~ '^[a-z][a-z0-9_]*$'),
    layer text not null check (layer in ('bronze', 'silver', 'gold')),
    source text not null check (source ~ '^[a-z_]+\.[a-z_]+$'),
    -- a timestamptz column of source whose UTC day is its day column: days are read by a range
    -- on it (so an index or partition bound on it is used); null: by the day column
    range_column text check (range_column ~ '^[a-z_]+$'),
    note text not null
);

insert into lake.tables (table_name, layer, source, range_column, note) values
    ('events', 'silver', 'lake.silver_events', 'event_time',
        'core.events typed, one row per stored event; e-mail as its keyed hash only; extension columns of the schema registry as columns, extra as JSON text'),
    ('dead_letter', 'bronze', 'lake.bronze_dead_letter', 'created_at',
        'quality.dead_letter by the UTC day it was dead-lettered: raw line (e-mail addresses removed), reasons, source, line, the fields as sent (no e-mail)'),
    ('daily_sales', 'gold', 'analytics.daily_sales', null, 'analytics.daily_sales per UTC day'),
    ('funnel', 'gold', 'analytics.funnel', null, 'analytics.funnel per UTC day'),
    ('traffic_source_performance', 'gold', 'analytics.traffic_source_performance', null,
        'analytics.traffic_source_performance per UTC day and source'),
    ('channel_performance', 'gold', 'analytics.channel_performance', null,
        'analytics.channel_performance per UTC day, channel and value'),
    ('customer_segment_history', 'gold', 'analytics.customer_segment_history', null,
        'analytics.customer_segment_history per UTC day and segment');

-- The ledger: what the lake holds. A row is written after its snapshot is committed, so a
-- day missing here (or with another checksum) is exported again, overwriting its partition.
create table lake.exports (
    table_name text not null references lake.tables (table_name),
    day date not null,
    snapshot_id bigint not null,
    row_count bigint not null check (row_count >= 0),
    checksum numeric not null,
    exported_at timestamptz not null default now(),
    primary key (table_name, day)
);

-- one row per export run, for troubleshooting and the bench
create table lake.export_runs (
    run_id bigint generated always as identity primary key,
    started_at timestamptz not null,
    finished_at timestamptz not null,
    result jsonb not null
);

revoke all on table lake.settings, lake.tables, lake.exports, lake.export_runs from public;

reset role;

-- migrate:down
set local role pipeline_owner;
drop schema if exists lake_catalog cascade;
drop schema if exists lake cascade;
reset role;
