-- analytics.category_performance: one row per category with any event, all time.
-- revenue and avg_selling_price in reporting_currency, each day's purchases at that day's rate.
-- applied on every make up: dropping first lets a new version change the columns
drop view if exists analytics.category_performance;
create view analytics.category_performance as
with categories as (
    select category, events, views, add_to_carts, orders, units
    from analytics.rollup_categories
),

money as (
    select category, round(sum(core.to_reporting(revenue, currency, day)), 2) as revenue
    from (
        select category, currency, (hour at time zone 'UTC')::date as day, sum(revenue) as revenue
        from analytics.rollup_revenue
        group by 1, 2, 3
    ) as c
    group by category
),

final as (
    select
        c.category,
        c.views,
        c.add_to_carts,
        c.orders,
        c.units,
        coalesce(m.revenue, 0.00) as revenue,
        round(coalesce(m.revenue, 0.00) / nullif(c.units, 0), 2) as avg_selling_price,
        round(c.orders::numeric / nullif(c.views, 0), 6) as orders_per_view,
        c.events,
        core.reporting_currency() as reporting_currency
    from categories as c
    left join money as m on m.category = c.category
)

select * from final;

comment on view analytics.category_performance is
'Per category: views, add_to_carts, orders, units, revenue (in reporting_currency, each day at its rate), avg_selling_price = revenue/units, orders_per_view = orders/views (purchase events per view event, not a session rate).';

grant select on analytics.category_performance to pipeline_analyst;
