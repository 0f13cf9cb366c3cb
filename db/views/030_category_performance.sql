-- analytics.category_performance: one row per category with any event, all time.
-- applied on every make up: dropping first lets a new version change the columns
drop view if exists analytics.category_performance;
create view analytics.category_performance as
with categories as (
    select category, events, views, add_to_carts, orders, units, revenue
    from analytics.rollup_categories
),

final as (
    select
        category,
        views,
        add_to_carts,
        orders,
        units,
        revenue,
        round(revenue / nullif(units, 0), 2) as avg_selling_price,
        round(orders::numeric / nullif(views, 0), 6) as view_to_purchase_rate,
        events
    from categories
)

select * from final;

comment on view analytics.category_performance is
'Per category: views, add_to_carts, orders, units, revenue, avg_selling_price = revenue/units, view_to_purchase_rate = orders/views.';

grant select on analytics.category_performance to pipeline_analyst;
