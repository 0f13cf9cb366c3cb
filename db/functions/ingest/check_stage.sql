-- THE VALIDATION RULES. Every rule of the data contract is checked here, once, for every
-- source (files, HTTP, replay). To add a rule, follow docs/guide-add-a-rule.md.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- The validation rules of the contract, once: normalises pg_temp.stage into pg_temp.checked
-- with typed values and a mask of every failed rule. Shared by ingest and replay.
-- Costs per row were measured on 200k rows; the cheap forms below (translate for digits,
-- fixed positions for the ISO shape, a bit mask instead of an array) took the check from
-- 150 us/row (inlined CTEs re-running every regex) to a few us/row.
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
    -- the domains and limits of the contract, once, for both passes below
    v_types constant text[] := array[
        'view', 'search', 'add_to_cart', 'remove_from_cart', 'wishlist', 'purchase'];
    v_user_types constant text[] := array[
        'add_to_cart', 'remove_from_cart', 'wishlist', 'purchase'];
    v_cart_types constant text[] := array['add_to_cart', 'remove_from_cart', 'purchase'];
    v_categories constant text[] := array[
        'electronics', 'clothing', 'home_garden', 'sports', 'books', 'beauty', 'toys', 'grocery'];
    v_currencies constant text[] := array['USD', 'EUR', 'GBP'];
    v_devices constant text[] := array['desktop', 'mobile', 'tablet'];
    v_sources constant text[] := array['direct', 'search', 'social', 'email', 'ads', 'referral'];
    v_payments constant text[] := array[
        'card', 'paypal', 'apple_pay', 'google_pay', 'bank_transfer'];
    v_max_session constant int := 64;
    v_max_query constant int := 200;
    v_max_quantity constant int := 1000;
