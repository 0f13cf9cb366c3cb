-- analytics.funnel: per UTC day, the sessions that had a view, an add_to_cart, a purchase on
-- that day (each step counted on its own), and the step rates; days without events between the
-- first and the last day are zero-filled.
-- applied on every make up: dropping first lets a new version change the columns
drop view if exists analytics.funnel;
create view analytics.funnel as
with calendar as (
    select d::date as day
    from generate_series(
        (select min(day) from analytics.rollup_daily),
        (select max(day) from analytics.rollup_daily),
        interval '1 day'
    ) as d
),

daily as (
    select c.day, coalesce(r.view_sessions, 0) as view_sessions,
        coalesce(r.cart_sessions, 0) as cart_sessions,
        coalesce(r.purchase_sessions, 0) as purchase_sessions
    from calendar as c
    left join analytics.rollup_daily as r on r.day = c.day
),

final as (
    select
        day,
        view_sessions,
        cart_sessions as add_to_cart_sessions,
        purchase_sessions,
        round(cart_sessions::numeric / nullif(view_sessions, 0), 6) as view_to_cart_rate,
        round(purchase_sessions::numeric / nullif(cart_sessions, 0), 6) as cart_to_purchase_rate,
        round(purchase_sessions::numeric / nullif(view_sessions, 0), 6) as view_to_purchase_rate
    from daily
)

select * from final;

comment on view analytics.funnel is
'Per UTC day (zero-filled): sessions with a view, with an add_to_cart, with a purchase that day; step rates cart/view, purchase/cart and purchase/view.';

grant select on analytics.funnel to pipeline_analyst;
