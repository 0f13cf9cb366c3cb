-- analytics.product_affinity: for each product, the 10 products most often bought in the same
-- session ("customers also bought"), best first. pair_sessions: sessions that bought both;
-- support = pair_sessions / sessions with a purchase; confidence = pair_sessions / sessions
-- that bought product_id; lift = confidence / (share of sessions that bought the other);
-- score = pair_sessions / sqrt(sessions with product_id x sessions with the other) (cosine,
-- 0..1). Ranked by score (as shown, 6 decimals), then pair_sessions, then the smaller product id. Read time over
-- analytics.kpi_product_pairs (maintained incrementally); filter on product_id.
drop view if exists analytics.product_affinity;
create view analytics.product_affinity as
with pairs as (
    select product_a as product_id, product_b as recommended_product_id, sessions
    from analytics.kpi_product_pairs
    union all
    select product_b, product_a, sessions
    from analytics.kpi_product_pairs
),

measured as (
    select
        p.product_id,
        p.recommended_product_id,
        p.sessions as pair_sessions,
        p.sessions::numeric / t.baskets as support,
        p.sessions::numeric / a.sessions as confidence,
        p.sessions::numeric * t.baskets / (a.sessions * b.sessions) as lift,
        p.sessions / sqrt(a.sessions::numeric * b.sessions) as score
    from pairs as p
    join analytics.kpi_product_baskets as a on a.product_id = p.product_id
    join analytics.kpi_product_baskets as b on b.product_id = p.recommended_product_id
    cross join analytics.kpi_basket_totals as t
),

ranked as (
    select
        m.*,
        row_number() over (
            partition by m.product_id
            order by round(m.score, 6) desc, m.pair_sessions desc, m.recommended_product_id
        ) as rank
    from measured as m
)

select
    product_id,
    rank,
    recommended_product_id,
    pair_sessions,
    round(support, 6) as support,
    round(confidence, 6) as confidence,
    round(lift, 6) as lift,
    round(score, 6) as score
from ranked
where rank <= 10;
