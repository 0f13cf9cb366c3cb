-- migrate:up
set local role pipeline_owner;

-- Incremental rollups behind the analytics views (db/views). analytics.apply_batch adds each
-- batch's new events to them inside the batch transaction; analytics.rebuild_rollups() rebuilds
-- them from core.events. Counters are summed per key; distinct counts (visitors, buyers,
-- sessions) come from membership tables: what a batch adds to them is what it adds to the
-- count. No email, email hash or raw dead-letter value is copied here.

-- Per UTC day: events, purchase totals, distinct visitors/buyers, sessions per funnel step.
create table analytics.rollup_daily (
    day date primary key,
    events bigint not null,
    orders bigint not null,
    units bigint not null,
    revenue numeric(24, 2) not null,
    visitors bigint not null,
    buyers bigint not null,
    view_sessions bigint not null,
    cart_sessions bigint not null,
    purchase_sessions bigint not null,
    last_event_at timestamptz not null
);

-- Per UTC hour and event type: events, distinct visitors, purchase revenue.
create table analytics.rollup_hourly (
    hour timestamptz not null,
    event_type text not null,
    events bigint not null,
    visitors bigint not null,
    revenue numeric(24, 2) not null,
    primary key (hour, event_type)
);

-- Per category, all time.
create table analytics.rollup_categories (
    category text primary key,
    events bigint not null,
    views bigint not null,
    add_to_carts bigint not null,
    orders bigint not null,
    units bigint not null,
    revenue numeric(24, 2) not null
);

-- Per product, all time.
create table analytics.rollup_products (
    product_id bigint primary key,
    events bigint not null,
    views bigint not null,
    orders bigint not null,
    units bigint not null,
    revenue numeric(24, 2) not null
);

-- Per purchasing user: orders, revenue, first and last purchase.
create table analytics.rollup_customers (
    user_id bigint primary key,
    orders bigint not null,
    revenue numeric(24, 2) not null,
    first_purchase_at timestamptz not null,
    last_purchase_at timestamptz not null
);

-- Membership: each visitor (user_id, or 'guest:' || session_id) seen on a UTC day, with one
-- 24-bit mask per event type of the hours it was seen in. A new row is a new visitor of the
-- day, a first purchase bit a new buyer, a newly set bit a new visitor of (hour, event type).
create table analytics.seen_day_visitors (
    day date not null,
    visitor text not null,
    view_hours int not null,
    search_hours int not null,
    add_to_cart_hours int not null,
    remove_from_cart_hours int not null,
    wishlist_hours int not null,
    purchase_hours int not null,
    primary key (day, visitor)
);

-- Membership: which funnel steps each session reached on each UTC day.
create table analytics.seen_day_sessions (
    day date not null,
    session_id text not null,
    has_view boolean not null,
    has_cart boolean not null,
    has_purchase boolean not null,
    primary key (day, session_id)
);

-- Per UTC hour of ingestion (batch finished_at): batches and rows by outcome.
create table analytics.rollup_quality_hourly (
    hour timestamptz primary key,
    batches bigint not null,
    files bigint not null,
    rows bigint not null,
    valid bigint not null,
    invalid bigint not null,
    duplicates bigint not null,
    late bigint not null
);

-- Per UTC hour of ingestion and reason code: dead-lettered rows carrying that reason.
create table analytics.rollup_quality_reasons (
    hour timestamptz not null,
    reason text not null,
    rows bigint not null,
    primary key (hour, reason)
);

-- What the ingester last saw in its inbox (the database cannot look at the directory).
create table analytics.inbox_status (
    only_row boolean primary key default true check (only_row),
    files_waiting int not null check (files_waiting >= 0),
    reported_at timestamptz not null
);

-- The functions that maintain these rollups live in db/functions/analytics/.

grant usage on schema analytics to pipeline_ingest;

-- the analyst reads everything in analytics, now and later (views are added by db/views)
grant select on all tables in schema analytics to pipeline_analyst;
alter default privileges in schema analytics grant select on tables to pipeline_analyst;

reset role;

-- migrate:down
set local role pipeline_owner;
alter default privileges in schema analytics revoke select on tables from pipeline_analyst;
revoke usage on schema analytics from pipeline_ingest;

-- the views in db/views read these tables: they go too (make up re-creates them)
drop table if exists analytics.inbox_status cascade;
drop table if exists analytics.rollup_quality_reasons cascade;
drop table if exists analytics.rollup_quality_hourly cascade;
drop table if exists analytics.seen_day_sessions cascade;
drop table if exists analytics.seen_day_visitors cascade;
drop table if exists analytics.rollup_customers cascade;
drop table if exists analytics.rollup_products cascade;
drop table if exists analytics.rollup_categories cascade;
drop table if exists analytics.rollup_hourly cascade;
drop table if exists analytics.rollup_daily cascade;
reset role;
