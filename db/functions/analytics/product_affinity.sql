-- "Customers also bought" (docs/metrics.md, "Affinity"): product pairs bought in the same
-- session, with a minimum support and a score that does not reward one-off pairs.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- For each product, its p_top best companions among the products bought in at least
-- p_min_pair_sessions of the same sessions (default 3). pair_sessions: sessions that bought
-- both; support = pair_sessions / sessions with a purchase; confidence = pair_sessions /
-- sessions that bought product_id; lift = confidence / share of sessions that bought the other;
-- score = cosine (pair_sessions / sqrt(sessions with product_id x sessions with the other))
-- x min(pair_sessions, 10) / 10: the cosine with significance weighting (Herlocker et al.,
-- 1999), so a pair seen in 3 sessions weighs 0.3 of one seen in 10 or more. Ranked by score
-- (as shown, 6 decimals), then pair_sessions, then the smaller product id.
create function analytics.product_affinity_ranked(
    p_min_pair_sessions int default 3, p_top int default 10
)
returns table (
    product_id bigint, rank bigint, recommended_product_id bigint, pair_sessions bigint,
    support numeric, confidence numeric, lift numeric, score numeric
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_min_pair_sessions is null or p_min_pair_sessions < 1 then
        raise exception 'The minimum of shared sessions must be 1 or more (got %)',
            p_min_pair_sessions using errcode = '22023';
    end if;
    return query
    with pairs as (
        select k.product_a as a, k.product_b as b, k.sessions
        from analytics.kpi_product_pairs as k
        where k.sessions >= p_min_pair_sessions
        union all
        select k.product_b, k.product_a, k.sessions
        from analytics.kpi_product_pairs as k
        where k.sessions >= p_min_pair_sessions
    ),

    measured as (
        select
            p.a,
            p.b,
            p.sessions,
            p.sessions::numeric / t.baskets as support,
            p.sessions::numeric / x.sessions as confidence,
            p.sessions::numeric * t.baskets / (x.sessions * y.sessions) as lift,
            p.sessions / sqrt(x.sessions::numeric * y.sessions) * least(p.sessions, 10) / 10
                as score
        from pairs as p
        join analytics.kpi_product_baskets as x on x.product_id = p.a
        join analytics.kpi_product_baskets as y on y.product_id = p.b
        cross join analytics.kpi_basket_totals as t
    ),

    ranked as (
        select
            m.*,
            row_number() over (
                partition by m.a
                order by round(m.score, 6) desc, m.sessions desc, m.b
            ) as position
        from measured as m
    )

    select r.a, r.position, r.b, r.sessions::bigint, round(r.support, 6),
        round(r.confidence, 6), round(r.lift, 6), round(r.score, 6)
    from ranked as r
    where r.position <= p_top
    order by r.a, r.position;
end
$$;

revoke all on function analytics.product_affinity_ranked(int, int) from public;
grant execute on function analytics.product_affinity_ranked(int, int) to pipeline_analyst;
