-- analytics.product_performance: one row per product with any event, all time; revenue_rank
-- 1 = highest revenue, ties share a rank (rank(), so the next rank is skipped). revenue in
-- reporting_currency, each day's purchases at that day's rate.
-- applied on every make up: dropping first lets a new version change the columns
drop view if exists analytics.product_performance;
create view analytics.product_performance as
with products as (
    select product_id, events, views, orders, units
    from analytics.rollup_products
),

money as (
    select product_id, round(sum(core.to_reporting(revenue, currency, day)), 2) as revenue
    from (
        select product_id, currency, (hour at time zone 'UTC')::date as day,
            sum(revenue) as revenue
        from analytics.rollup_revenue
        group by 1, 2, 3
    ) as c
    group by product_id
),

final as (
    select
        p.product_id,
        p.views,
        p.orders,
        p.units,
        coalesce(m.revenue, 0.00) as revenue,
        round(p.orders::numeric / nullif(p.views, 0), 6) as orders_per_view,
        rank() over (order by coalesce(m.revenue, 0.00) desc) as revenue_rank,
        p.events,
        core.reporting_currency() as reporting_currency
    from products as p
    left join money as m on m.product_id = p.product_id
)

select * from final;

comment on view analytics.product_performance is
'Per product: views, orders, units, revenue (in reporting_currency, each day at its rate), orders_per_view = orders/views (purchase events per view event), revenue_rank (1 = highest, ties share a rank).';

grant select on analytics.product_performance to pipeline_analyst;
