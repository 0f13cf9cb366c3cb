-- The browser source (docs/tracking.md): public write keys and the traffic_source mapping.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- The keys the collector accepts on POST /v1/collect (not revoked), with their origins and
-- limits. The collector reads them every few seconds; it cannot read the table itself.
create function ingest.active_site_keys()
returns table (site_key text, site text, allowed_origins text[], events_per_minute int)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    select k.site_key, k.site, k.allowed_origins, k.events_per_minute
    from ingest.site_keys as k
    where k.revoked_at is null
    order by k.site_key;
end;

revoke all on function ingest.active_site_keys() from public;
grant execute on function ingest.active_site_keys() to pipeline_ingest;

-- A new public write key for a site and its allowed origins (scheme://host[:port]); an origin
-- in another form is refused with the form expected. Owner only (deno task sites add).
create function ingest.add_site_key(
    p_site text, p_origins text[], p_events_per_minute int default 6000, p_note text default ''
)
returns text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_key text := 'pk_' || replace(gen_random_uuid()::text, '-', '');
    v_origins text[];
    v_bad text;
begin
    if p_site is null or p_site !~ '^[a-z0-9][a-z0-9_.-]{0,62}$' then
        raise exception 'site "%" must be 1 to 63 lowercase letters, digits, "_", "." or "-"', p_site
            using errcode = '22023';
    end if;
    v_origins := array(
        select distinct rtrim(lower(btrim(o)), '/') from unnest(p_origins) as o where btrim(o) <> ''
    );
    if cardinality(v_origins) = 0 then
        raise exception 'site "%" needs at least one allowed origin, e.g. https://shop.example', p_site
            using errcode = '22023';
    end if;
    select o into v_bad from unnest(v_origins) as o
    where o !~ '^https?://[a-z0-9.-]+(:[0-9]{1,5})?$' limit 1;
    if v_bad is not null then
        raise exception 'origin "%" is not scheme://host[:port] (e.g. https://shop.example or http://127.0.0.1:8081, no path)', v_bad
            using errcode = '22023';
    end if;
    insert into ingest.site_keys (site_key, site, allowed_origins, events_per_minute, note)
    values (v_key, p_site, v_origins, p_events_per_minute, coalesce(p_note, ''));
    return v_key;
end
$$;

revoke all on function ingest.add_site_key(text, text[], int, text) from public;

-- Revokes a public write key (collectors stop accepting it within their reload interval).
-- False when there is no such key or it was already revoked.
create function ingest.revoke_site_key(p_site_key text)
returns boolean
language sql
set search_path = pg_catalog, pg_temp
begin atomic
    with revoked as (
        update ingest.site_keys set revoked_at = now()
        where site_key = p_site_key and revoked_at is null
        returning 1
    )
    select exists (select from revoked);
end;

revoke all on function ingest.revoke_site_key(text) from public;

-- The contract's traffic_source (direct, search, social, email, ads, referral) of a session
-- from its landing page's UTM parameters and click ids and its referrer host:
-- 1. a paid click id (gclid, msclkid, ...) or a paid utm_medium -> ads; email, social,
--    organic (-> search) and referral media -> themselves;
-- 2. another utm_source -> its referrer class if it names a known host (google -> search),
--    e-mail-like -> email, else referral;
-- 3. no UTM: no referrer or the shop's own host -> direct; a known search or social host
--    (ingest.traffic_referrers) -> that; any other host -> referral.
create function ingest.traffic_source(
    p_utm_source text, p_utm_medium text, p_click_id boolean, p_referrer_host text,
    p_page_host text
)
returns text
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    select case
        when coalesce(p_click_id, false) then 'ads'
        when m.medium ~ '^(cpc|ppc|cpm|cpv|cpa|paid.*|display|banner|retargeting|remarketing|affiliate|ads?)$'
            then 'ads'
        when m.medium ~ '^(e[-_ ]?mail|newsletter)$' then 'email'
        when m.medium ~ '^(social|social[-_ ](network|media)|sm|organic[-_ ]social)$' then 'social'
        when m.medium = 'organic' then 'search'
        when m.medium = 'referral' then 'referral'
        when m.source <> '' then coalesce(
            (select r.traffic_source from ingest.traffic_referrers as r
             where m.source || '.com' ~ r.host_pattern or m.source ~ r.host_pattern
             order by r.host_pattern limit 1),
            case when m.source ~ '(e[-_ ]?mail|newsletter)' then 'email' end,
            'referral')
        when m.ref = '' or m.ref = m.page then 'direct'
        else coalesce(
            (select r.traffic_source from ingest.traffic_referrers as r
             where m.ref ~ r.host_pattern order by r.host_pattern limit 1),
            'referral')
    end
    from (select
        lower(btrim(coalesce(p_utm_medium, ''))) as medium,
        lower(btrim(coalesce(p_utm_source, ''))) as source,
        lower(btrim(coalesce(p_referrer_host, ''))) as ref,
        lower(btrim(coalesce(p_page_host, ''))) as page
    ) as m;
end;

revoke all on function ingest.traffic_source(text, text, boolean, text, text) from public;
grant execute on function ingest.traffic_source(text, text, boolean, text, text) to pipeline_ingest;

-- ingest.traffic_source() over a batch's distinct inputs in one call: p_inputs is a JSON array
-- of [utm_source, utm_medium, click_id, referrer_host, page_host]; returns each index's source.
create function ingest.traffic_sources(p_inputs jsonb)
returns table (i int, traffic_source text)
language sql
stable
set search_path = pg_catalog, pg_temp
begin atomic
    select (x.ord - 1)::int, ingest.traffic_source(
        x.v ->> 0, x.v ->> 1, (x.v ->> 2)::boolean, x.v ->> 3, x.v ->> 4)
    from jsonb_array_elements(p_inputs) with ordinality as x (v, ord)
    order by x.ord;
end;

revoke all on function ingest.traffic_sources(jsonb) from public;
grant execute on function ingest.traffic_sources(jsonb) to pipeline_ingest;
