-- migrate:up
-- Revenue keeps its currency: purchases are summed per UTC hour and currency (and per UTC day
-- and currency for customers), so the views convert them with core.to_reporting at each day's
-- rate when they are read. A rate loaded late corrects every figure at once, with no rebuild.
-- Filled by analytics.apply_events (db/functions/analytics/apply_events.sql); the older
-- unitless revenue columns of the other rollups are no longer read by any view.
set local role pipeline_owner;

-- Purchases per UTC hour, currency, product and category (a purchase always has both).
create table analytics.rollup_revenue (
    hour timestamptz not null,
    currency text not null,
    product_id bigint not null,
    category text not null,
    orders bigint not null,
    units bigint not null,
    revenue numeric(24, 2) not null,
    primary key (hour, currency, product_id, category)
);

-- Purchases per user, UTC day and currency.
create table analytics.rollup_customer_revenue (
    user_id bigint not null,
    day date not null,
    currency text not null,
    orders bigint not null,
    revenue numeric(24, 2) not null,
    primary key (user_id, day, currency)
);

-- The revenue of the rollups that exist already: rebuilt from core.events. Queued HTTP events
-- (deferred analytics) are in core.events already and would be counted twice when applied:
-- the queue must be empty.
do $$
begin
    if exists (select from ingest.deferred_events) then
        raise exception 'ingest.deferred_events holds queued HTTP events: their revenue would be counted twice'
            using hint = 'stop deno task serve (it applies the queue when it stops) or run deno task refresh, then migrate again';
    end if;
end
$$;
-- The revenue of the rollups that exist already: rebuilt from core.events.
insert into analytics.rollup_revenue
select
    date_bin('1 hour', event_time, timestamptz '2000-01-01 00:00:00+00'),
    currency, product_id, category, count(*), sum(quantity), sum(total_amount)
from core.events
where event_type = 'purchase'
group by 1, 2, 3, 4;

insert into analytics.rollup_customer_revenue
select user_id, (event_time at time zone 'UTC')::date, currency, count(*), sum(total_amount)
from core.events
where event_type = 'purchase' and user_id is not null
group by 1, 2, 3;

reset role;

-- migrate:down
set local role pipeline_owner;
drop table if exists analytics.rollup_customer_revenue;
drop table if exists analytics.rollup_revenue;
reset role;
