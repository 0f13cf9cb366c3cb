-- analytics.product_performance: one row per product with any event, all time; revenue_rank
-- 1 = highest revenue, ties share a rank (rank(), so the next rank is skipped).
-- applied on every make up: dropping first lets a new version change the columns
drop view if exists analytics.product_performance;
create view analytics.product_performance as
with products as (
    select product_id, events, views, orders, units, revenue
    from analytics.rollup_products
),

final as (
    select
        product_id,
        views,
        orders,
        units,
        revenue,
        round(orders::numeric / nullif(views, 0), 6) as conversion,
        rank() over (order by revenue desc) as revenue_rank,
        events
    from products
)

select * from final;

comment on view analytics.product_performance is
'Per product: views, orders, units, revenue, conversion = orders/views, revenue_rank (1 = highest, ties share a rank).';

grant select on analytics.product_performance to pipeline_analyst;
