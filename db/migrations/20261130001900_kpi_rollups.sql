-- migrate:up
-- Rollups behind the growth KPI views (db/views/090_… to 140_…): traffic source and device
-- performance, session engagement, cart abandonment, customer segments, product affinity and
-- the hourly trend. analytics.apply_kpis() (db/functions/analytics/kpis.sql) adds each batch's
-- new events to them; analytics.rebuild_rollups() rebuilds them. Amounts stay in the currency
-- they were paid in, per UTC day: the views convert them with core.to_reporting when read.
set local role pipeline_owner;

-- Per UTC day and session: engagement and attribution. traffic_source and device are those of
-- the session's first event of the day (ties: the smaller source, then device); user_id is the
-- smallest user id seen in the session that day (null: a guest session).
create table analytics.kpi_sessions (
    day date not null,
    session_id text not null,
    user_id bigint,
    first_event_at timestamptz not null,
    last_event_at timestamptz not null,
    traffic_source text,
    device text,
    events bigint not null,
    searches bigint not null,
    cart_adds bigint not null,
    orders bigint not null,
    primary key (day, session_id)
);

-- Per UTC day, session and currency: purchase revenue (price x quantity).
create table analytics.kpi_session_revenue (
    day date not null,
    session_id text not null,
    currency text not null,
    revenue numeric(24, 2) not null,
    primary key (day, session_id, currency)
);

-- Per UTC day, session, category and currency: add_to_cart events and their value
-- (price x quantity), purchases. A cart is abandoned when the session put something of the
-- category in its cart that day and bought nothing of it that day.
create table analytics.kpi_session_categories (
    day date not null,
    session_id text not null,
    category text not null,
    currency text not null,
    cart_adds bigint not null,
    cart_value numeric(24, 2) not null,
    purchases bigint not null,
    primary key (day, session_id, category, currency)
);

-- Per purchasing user, UTC day and currency: orders and revenue (customer segments as of a day).
create table analytics.kpi_customer_days (
    user_id bigint not null,
    day date not null,
    currency text not null,
    orders bigint not null,
    revenue numeric(24, 2) not null,
    primary key (user_id, day, currency)
);

-- Baskets for product affinity: which products each session purchased (any day).
create table analytics.kpi_session_products (
    session_id text not null,
    product_id bigint not null,
    primary key (session_id, product_id)
);

-- Sessions that purchased each product, and the number of sessions with a purchase.
create table analytics.kpi_product_baskets (
    product_id bigint primary key,
    sessions bigint not null
);

create table analytics.kpi_basket_totals (
    only_row boolean primary key default true check (only_row),
    baskets bigint not null
);

-- Sessions that purchased both products (product_a < product_b).
create table analytics.kpi_product_pairs (
    product_a bigint not null,
    product_b bigint not null,
    sessions bigint not null,
    primary key (product_a, product_b),
    check (product_a < product_b)
);

-- Per UTC hour and currency: events, orders, units, revenue (hourly trend vs last week).
create table analytics.kpi_hourly (
    hour timestamptz not null,
    currency text not null,
    events bigint not null,
    orders bigint not null,
    units bigint not null,
    revenue numeric(24, 2) not null,
    primary key (hour, currency)
);

-- Deferred HTTP analytics: the queue also carries what these rollups read. Rows queued before
-- this migration would lack it: the queue must be empty (a stopping collector applies it).
do $$
begin
    if exists (select from ingest.deferred_events) then
        raise exception 'ingest.deferred_events holds queued HTTP events without the columns the KPI rollups need'
            using hint = 'stop deno task serve (it applies the queue when it stops) or run deno task refresh, then migrate again';
    end if;
end
$$;
alter table ingest.deferred_events
    add column price numeric(17, 2),
    add column currency text,
    add column device text,
    add column traffic_source text;

-- the analyst reads the rollups like the other analytics tables
grant select on analytics.kpi_sessions, analytics.kpi_session_revenue,
    analytics.kpi_session_categories, analytics.kpi_customer_days,
    analytics.kpi_session_products, analytics.kpi_product_baskets, analytics.kpi_basket_totals,
    analytics.kpi_product_pairs, analytics.kpi_hourly to pipeline_analyst;

reset role;

-- migrate:down
set local role pipeline_owner;
alter table ingest.deferred_events
    drop column if exists traffic_source,
    drop column if exists device,
    drop column if exists currency,
    drop column if exists price;
-- the views in db/views read these tables: they go too (make up re-creates them)
drop table if exists analytics.kpi_hourly cascade;
drop table if exists analytics.kpi_product_pairs cascade;
drop table if exists analytics.kpi_basket_totals cascade;
drop table if exists analytics.kpi_product_baskets cascade;
drop table if exists analytics.kpi_session_products cascade;
drop table if exists analytics.kpi_customer_days cascade;
drop table if exists analytics.kpi_session_categories cascade;
drop table if exists analytics.kpi_session_revenue cascade;
drop table if exists analytics.kpi_sessions cascade;
reset role;
