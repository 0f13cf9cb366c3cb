-- migrate:up
set local role pipeline_owner;

-- The ledger: one row per distinct file content (SHA-256), whatever its name.
create table ingest.files (
    sha256 text primary key check (sha256 ~ '^[0-9a-f]{64}$'),
    file_name text not null,
    bytes bigint not null check (bytes >= 0),
    status text not null check (status in ('loading', 'done', 'empty', 'rejected')),
    reason text,
    batch_id bigint,
    schema_version int check (schema_version in (1, 2)),
    unknown_columns text[],
    received_at timestamptz not null default now(),
    finished_at timestamptz
);

create sequence ingest.batch_ids as bigint;

-- Valid events, typed and constrained; partitions (monthly) are created on demand.
create table core.events (
    event_id uuid not null,
    event_time timestamptz not null,
    event_type text not null check (
        event_type in ('view', 'search', 'add_to_cart', 'remove_from_cart', 'wishlist', 'purchase')
    ),
    user_id bigint check (user_id > 0),
    session_id text not null check (length(session_id) between 1 and 64),
    product_id bigint check (product_id > 0),
    category text check (
        category in (
            'electronics', 'clothing', 'home_garden', 'sports', 'books', 'beauty', 'toys', 'grocery'
        )
    ),
    price numeric(17, 2) check (price >= 0),
    quantity int not null,
    total_amount numeric(20, 2),
    currency text not null check (currency in ('USD', 'EUR', 'GBP')),
    device text check (device in ('desktop', 'mobile', 'tablet')),
    traffic_source text check (
        traffic_source in ('direct', 'search', 'social', 'email', 'ads', 'referral')
    ),
    payment_method text check (
        payment_method in ('card', 'paypal', 'apple_pay', 'google_pay', 'bank_transfer')
    ),
    search_query text check (length(search_query) <= 200),
    email_hash bytea,
    is_late boolean not null,
    batch_id bigint not null,
    line_no bigint not null,
    ingested_at timestamptz not null
) partition by range (event_time);

-- Time-range reads (dashboards, the last hour) without a btree to maintain on every insert:
-- events arrive roughly in time order, so block ranges summarise well.
create index events_event_time_brin on core.events using brin (event_time);

-- The dedupe guard: core.events is partitioned by time, so it cannot hold a unique index on
-- event_id alone. Every stored event has exactly one row here, inserted in the same statement
-- order (insert ... on conflict do nothing returning) that decides what goes into core.events.
create table core.event_ids (
    event_id uuid primary key,
    payload_hash bigint not null,
    batch_id bigint not null,
    line_no bigint not null
);

create table quality.dead_letter (
    dead_letter_id bigint generated always as identity primary key,
    batch_id bigint not null,
    source text not null,
    line_no bigint,
    reasons text[] not null check (cardinality(reasons) > 0),
    raw_line text,
    event_id text,
    event_time text,
    event_type text,
    user_id text,
    session_id text,
    product_id text,
    category text,
    price text,
    quantity text,
    currency text,
    device text,
    traffic_source text,
    payment_method text,
    search_query text,
    user_email text,
    schema_version int not null default 2,
    raw_bytes bytea,
    created_at timestamptz not null default now(),
    replayed_at timestamptz,
    replay_count int not null default 0
);
create index dead_letter_batch_id_idx on quality.dead_letter (batch_id);

create table quality.batch_metrics (
    batch_id bigint primary key,
    source_kind text not null check (source_kind in ('file', 'http', 'replay')),
    source_name text not null,
    sha256 text,
    rows bigint not null,
    valid bigint not null,
    invalid bigint not null,
    duplicates bigint not null,
    late bigint not null,
    validity_rate numeric,
    reason_counts jsonb not null default '{}',
    bytes bigint,
    copy_ms numeric,
    process_ms numeric,
    started_at timestamptz not null,
    finished_at timestamptz not null,
    check (rows = valid + invalid + duplicates)
);
create index batch_metrics_finished_at_idx on quality.batch_metrics (finished_at);

create table quality.replays (
    replay_id bigint primary key,
    reasons text[],
    source text,
    rows bigint not null,
    moved bigint not null,
    duplicates bigint not null,
    still_invalid bigint not null,
    started_at timestamptz not null,
    finished_at timestamptz not null
);

create table quality.alerts (
    alert_id bigint generated always as identity primary key,
    batch_id bigint not null,
    kind text not null,
    message text not null,
    validity_rate numeric,
    threshold numeric,
    created_at timestamptz not null default now(),
    resolved_at timestamptz
);

reset role;

-- migrate:down
set local role pipeline_owner;
-- cascade: functions in db/functions whose SQL bodies read these tables go too (migrate
-- re-creates them)
drop table if exists quality.alerts cascade;
drop table if exists quality.replays cascade;
drop table if exists quality.batch_metrics cascade;
drop table if exists quality.dead_letter cascade;
drop table if exists core.event_ids cascade;
drop table if exists core.events cascade;
drop sequence if exists ingest.batch_ids cascade;
drop table if exists ingest.files cascade;
reset role;
