-- analytics.customer_segment_history: per UTC day (from the first purchase to the latest day
-- with events) and segment, the customers in it as of the end of that day and their lifetime
-- value (historical_ltv: revenue up to that day, rounded to the cent per customer) in the
-- reporting currency; days without a purchase keep the segment moving (zero-filled calendar). A customer's segment as of a day comes from the purchases up
-- to that day (analytics.customer_segment, docs/analytics.md): recomputed when read, so
-- history is never stale and a late purchase rewrites the days after it. Cost: customers x days.
drop view if exists analytics.customer_segment_history;
create view analytics.customer_segment_history as
with customer_days as (
    select
        user_id,
        day,
        sum(orders) as orders,
        sum(core.to_reporting(revenue, currency, day)) as revenue
    from analytics.kpi_customer_days
    group by user_id, day
),

cumulative as (
    select
        user_id,
        day as last_purchase_day,
        min(day) over (partition by user_id) as first_purchase_day,
        lead(day) over (partition by user_id order by day) as next_purchase_day,
        (sum(orders) over (partition by user_id order by day))::bigint as orders,
        round(sum(revenue) over (partition by user_id order by day), 2) as ltv
    from customer_days
),

calendar as (
    select d::date as day
    from generate_series(
        (select min(day) from analytics.kpi_customer_days),
        (select max(day) from analytics.kpi_sessions),
        interval '1 day'
    ) as d
),

as_of as (
    select
        c.day,
        analytics.customer_segment(
            c.day - u.last_purchase_day, c.day - u.first_purchase_day, u.orders, u.ltv
        ) as segment,
        u.orders,
        u.ltv
    from calendar as c
    join cumulative as u
        on u.last_purchase_day <= c.day
        and (u.next_purchase_day is null or c.day < u.next_purchase_day)
)

select
    day,
    segment,
    count(*) as customers,
    sum(orders) as orders,
    round(sum(ltv), 2) as ltv,
    round(sum(ltv) / count(*), 2) as avg_ltv
from as_of
group by day, segment;