begin
    -- rows of older schema versions get the registry's upgrade rules first (in place: after it
    -- every row has the pipeline's columns, whatever version its file was)
    perform ingest.upgrade_stage();
    drop table if exists pg_temp.checked;
    -- Two passes in one scan. The happy path (f) takes the raw values as COPY left them and,
    -- when each is already in canonical form (no blanks to trim, lower-case enums, digits
    -- only, the usual ISO-8601 shape), casts it once and applies every rule; a row passing all
    -- of them is valid and nothing else is computed for it. Only the other rows (invalid ones,
    -- and valid ones in a non-canonical spelling) reach the full
    -- classification (t, y, r), which normalises every value and sets one bit per failed rule.
    -- A guard is only a precondition for the cheap cast: whatever it lets through, the full
    -- classification would type the same way and find no fault in.
    -- Each lateral step ends in "offset 0" so it is computed once per row: inlined, every
    -- reference to ts would re-run its parsing.
    create temp table checked on commit drop as
    select
        s.line_no,
        coalesce(s.src_batch_id, 0) as src_batch_id,
        s.ref_id,
        s.schema_version,
        v.mask,
        v.mask = 0 as is_valid,
        v.event_id,
        v.event_time,
        v.event_type,
        v.user_id,
        v.session_id,
        v.product_id,
        v.category,
        v.price,
        v.quantity,
        v.currency,
        v.device,
        v.traffic_source,
        v.payment_method,
        v.search_query,
        v.email_hash,
        case when s.extra is not null then ingest.protect_extra(s.extra, v_key) end as extra,
        v.event_time < v_late as is_late,
        -- the fingerprint of the normalised payload (docs/rules.md), hashed from the typed
        -- values (no text output): ingest.accept_checked compares it where an event_id collides
        case
            when v.mask = 0 then hash_record_extended(row(
                v.event_time, v.event_type, v.user_id, v.session_id, v.product_id, v.category,
                v.price, v.quantity, v.currency, v.device, v.traffic_source, v.payment_method,
                v.search_query, v.email_hash
            ), 0)
        end as payload_hash
    from pg_temp.stage as s
    cross join lateral (
        select
            g.*,
            g.event_uuid is not null
                and g.ts <= v_future and g.ts >= v_too_old
                and g.event_type = any (v_types)
                and (
                    g.user_num > 0 and g.user_num::text = s.user_id
                    or s.user_id is null and g.event_type <> all (v_user_types)
                )
                and length(g.session_value) <= v_max_session
                and (
                    g.product_num > 0 and g.product_num::text = s.product_id
                    or s.product_id is null and g.event_type = 'search'
                )
                and (
                    s.category = any (v_categories)
                    or s.category is null and g.event_type = 'search'
                )
                and (
                    not g.is_cart
                    or g.price_num >= 0 and g.price_num <= v_max_price and g.price_num < 1e15
                    and scale(g.price_num) <= 2 and g.price_num::text = s.price
                    and (g.price_num > 0 or g.event_type <> 'purchase')
                    and g.quantity_num between 1 and v_max_quantity
                    and g.quantity_num::text = s.quantity
                )
                and (s.currency is null or s.currency = any (v_currencies))
                and (s.device is null or s.device = any (v_devices))
                and (s.traffic_source is null or s.traffic_source = any (v_sources))
                and (s.payment_method is null or s.payment_method = any (v_payments))
                and coalesce(length(g.query_value) <= v_max_query, true)
                as ok
        from (
            select
                s.event_type,
                s.event_type = any (v_cart_types) as is_cart,
                case when pg_input_is_valid(s.event_id, 'uuid') then s.event_id::uuid end
                    as event_uuid,
                -- YYYY-MM-DD[T]HH:MM...Z, no blanks around it
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
                -- numbers: accepted when PostgreSQL prints them back exactly as written (plain
                -- digits, no sign, blank, leading zero, exponent or trailing dot)
                case when pg_input_is_valid(s.user_id, 'int8') then s.user_id::bigint end
                    as user_num,
                case when pg_input_is_valid(s.product_id, 'int8') then s.product_id::bigint end
                    as product_num,
                case when pg_input_is_valid(s.price, 'numeric') then s.price::numeric end
                    as price_num,
                case when pg_input_is_valid(s.quantity, 'int4') then s.quantity::int end
                    as quantity_num,
                nullif(btrim(s.session_id, e' \t'), '') as session_value,
                nullif(btrim(s.search_query, e' \t'), '') as query_value
            offset 0
        ) as g
        offset 0
    ) as f
    left join lateral (
        select
            t.*,
            y.event_uuid, y.ts, y.user_num, y.session_value, y.product_num, y.price_value,
            y.quantity_value, y.email_hash,
            r.mask
        from (
            select
                nullif(btrim(s.event_id, e' \t'), '') as event_id,
                nullif(btrim(s.event_time, e' \t'), '') as event_time,
                lower(nullif(btrim(s.event_type, e' \t'), '')) as event_type,
                nullif(btrim(s.user_id, e' \t'), '') as user_id,
                nullif(btrim(s.session_id, e' \t'), '') as session_id,
                nullif(btrim(s.product_id, e' \t'), '') as product_id,
                lower(nullif(btrim(s.category, e' \t'), '')) as category,
                nullif(btrim(s.price, e' \t'), '') as price,
                nullif(btrim(s.quantity, e' \t'), '') as quantity,
                upper(nullif(btrim(s.currency, e' \t'), '')) as currency,
                lower(nullif(btrim(s.device, e' \t'), '')) as device,
                lower(nullif(btrim(s.traffic_source, e' \t'), '')) as traffic_source,
                lower(nullif(btrim(s.payment_method, e' \t'), '')) as payment_method,
                nullif(btrim(s.search_query, e' \t'), '') as search_query,
                nullif(btrim(s.user_email, e' \t'), '') as user_email
            -- only the rows the happy path did not accept
            where f.ok is not true
            offset 0
        ) as t
        cross join lateral (
            select
                x.*,
                case when x.ignores_price then null else x.price_num end as price_value,
                case when x.ignores_price then 1 else x.quantity_num end as quantity_value,
                t.session_id as session_value,
                case
                    when t.user_email is not null
                        then public.hmac(lower(t.user_email), v_key, 'sha256')
                end as email_hash
            from (
                select
                    case when pg_input_is_valid(t.event_id, 'uuid') then t.event_id::uuid end
                        as event_uuid,
                    -- ISO-8601 shape (YYYY-MM-DD[T ]HH:MM...) with an explicit offset (Z, ±HH,
                    -- ±HHMM, ±HH:MM); the parser checks the digits and the ranges
                    case
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
                    end as ts,
                    -- ids: decimal digits, leading zeros allowed, value 1..9223372036854775807
                    -- (bigint); a longer or larger value is invalid (docs/rules.md)
                    case
                        when translate(t.user_id, '0123456789', '') = ''
                            and pg_input_is_valid(ltrim(t.user_id, '0'), 'bigint')
                            then ltrim(t.user_id, '0')::bigint
                    end as user_num,
                    case
                        when translate(t.product_id, '0123456789', '') = ''
                            and pg_input_is_valid(ltrim(t.product_id, '0'), 'bigint')
                            then ltrim(t.product_id, '0')::bigint
                    end as product_num,
                    case
                        when length(t.price) <= 19
                            and translate(t.price, '0123456789', '') in ('', '.', '-', '-.')
                            and left(t.price, 1) <> '.' and right(t.price, 1) <> '.'
                            and pg_input_is_valid(t.price, 'numeric')
                            and position('.' in t.price)
                                in (0, length(t.price) - 1, length(t.price) - 2)
                            and length(split_part(ltrim(t.price, '-'), '.', 1)) between 1 and 15
                            then t.price::numeric
                    end as price_num,
                    case
                        when length(t.quantity) <= 9
                            and translate(t.quantity, '0123456789', '') in ('', '-')
                            and pg_input_is_valid(t.quantity, 'int4')
                            then t.quantity::int
                    end as quantity_num,
                    t.event_type = any (v_user_types) as needs_user,
                    t.event_type = any (v_cart_types) as is_cart,
                    coalesce(t.event_type in ('view', 'search', 'wishlist'), false)
                        as ignores_price
                offset 0
            ) as x
            offset 0
        ) as y
        -- one bit per rule, in the order of ingest.reason_codes()
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
                    when y.session_value is null then 1024
                    when length(y.session_value) > v_max_session then 2048
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
        ) as r
    ) as slow on true
    -- the typed values: the happy path's where it accepted the row, else the full check's
    cross join lateral (
        select
            case when f.ok then 0 else slow.mask end as mask,
            case when f.ok then f.event_uuid else slow.event_uuid end as event_id,
            case when f.ok then f.ts else slow.ts end as event_time,
            case when f.ok then f.event_type else slow.event_type end as event_type,
            case when f.ok then f.user_num else slow.user_num end as user_id,
            case when f.ok then f.session_value else slow.session_value end as session_id,
            case when f.ok then f.product_num else slow.product_num end as product_id,
            case when f.ok then s.category else slow.category end as category,
            case
                when f.ok then case when f.is_cart then f.price_num end
                else slow.price_value
            end as price,
            case
                when f.ok then case when f.is_cart then f.quantity_num else 1 end
                else slow.quantity_value
            end as quantity,
            coalesce(case when f.ok then s.currency else slow.currency end, 'USD') as currency,
            case when f.ok then s.device else slow.device end as device,
            case when f.ok then s.traffic_source else slow.traffic_source end as traffic_source,
            case when f.ok then s.payment_method else slow.payment_method end as payment_method,
            case when f.ok then f.query_value else slow.search_query end as search_query,
            case
                when f.ok then public.hmac(
                    lower(nullif(btrim(s.user_email, e' \t'), '')), v_key, 'sha256')
                else slow.email_hash
            end as email_hash
        offset 0
    ) as v;
end
$$;

revoke all on function ingest.check_stage(jsonb) from public;
