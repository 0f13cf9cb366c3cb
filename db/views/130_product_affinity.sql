-- analytics.product_affinity: "customers also bought" with the default support: each product's
-- 10 best companions among those bought in at least 3 of the same sessions, ranked by the
-- significance-weighted cosine (analytics.product_affinity_ranked, which takes another
-- minimum). Filter on product_id.
drop view if exists analytics.product_affinity;
create view analytics.product_affinity as
select product_id, rank, recommended_product_id, pair_sessions, support, confidence, lift, score
from analytics.product_affinity_ranked(3, 10);
