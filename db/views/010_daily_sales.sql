-- analytics.daily_sales: one row per UTC day from the first to the last day with events, days
-- without events zero-filled (contract section 5; docs/metrics.md).
-- Purchases only for orders/units/revenue; visitor = user_id, or 'guest:' || session_id.
-- Money (revenue, aov, revenue_per_visitor) is in reporting_currency, each currency converted
-- at the day's rate when read (core.to_reporting), so a rate loaded late corrects it at once.
-- applied on every make up: dropping first lets a new version change the columns
drop view if exists analytics.daily_sales;
create view analytics.daily_sales as
with calendar as (
    select d::date as day
    from generate_series(
        (select min(day) from analytics.rollup_daily),
        (select max(day) from analytics.rollup_daily),
        interval '1 day'
    ) as d
),

daily as (
    select c.day, coalesce(r.events, 0) as events, coalesce(r.orders, 0) as orders,
        coalesce(r.units, 0) as units, coalesce(r.visitors, 0) as visitors,
        coalesce(r.buyers, 0) as buyers
    from calendar as c
    left join analytics.rollup_daily as r on r.day = c.day
),

per_currency as (
    select (hour at time zone 'UTC')::date as day, currency, sum(revenue) as revenue
    from analytics.rollup_revenue
    group by 1, 2
),

money as (
    select day, round(sum(core.to_reporting(revenue, currency, day)), 2) as revenue
    from per_currency
    group by day
),

final as (
    select
        d.day,
        d.orders,
        d.units,
        coalesce(m.revenue, 0.00) as revenue,
        round(coalesce(m.revenue, 0.00) / nullif(d.orders, 0), 2) as aov,
        d.buyers,
        d.visitors,
        round(d.buyers::numeric / nullif(d.visitors, 0), 6) as buyer_rate,
        round(coalesce(m.revenue, 0.00) / nullif(d.visitors, 0), 2) as revenue_per_visitor,
        d.events,
        core.reporting_currency() as reporting_currency
    from daily as d
    left join money as m on m.day = d.day
)

select * from final;

comment on view analytics.daily_sales is
'Per UTC day (zero-filled between the first and the last day with events): orders, units, revenue (in reporting_currency, each currency at the day''s rate), aov = revenue/orders, buyers (distinct purchasing users), visitors (distinct user_id or guest session), buyer_rate = buyers/visitors (not session conversion: see docs/metrics.md), revenue_per_visitor. Rates NULL when the denominator is 0.';

grant select on analytics.daily_sales to pipeline_analyst;
