-- analytics.funnel: per UTC day, the sessions that had a view, an add_to_cart, a purchase on
-- that day (each step counted on its own), and the step rates.
-- applied on every make up: dropping first lets a new version change the columns
drop view if exists analytics.funnel;
create view analytics.funnel as
with daily as (
    select day, view_sessions, cart_sessions, purchase_sessions
    from analytics.rollup_daily
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
'Per UTC day: sessions with a view, with an add_to_cart, with a purchase that day; step rates cart/view, purchase/cart and purchase/view.';

grant select on analytics.funnel to pipeline_analyst;
