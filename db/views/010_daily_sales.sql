-- analytics.daily_sales: one row per UTC day with at least one event (contract section 5).
-- Purchases only for orders/units/revenue; visitor = user_id, or 'guest:' || session_id.
-- applied on every make up: dropping first lets a new version change the columns
drop view if exists analytics.daily_sales;
create view analytics.daily_sales as
with daily as (
    select day, events, orders, units, revenue, visitors, buyers
    from analytics.rollup_daily
),

final as (
    select
        day,
        orders,
        units,
        revenue,
        round(revenue / nullif(orders, 0), 2) as aov,
        buyers,
        visitors,
        round(buyers::numeric / nullif(visitors, 0), 6) as conversion_rate,
        round(revenue / nullif(visitors, 0), 2) as revenue_per_visitor,
        events
    from daily
)

select * from final;

comment on view analytics.daily_sales is
'Per UTC day: orders, units, revenue, aov = revenue/orders, buyers (distinct purchasing users), visitors (distinct user_id or guest session), conversion_rate = buyers/visitors, revenue_per_visitor. Rates NULL when the denominator is 0.';

grant select on analytics.daily_sales to pipeline_analyst;
