-- THE VALIDATION RULES. Every rule of the data contract is checked here, once, for every
-- source (files, HTTP, Kafka, replay). To add a rule, follow docs/guide-add-a-rule.md.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- pg_temp.checked, the result of ingest.check_stage: a staged row typed, with the mask of
-- the rules it breaks, is_valid, is_late and the payload's fingerprint. One of the session's
-- staging tables (ingest.session_staging): emptied at commit. Its columns are the check's
-- select list below, in order (a column added there is added here).
create function ingest.create_checked()
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    create temp table checked (
        line_no bigint,
        src_batch_id bigint,
        ref_id bigint,
        schema_version int,
        mask int,
        is_valid boolean,
        event_id uuid,
        event_time timestamptz,
        event_type text,
        user_id bigint,
        session_id text,
        product_id bigint,
        category text,
        price numeric,
        quantity int,
        currency text,
        device text,
        traffic_source text,
        payment_method text,
        search_query text,
        email_hash bytea,
        extra jsonb,
        is_late boolean,
        payload_hash bigint
    ) on commit delete rows;
end
$$;

revoke all on function ingest.create_checked() from public;

-- The validation rules of the contract, once: normalises pg_temp.stage into pg_temp.checked
-- with typed values and a mask of every failed rule (0: valid). Shared by ingest and replay.
-- The cheap forms below (translate for digits, fixed positions for the ISO shape, a bit mask
-- instead of an array, each step computed once) are what made the check cheap per row:
-- docs/measurements.md.
create function ingest.check_stage(p_settings jsonb)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
set enable_memoize = off
set max_parallel_workers_per_gather = 2
set parallel_setup_cost = 100
set parallel_tuple_cost = 0.01
set min_parallel_table_scan_size = 0
as $$
declare
    v_max_price numeric := coalesce((p_settings ->> 'max_price')::numeric, 10000);
    v_future timestamptz := now() + make_interval(
        secs => coalesce((p_settings ->> 'future_seconds')::int, 300));
    v_too_old timestamptz := now() - make_interval(
        days => coalesce((p_settings ->> 'too_old_days')::int, 400));
    v_late timestamptz := now() - make_interval(
        secs => coalesce((p_settings ->> 'late_seconds')::int, 600));
    v_key text := coalesce(p_settings ->> 'email_key', 'change-me-in-production');
    -- the domains (db/functions/ingest/domains.sql) and limits of the contract
    v_types constant text[] := ingest.domain('event_type');
    v_categories constant text[] := ingest.domain('category');
    v_currencies constant text[] := ingest.domain('currency');
    v_devices constant text[] := ingest.domain('device');
    v_sources constant text[] := ingest.domain('traffic_source');
    v_payments constant text[] := ingest.domain('payment_method');
    v_user_types constant text[] := array[
        'add_to_cart', 'remove_from_cart', 'wishlist', 'purchase'];
    v_cart_types constant text[] := array['add_to_cart', 'remove_from_cart', 'purchase'];
    v_max_session constant int := 64;
    v_max_query constant int := 200;
    v_max_quantity constant int := 1000;
