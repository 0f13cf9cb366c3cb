-- The event rollups behind the analytics views (db/views), maintained incrementally.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- Adds the events in pg_temp.batch_events to every event rollup in one statement (three
-- aggregations of the batch, no temp tables: small HTTP batches stay cheap). Callers hold the
-- rollup lock, so whatever a membership table lacks is new to it.
create function analytics.apply_events()
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    if to_regclass('pg_temp.batch_events') is null then
        return;
    end if;

    with events as not materialized (
        select
            event_time,
            event_type,
            user_id,
            session_id,
            product_id,
            category,
            quantity,
            total_amount,
            currency,
            -- date_bin from a UTC midnight gives the UTC hour and day, far cheaper per row than
            -- a time zone conversion; each aggregation evaluates only what it uses
            date_bin('1 hour', event_time, timestamptz '2000-01-01 00:00:00+00') as hour_start,
            date_bin('1 day', event_time, timestamptz '2000-01-01 00:00:00+00') as day_start
        from pg_temp.batch_events
    ),

    -- aggregation 1: counters per (UTC hour, event type, product, category)
    grain as materialized (
        select
            g.*,
            date_bin('1 day', g.hour, timestamptz '2000-01-01 00:00:00+00') as day_start,
            (g.hour at time zone 'UTC')::date as day
        from (
            select
                hour_start as hour,
                event_type,
                product_id,
                category,
                count(*) as events,
                coalesce(sum(quantity) filter (where event_type = 'purchase'), 0) as units,
                -- typed: on Citus an INSERT ... SELECT over core.events (the rebuild) writes
                -- into the rollups without the column's numeric(24, 2), storing 0 for 0.00
                coalesce(sum(total_amount), 0)::numeric(24, 2) as revenue,
                max(event_time) as last_event_at
            from events
            group by hour_start, event_type, product_id, category
        ) as g
    ),

    -- aggregation 2: per (UTC day, visitor) a 24-bit mask of hours per event type, and the
    -- purchases; visitor = user_id, or 'guest:' || session_id for guests
    visitor_days as materialized (
        select
            (day_start at time zone 'UTC')::date as day,
            coalesce(user_id::text, 'guest:' || guest_session) as visitor,
            user_id,
            coalesce(bit_or(hour_bit) filter (where event_type = 'view'), 0) as view_hours,
            coalesce(bit_or(hour_bit) filter (where event_type = 'search'), 0) as search_hours,
            coalesce(bit_or(hour_bit) filter (where event_type = 'add_to_cart'), 0)
                as add_to_cart_hours,
            coalesce(bit_or(hour_bit) filter (where event_type = 'remove_from_cart'), 0)
                as remove_from_cart_hours,
            coalesce(bit_or(hour_bit) filter (where event_type = 'wishlist'), 0)
                as wishlist_hours,
            coalesce(bit_or(hour_bit) filter (where event_type = 'purchase'), 0)
                as purchase_hours,
            count(*) filter (where event_type = 'purchase') as orders,
            coalesce(sum(total_amount), 0)::numeric(24, 2) as revenue,
            min(event_time) filter (where event_type = 'purchase') as first_purchase_at,
            max(event_time) filter (where event_type = 'purchase') as last_purchase_at
        from (
            select
                day_start,
                user_id,
                case when user_id is null then session_id end as guest_session,
                1 << date_part('hour', event_time - day_start)::int as hour_bit,
                event_type,
                total_amount,
                event_time
            from events
        ) as e
        group by day_start, user_id, guest_session
    ),

    -- what is new: the visitor on that day, a first purchase that day, hours per event type
    visitor_news as materialized (
        select
            b.*,
            s.day is null as is_new,
            b.purchase_hours <> 0 and coalesce(s.purchase_hours, 0) = 0 as is_new_buyer,
            b.view_hours & ~coalesce(s.view_hours, 0) as view_new,
            b.search_hours & ~coalesce(s.search_hours, 0) as search_new,
            b.add_to_cart_hours & ~coalesce(s.add_to_cart_hours, 0) as add_to_cart_new,
            b.remove_from_cart_hours & ~coalesce(s.remove_from_cart_hours, 0)
                as remove_from_cart_new,
            b.wishlist_hours & ~coalesce(s.wishlist_hours, 0) as wishlist_new,
            b.purchase_hours & ~coalesce(s.purchase_hours, 0) as purchase_new
        from visitor_days as b
        -- one index probe per visitor of the batch. A join reads every member of the batch's
        -- days, each batch again, and the day only grows (docs/measurements.md). LIMIT 1 (the key is unique) keeps the
        -- planner from turning the probes back into that join.
        left join lateral (
            select m.day, m.view_hours, m.search_hours, m.add_to_cart_hours,
                m.remove_from_cart_hours, m.wishlist_hours, m.purchase_hours
            from analytics.seen_day_visitors as m
            where m.day = b.day and m.visitor = b.visitor
            limit 1
        ) as s on true
    ),

    -- aggregation 3, funnel: a session counts for a step the first time it reaches it that day
    session_steps as (
        select
            (day_start at time zone 'UTC')::date as day,
            session_id,
            bool_or(event_type = 'view') as has_view,
            bool_or(event_type = 'add_to_cart') as has_cart,
            bool_or(event_type = 'purchase') as has_purchase
        from events
        where event_type in ('view', 'add_to_cart', 'purchase')
        group by day_start, session_id
    ),

    session_news as materialized (
        select
            b.day,
            b.session_id,
            b.has_view,
            b.has_cart,
            b.has_purchase,
            s.day is null as is_new,
            b.has_view and not coalesce(s.has_view, false) as view_reached,
            b.has_cart and not coalesce(s.has_cart, false) as cart_reached,
            b.has_purchase and not coalesce(s.has_purchase, false) as purchase_reached
        from session_steps as b
        -- index probes, as for the visitors (docs/measurements.md)
        left join lateral (
            select m.day, m.has_view, m.has_cart, m.has_purchase
            from analytics.seen_day_sessions as m
            where m.day = b.day and m.session_id = b.session_id
            limit 1
        ) as s on true
    ),

    inserted_visitors as (
        insert into analytics.seen_day_visitors (
            day, visitor, view_hours, search_hours, add_to_cart_hours, remove_from_cart_hours,
            wishlist_hours, purchase_hours
        )
        select
            day, visitor, view_hours, search_hours, add_to_cart_hours, remove_from_cart_hours,
            wishlist_hours, purchase_hours
        from visitor_news
        where is_new
        order by day, visitor
    ),

    updated_visitors as (
        update analytics.seen_day_visitors as s
        set view_hours = s.view_hours | n.view_new,
            search_hours = s.search_hours | n.search_new,
            add_to_cart_hours = s.add_to_cart_hours | n.add_to_cart_new,
            remove_from_cart_hours = s.remove_from_cart_hours | n.remove_from_cart_new,
            wishlist_hours = s.wishlist_hours | n.wishlist_new,
            purchase_hours = s.purchase_hours | n.purchase_new
        from visitor_news as n
        where not n.is_new
            and (n.view_new | n.search_new | n.add_to_cart_new | n.remove_from_cart_new
                | n.wishlist_new | n.purchase_new) <> 0
            and s.day = n.day
            and s.visitor = n.visitor
    ),

    inserted_sessions as (
        insert into analytics.seen_day_sessions (day, session_id, has_view, has_cart, has_purchase)
        select day, session_id, has_view, has_cart, has_purchase
        from session_news
        where is_new
        order by day, session_id
    ),

    updated_sessions as (
        update analytics.seen_day_sessions as s
        set has_view = s.has_view or n.view_reached,
            has_cart = s.has_cart or n.cart_reached,
            has_purchase = s.has_purchase or n.purchase_reached
        from session_news as n
        where not n.is_new
            and (n.view_reached or n.cart_reached or n.purchase_reached)
            and s.day = n.day
            and s.session_id = n.session_id
    ),

    -- hourly: counters plus the visitors new to (hour, event type)
    batch_hours as materialized (
        select distinct hour, day, 1 << date_part('hour', hour - day_start)::int as hour_bit
        from grain
    ),

    news_per_hour as (
        select
            b.hour,
            count(*) filter (where n.view_new & b.hour_bit <> 0) as view,
            count(*) filter (where n.search_new & b.hour_bit <> 0) as search,
            count(*) filter (where n.add_to_cart_new & b.hour_bit <> 0) as add_to_cart,
            count(*) filter (where n.remove_from_cart_new & b.hour_bit <> 0)
                as remove_from_cart,
            count(*) filter (where n.wishlist_new & b.hour_bit <> 0) as wishlist,
            count(*) filter (where n.purchase_new & b.hour_bit <> 0) as purchase
        from visitor_news as n
        join batch_hours as b on b.day = n.day
        group by b.hour
    ),

    new_hour_visitors as (
        select p.hour, t.event_type, t.visitors
        from news_per_hour as p
        cross join lateral (
            values
                ('view', p.view),
                ('search', p.search),
                ('add_to_cart', p.add_to_cart),
                ('remove_from_cart', p.remove_from_cart),
                ('wishlist', p.wishlist),
                ('purchase', p.purchase)
        ) as t (event_type, visitors)
    ),

    hourly as (
        insert into analytics.rollup_hourly as r (hour, event_type, events, visitors, revenue)
        select g.hour, g.event_type, g.events, coalesce(v.visitors, 0), g.revenue
        from (
            select hour, event_type, sum(events) as events, sum(revenue) as revenue
            from grain
            group by hour, event_type
        ) as g
        left join new_hour_visitors as v on v.hour = g.hour and v.event_type = g.event_type
        on conflict (hour, event_type) do update
        set events = r.events + excluded.events,
            visitors = r.visitors + excluded.visitors,
            revenue = r.revenue + excluded.revenue
    ),

    customers as (
        insert into analytics.rollup_customers as r (
            user_id, orders, revenue, first_purchase_at, last_purchase_at
        )
        select user_id, sum(orders), sum(revenue), min(first_purchase_at), max(last_purchase_at)
        from visitor_days
        where orders > 0 and user_id is not null
        group by user_id
        on conflict (user_id) do update
        set orders = r.orders + excluded.orders,
            revenue = r.revenue + excluded.revenue,
            first_purchase_at = least(r.first_purchase_at, excluded.first_purchase_at),
            last_purchase_at = greatest(r.last_purchase_at, excluded.last_purchase_at)
    ),

    categories as (
        insert into analytics.rollup_categories as r (
            category, events, views, add_to_carts, orders, units, revenue
        )
        select
            category,
            sum(events),
            coalesce(sum(events) filter (where event_type = 'view'), 0),
            coalesce(sum(events) filter (where event_type = 'add_to_cart'), 0),
            coalesce(sum(events) filter (where event_type = 'purchase'), 0),
            sum(units),
            sum(revenue)
        from grain
        where category is not null
        group by category
        on conflict (category) do update
        set events = r.events + excluded.events,
            views = r.views + excluded.views,
            add_to_carts = r.add_to_carts + excluded.add_to_carts,
            orders = r.orders + excluded.orders,
            units = r.units + excluded.units,
            revenue = r.revenue + excluded.revenue
    ),

    products as (
        insert into analytics.rollup_products as r (
            product_id, events, views, orders, units, revenue
        )
        select
            product_id,
            sum(events),
            coalesce(sum(events) filter (where event_type = 'view'), 0),
            coalesce(sum(events) filter (where event_type = 'purchase'), 0),
            sum(units),
            sum(revenue)
        from grain
        where product_id is not null
        group by product_id
        on conflict (product_id) do update
        set events = r.events + excluded.events,
            views = r.views + excluded.views,
            orders = r.orders + excluded.orders,
            units = r.units + excluded.units,
            revenue = r.revenue + excluded.revenue
    ),

    -- revenue in its own currency, per hour (the views convert at each day's rate)
    revenue_hours as (
        insert into analytics.rollup_revenue as r (
            hour, currency, product_id, category, orders, units, revenue
        )
        select hour_start, currency, product_id, category, count(*), sum(quantity),
            sum(total_amount)
        from events
        where event_type = 'purchase' and currency is not null
        group by hour_start, currency, product_id, category
        on conflict (hour, currency, product_id, category) do update
        set orders = r.orders + excluded.orders,
            units = r.units + excluded.units,
            revenue = r.revenue + excluded.revenue
    ),

    customer_revenue as (
        insert into analytics.rollup_customer_revenue as r (
            user_id, day, currency, orders, revenue
        )
        select user_id, (day_start at time zone 'UTC')::date, currency, count(*),
            sum(total_amount)
        from events
        where event_type = 'purchase' and currency is not null and user_id is not null
        group by user_id, day_start, currency
        on conflict (user_id, day, currency) do update
        set orders = r.orders + excluded.orders,
            revenue = r.revenue + excluded.revenue
    ),

    -- daily: counters plus what this batch adds to the distinct counts
    day_news as (
        select
            day,
            count(*) filter (where is_new) as visitors,
            count(*) filter (where is_new_buyer and user_id is not null) as buyers,
            0 as view_sessions,
            0 as cart_sessions,
            0 as purchase_sessions
        from visitor_news
        group by day
        union all
        select
            day,
            0,
            0,
            count(*) filter (where view_reached),
            count(*) filter (where cart_reached),
            count(*) filter (where purchase_reached)
        from session_news
        group by day
    ),

    days as (
        select
            g.day,
            g.events,
            g.orders,
            g.units,
            g.revenue,
            g.last_event_at,
            coalesce(n.visitors, 0) as visitors,
            coalesce(n.buyers, 0) as buyers,
            coalesce(n.view_sessions, 0) as view_sessions,
            coalesce(n.cart_sessions, 0) as cart_sessions,
            coalesce(n.purchase_sessions, 0) as purchase_sessions
        from (
            select
                day,
                sum(events) as events,
                coalesce(sum(events) filter (where event_type = 'purchase'), 0) as orders,
                sum(units) as units,
                sum(revenue) as revenue,
                max(last_event_at) as last_event_at
            from grain
            group by day
        ) as g
        left join (
            select
                day,
                sum(visitors) as visitors,
                sum(buyers) as buyers,
                sum(view_sessions) as view_sessions,
                sum(cart_sessions) as cart_sessions,
                sum(purchase_sessions) as purchase_sessions
            from day_news
            group by day
        ) as n on n.day = g.day
    )

    insert into analytics.rollup_daily as r (
        day, events, orders, units, revenue, visitors, buyers, view_sessions, cart_sessions,
        purchase_sessions, last_event_at
    )
    select
        day, events, orders, units, revenue, visitors, buyers, view_sessions, cart_sessions,
        purchase_sessions, last_event_at
    from days
    on conflict (day) do update
    set events = r.events + excluded.events,
        orders = r.orders + excluded.orders,
        units = r.units + excluded.units,
        revenue = r.revenue + excluded.revenue,
        visitors = r.visitors + excluded.visitors,
        buyers = r.buyers + excluded.buyers,
        view_sessions = r.view_sessions + excluded.view_sessions,
        cart_sessions = r.cart_sessions + excluded.cart_sessions,
        purchase_sessions = r.purchase_sessions + excluded.purchase_sessions,
        last_event_at = greatest(r.last_event_at, excluded.last_event_at);

    -- the growth KPI rollups (db/functions/analytics/kpis.sql)
    perform analytics.apply_kpis();
end
$$;

revoke all on function analytics.apply_events() from public;
