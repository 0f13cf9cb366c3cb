-- The growth KPI rollups (migration 20261130001900_kpi_rollups) behind db/views/090_… to 140_…,
-- maintained incrementally, and the customer segment rule.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- Adds the events in pg_temp.batch_events to the KPI rollups. Called by analytics.apply_events
-- (so inline batches, deferred rounds and rebuilds all go through it); callers hold the rollup
-- lock. Every rollup is a sum per key, except the first-event attribution of a session (the
-- earlier event wins) and the baskets, whose new members make the new product pairs.
create function analytics.apply_kpis()
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    if to_regclass('pg_temp.batch_events') is null then
        return;
    end if;

    with events as materialized (
        select
            (date_bin('1 day', event_time, timestamptz '2000-01-01 00:00:00+00')
                at time zone 'UTC')::date as day,
            date_bin('1 hour', event_time, timestamptz '2000-01-01 00:00:00+00') as hour,
            event_time, event_type, user_id, session_id, product_id, category, price,
            quantity, currency, device, traffic_source
        from pg_temp.batch_events
    ),

    sessions as (
        insert into analytics.kpi_sessions as r (
            day, session_id, user_id, first_event_at, last_event_at, traffic_source, device,
            events, searches, cart_adds, orders
        )
        select
            day,
            session_id,
            min(user_id),
            min(event_time),
            max(event_time),
            (array_agg(traffic_source order by event_time, coalesce(traffic_source, ''),
                coalesce(device, '')))[1],
            (array_agg(device order by event_time, coalesce(traffic_source, ''),
                coalesce(device, '')))[1],
            count(*),
            count(*) filter (where event_type = 'search'),
            count(*) filter (where event_type = 'add_to_cart'),
            count(*) filter (where event_type = 'purchase')
        from events
        group by day, session_id
        on conflict (day, session_id) do update
        set user_id = least(r.user_id, excluded.user_id),
            traffic_source = case
                when (excluded.first_event_at, coalesce(excluded.traffic_source, ''),
                    coalesce(excluded.device, ''))
                    < (r.first_event_at, coalesce(r.traffic_source, ''), coalesce(r.device, ''))
                then excluded.traffic_source else r.traffic_source end,
            device = case
                when (excluded.first_event_at, coalesce(excluded.traffic_source, ''),
                    coalesce(excluded.device, ''))
                    < (r.first_event_at, coalesce(r.traffic_source, ''), coalesce(r.device, ''))
                then excluded.device else r.device end,
            first_event_at = least(r.first_event_at, excluded.first_event_at),
            last_event_at = greatest(r.last_event_at, excluded.last_event_at),
            events = r.events + excluded.events,
            searches = r.searches + excluded.searches,
            cart_adds = r.cart_adds + excluded.cart_adds,
            orders = r.orders + excluded.orders
    ),

    session_revenue as (
        insert into analytics.kpi_session_revenue as r (day, session_id, currency, revenue)
        select day, session_id, currency, sum(price * quantity)
        from events
        where event_type = 'purchase'
        group by day, session_id, currency
        on conflict (day, session_id, currency) do update
        set revenue = r.revenue + excluded.revenue
    ),

    session_categories as (
        insert into analytics.kpi_session_categories as r (
            day, session_id, category, currency, cart_adds, cart_value, purchases
        )
        select
            day,
            session_id,
            category,
            currency,
            count(*) filter (where event_type = 'add_to_cart'),
            coalesce(sum(price * quantity) filter (where event_type = 'add_to_cart'), 0),
            count(*) filter (where event_type = 'purchase')
        from events
        where event_type in ('add_to_cart', 'purchase') and category is not null
        group by day, session_id, category, currency
        on conflict (day, session_id, category, currency) do update
        set cart_adds = r.cart_adds + excluded.cart_adds,
            cart_value = r.cart_value + excluded.cart_value,
            purchases = r.purchases + excluded.purchases
    ),

    customer_days as (
        insert into analytics.kpi_customer_days as r (user_id, day, currency, orders, revenue)
        select user_id, day, currency, count(*), sum(price * quantity)
        from events
        where event_type = 'purchase' and user_id is not null
        group by user_id, day, currency
        on conflict (user_id, day, currency) do update
        set orders = r.orders + excluded.orders,
            revenue = r.revenue + excluded.revenue
    ),

    hourly as (
        insert into analytics.kpi_hourly as r (hour, currency, events, orders, units, revenue)
        select
            hour,
            currency,
            count(*),
            count(*) filter (where event_type = 'purchase'),
            coalesce(sum(quantity) filter (where event_type = 'purchase'), 0),
            coalesce(sum(price * quantity) filter (where event_type = 'purchase'), 0)
        from events
        group by hour, currency
        on conflict (hour, currency) do update
        set events = r.events + excluded.events,
            orders = r.orders + excluded.orders,
            units = r.units + excluded.units,
            revenue = r.revenue + excluded.revenue
    ),

    -- baskets: the (session, product) purchases this batch adds
    bought as (
        select distinct session_id, product_id
        from events
        where event_type = 'purchase' and product_id is not null
    ),

    new_members as materialized (
        select b.session_id, b.product_id
        from bought as b
        where not exists (
            select from analytics.kpi_session_products as s
            where s.session_id = b.session_id and s.product_id = b.product_id
        )
    ),

    inserted_members as (
        insert into analytics.kpi_session_products (session_id, product_id)
        select session_id, product_id from new_members
        order by session_id, product_id
    ),

    baskets as (
        insert into analytics.kpi_product_baskets as r (product_id, sessions)
        select product_id, count(*) from new_members group by product_id
        on conflict (product_id) do update set sessions = r.sessions + excluded.sessions
    ),

    totals as (
        insert into analytics.kpi_basket_totals as r (baskets)
        select count(distinct n.session_id)
        from new_members as n
        where not exists (
            select from analytics.kpi_session_products as s where s.session_id = n.session_id
        )
        having count(distinct n.session_id) > 0
        on conflict (only_row) do update set baskets = r.baskets + excluded.baskets
    ),

    -- a new pair has at least one new member: new x earlier members, and new x new
    new_pairs as (
        select least(n.product_id, s.product_id) as a, greatest(n.product_id, s.product_id) as b
        from new_members as n
        join analytics.kpi_session_products as s on s.session_id = n.session_id
        union all
        select n.product_id, m.product_id
        from new_members as n
        join new_members as m on m.session_id = n.session_id and n.product_id < m.product_id
    )

    insert into analytics.kpi_product_pairs as r (product_a, product_b, sessions)
    select a, b, count(*) from new_pairs group by a, b
    on conflict (product_a, product_b) do update set sessions = r.sessions + excluded.sessions;
end
$$;

revoke all on function analytics.apply_kpis() from public;

-- The customer segment from the RFM figures as of a day (docs/analytics.md, "Customer
-- segments"): recency_days since the last purchase, tenure_days since the first, orders and
-- lifetime value in the reporting currency. First match wins.
create function analytics.customer_segment(
    p_recency_days int, p_tenure_days int, p_orders bigint, p_ltv numeric
)
returns text
language sql
immutable
parallel safe
set search_path = pg_catalog, pg_temp
return case
    when p_recency_days > 90 then 'Churned'
    when p_recency_days > 30 then 'At risk'
    when p_orders >= 5 or p_ltv >= 1000 then 'High value'
    when p_tenure_days < 7 then 'New'
    else 'Regular'
end;

revoke all on function analytics.customer_segment(int, int, bigint, numeric) from public;
grant execute on function analytics.customer_segment(int, int, bigint, numeric)
    to pipeline_analyst;