begin
    -- rows of older schema versions get the registry's upgrade rules first (in place: after it
    -- every row has the pipeline's columns, whatever version its file was)
    perform ingest.upgrade_stage();
    -- the session's table (ingest.session_staging), emptied; made here when a chunk or slice
    -- path dropped it
    if ingest.own_temp('checked') is null then
        perform ingest.create_checked();
    else
        delete from pg_temp.checked;
    end if;
    -- Four steps per row, each computed once ("offset 0": inlined, every reference to a value
    -- would re-run its parsing):
    --   c  the raw value typed where it is already in canonical form (no blanks to trim,
    --      digits as PostgreSQL prints them, the usual ISO-8601 shape), with one cheap cast;
    --   t  every value normalised (trimmed, NULL for blank, enums lower-cased); a canonical
    --      value is taken as it is, which is what normalising it would give;
    --   y  every value typed: the canonical cast where there was one, else the full parse of
    --      the normalised text (the same value for any text both accept);
    --   r  the rules: one bit per rule, from t and y only. A row is valid when no bit is set.
    -- So the cheap casts only make typing faster; which rules a row breaks is decided in one
    -- place (r), for every row.
    insert into pg_temp.checked
    select
        s.line_no,
        coalesce(s.src_batch_id, 0) as src_batch_id,
        s.ref_id,
        s.schema_version,
        r.mask,
        r.mask = 0 as is_valid,
        y.event_uuid as event_id,
        y.ts as event_time,
        t.event_type,
        y.user_num as user_id,
        t.session_id,
        y.product_num as product_id,
        t.category,
        y.price_value as price,
        y.quantity_value as quantity,
        coalesce(t.currency, 'USD') as currency,
        t.device,
        t.traffic_source,
        t.payment_method,
        t.search_query,
        y.email_hash,
        case when s.extra is not null then ingest.protect_extra(s.extra, v_key) end as extra,
        y.ts < v_late as is_late,
        -- the fingerprint of the normalised payload (docs/rules.md), hashed from the typed
        -- values (no text output): ingest.accept_checked compares it where an event_id collides
        case
            when r.mask = 0 then hash_record_extended(row(
                y.ts, t.event_type, y.user_num, t.session_id, y.product_num, t.category,
                y.price_value, y.quantity_value, coalesce(t.currency, 'USD'), t.device,
                t.traffic_source, t.payment_method, t.search_query, y.email_hash
            ), 0)
        end as payload_hash
    from pg_temp.stage as s
    -- c: raw values already in canonical form, typed (NULL for any other)
    cross join lateral (
        select
            k.event_uuid,
            k.ts,
            case when k.user_num::text = s.user_id then k.user_num end as user_num,
            case when k.product_num::text = s.product_id then k.product_num end as product_num,
            case
                when k.price_num::text = s.price and scale(k.price_num) <= 2
                    and abs(k.price_num) < 1e15
                    then k.price_num
            end as price_num,
            case
                when k.quantity_num::text = s.quantity and length(s.quantity) <= 9
                    then k.quantity_num
            end as quantity_num
        from (
            select
                case when pg_input_is_valid(s.event_id, 'uuid') then s.event_id::uuid end
                    as event_uuid,
                -- YYYY-MM-DDTHH:MM...Z, no blanks around it
                case
                    when substr(s.event_time, 5, 1) = '-' and substr(s.event_time, 8, 1) = '-'
                        and substr(s.event_time, 11, 1) = 'T'
                        and substr(s.event_time, 14, 1) = ':'
                        and right(s.event_time, 1) = 'Z'
                        and ascii(s.event_time) between 48 and 57
                        and ascii(substr(s.event_time, 2, 1)) between 48 and 57
                        and ascii(substr(s.event_time, 3, 1)) between 48 and 57
                        and ascii(substr(s.event_time, 4, 1)) between 48 and 57
                        and pg_input_is_valid(s.event_time, 'timestamptz')
                        then s.event_time::timestamptz
                end as ts,
                case when pg_input_is_valid(s.user_id, 'int8') then s.user_id::bigint end
                    as user_num,
                case when pg_input_is_valid(s.product_id, 'int8') then s.product_id::bigint end
                    as product_num,
                case when pg_input_is_valid(s.price, 'numeric') then s.price::numeric end
                    as price_num,
                case when pg_input_is_valid(s.quantity, 'int4') then s.quantity::int end
                    as quantity_num
            offset 0
        ) as k
        offset 0
    ) as c
    -- t: every value normalised
    cross join lateral (
        select
            case
                when c.event_uuid is not null then s.event_id
                else nullif(btrim(s.event_id, e' \t'), '')
            end as event_id,
            case
                when c.ts is not null then s.event_time
                else nullif(btrim(s.event_time, e' \t'), '')
            end as event_time,
            case
                when s.event_type = any (v_types) then s.event_type
                else lower(nullif(btrim(s.event_type, e' \t'), ''))
            end as event_type,
            case
                when c.user_num is not null then s.user_id
                else nullif(btrim(s.user_id, e' \t'), '')
            end as user_id,
            nullif(btrim(s.session_id, e' \t'), '') as session_id,
            case
                when c.product_num is not null then s.product_id
                else nullif(btrim(s.product_id, e' \t'), '')
            end as product_id,
            case
                when s.category = any (v_categories) then s.category
                else lower(nullif(btrim(s.category, e' \t'), ''))
            end as category,
            case
                when c.price_num is not null then s.price
                else nullif(btrim(s.price, e' \t'), '')
            end as price,
            case
                when c.quantity_num is not null then s.quantity
                else nullif(btrim(s.quantity, e' \t'), '')
            end as quantity,
            case
                when s.currency = any (v_currencies) then s.currency
                else upper(nullif(btrim(s.currency, e' \t'), ''))
            end as currency,
            case
                when s.device = any (v_devices) then s.device
                else lower(nullif(btrim(s.device, e' \t'), ''))
            end as device,
            case
                when s.traffic_source = any (v_sources) then s.traffic_source
                else lower(nullif(btrim(s.traffic_source, e' \t'), ''))
            end as traffic_source,
            case
                when s.payment_method = any (v_payments) then s.payment_method
                else lower(nullif(btrim(s.payment_method, e' \t'), ''))
            end as payment_method,
            nullif(btrim(s.search_query, e' \t'), '') as search_query,
            nullif(btrim(s.user_email, e' \t'), '') as user_email
        offset 0
    ) as t
    -- y: every value typed (coalesce evaluates the full parse only where there was no cast)
    cross join lateral (
        select
            x.*,
            case when x.ignores_price then null else x.price_num end as price_value,
            case when x.ignores_price then 1 else x.quantity_num end as quantity_value,
            case
                when t.user_email is not null
                    then public.hmac(lower(t.user_email), v_key, 'sha256')
            end as email_hash
        from (
            select
                coalesce(
                    c.event_uuid,
                    case when pg_input_is_valid(t.event_id, 'uuid') then t.event_id::uuid end
                ) as event_uuid,
                -- ISO-8601 shape (YYYY-MM-DD[T ]HH:MM...) with an explicit offset (Z, ±HH,
                -- ±HHMM, ±HH:MM); the parser checks the digits and the ranges
                coalesce(c.ts, case
                    when substr(t.event_time, 5, 1) = '-'
                        and substr(t.event_time, 8, 1) = '-'
                        and substr(t.event_time, 11, 1) in ('T', 't', ' ')
                        and substr(t.event_time, 14, 1) = ':'
                        and translate(left(t.event_time, 4), '0123456789', '') = ''
                        and (
                            right(t.event_time, 1) in ('Z', 'z')
                            or substr(t.event_time, length(t.event_time) - 2, 1) in ('+', '-')
                            or substr(t.event_time, length(t.event_time) - 4, 1) in ('+', '-')
                            or (
                                substr(t.event_time, length(t.event_time) - 5, 1) in ('+', '-')
                                and substr(t.event_time, length(t.event_time) - 2, 1) = ':'
                            )
                        )
                        and pg_input_is_valid(t.event_time, 'timestamptz')
                        then t.event_time::timestamptz
                end) as ts,
                -- ids: decimal digits, leading zeros allowed, value 1..9223372036854775807
                -- (bigint); a longer or larger value is invalid (docs/rules.md)
                coalesce(c.user_num, case
                    when translate(t.user_id, '0123456789', '') = ''
                        and pg_input_is_valid(ltrim(t.user_id, '0'), 'bigint')
                        then ltrim(t.user_id, '0')::bigint
                end) as user_num,
                coalesce(c.product_num, case
                    when translate(t.product_id, '0123456789', '') = ''
                        and pg_input_is_valid(ltrim(t.product_id, '0'), 'bigint')
                        then ltrim(t.product_id, '0')::bigint
                end) as product_num,
                coalesce(c.price_num, case
                    when length(t.price) <= 19
                        and translate(t.price, '0123456789', '') in ('', '.', '-', '-.')
                        and left(t.price, 1) <> '.' and right(t.price, 1) <> '.'
                        and pg_input_is_valid(t.price, 'numeric')
                        and position('.' in t.price)
                            in (0, length(t.price) - 1, length(t.price) - 2)
                        and length(split_part(ltrim(t.price, '-'), '.', 1)) between 1 and 15
                        then t.price::numeric
                end) as price_num,
                coalesce(c.quantity_num, case
                    when length(t.quantity) <= 9
                        and translate(t.quantity, '0123456789', '') in ('', '-')
                        and pg_input_is_valid(t.quantity, 'int4')
                        then t.quantity::int
                end) as quantity_num,
                t.event_type = any (v_user_types) as needs_user,
                t.event_type = any (v_cart_types) as is_cart,
                coalesce(t.event_type in ('view', 'search', 'wishlist'), false) as ignores_price
            offset 0
        ) as x
        offset 0
    ) as y
    -- r: one bit per rule, in the order of ingest.reason_codes()
    cross join lateral (
        select
            case
                when t.event_id is null then 1
                when y.event_uuid is null then 2
                else 0
            end
            | case
                when t.event_time is null then 4
                when y.ts is null then 8
                else 0
            end
            | case when y.ts > v_future then 16 else 0 end
            | case when y.ts < v_too_old then 32 else 0 end
            | case
                when t.event_type is null then 64
                when t.event_type <> all (v_types) then 128
                else 0
            end
            | case
                when t.user_id is null then case when y.needs_user then 256 else 0 end
                when y.user_num is null or y.user_num <= 0 then 512
                else 0
            end
            | case
                when t.session_id is null then 1024
                when length(t.session_id) > v_max_session then 2048
                else 0
            end
            | case
                when t.product_id is null then
                    case when t.event_type is distinct from 'search' then 4096 else 0 end
                when y.product_num is null or y.product_num <= 0 then 8192
                else 0
            end
            | case
                when t.category is null then
                    case when t.event_type is distinct from 'search' then 16384 else 0 end
                when t.category <> all (v_categories) then 16384
                else 0
            end
            | case when t.price is null and y.is_cart then 32768 else 0 end
            | case
                when not y.ignores_price and t.price is not null and y.price_num is null
                    then 65536
                else 0
            end
            | case when not y.ignores_price and y.price_num < 0 then 131072 else 0 end
            | case when t.event_type = 'purchase' and y.price_num = 0 then 262144 else 0 end
            | case
                when not y.ignores_price and y.price_num > v_max_price then 524288
                else 0
            end
            | case
                when y.is_cart then
                    case
                        when y.quantity_num is null
                            or y.quantity_num not between 1 and v_max_quantity
                            then 1048576
                        else 0
                    end
                when not y.ignores_price and t.quantity is not null and y.quantity_num is null
                    then 1048576
                else 0
            end
            | case
                when t.currency is not null and t.currency <> all (v_currencies) then 2097152
                else 0
            end
            | case
                when t.device is not null and t.device <> all (v_devices) then 4194304
                else 0
            end
            | case
                when t.traffic_source is not null and t.traffic_source <> all (v_sources)
                    then 8388608
                else 0
            end
            | case
                when t.payment_method is not null and t.payment_method <> all (v_payments)
                    then 16777216
                else 0
            end
            | case when length(t.search_query) > v_max_query then 33554432 else 0 end
            as mask
        offset 0
    ) as r;
end
$$;

revoke all on function ingest.check_stage(jsonb) from public;
