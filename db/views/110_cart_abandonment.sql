-- analytics.cart_abandonment: per UTC day and category, carts (sessions that added something of
-- the category to their cart that day), the abandoned ones (no purchase of the category in that
-- session that day), the rate, and the abandoned value (price x quantity of their add_to_cart
-- events) in the reporting currency.
drop view if exists analytics.cart_abandonment;
create view analytics.cart_abandonment as
with carts as (
    select
        day,
        session_id,
        category,
        sum(cart_adds) as cart_adds,
        sum(purchases) as purchases,
        sum(core.to_reporting(cart_value, currency, day)) as cart_value
    from analytics.kpi_session_categories
    group by day, session_id, category
    having sum(cart_adds) > 0
)

select
    day,
    category,
    count(*) as carts,
    count(*) filter (where purchases = 0) as abandoned_carts,
    round((count(*) filter (where purchases = 0))::numeric / count(*), 6) as abandonment_rate,
    round(coalesce(sum(cart_value) filter (where purchases = 0), 0), 2) as abandoned_value
from carts
group by day, category;
