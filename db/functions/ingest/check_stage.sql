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
begin
    -- rows of older schema versions get the registry's upgrade rules first
    perform ingest.upgrade_stage();
    drop table if exists pg_temp.checked;
    -- Each lateral step ends in "offset 0" so it is computed once per row: inlined, every
    -- reference to ts would re-run its parsing.
    create temp table checked on commit drop as
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
        y.session_value as session_id,
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
        case
            when r.mask = 0 then hashtextextended(concat_ws('|',
                y.ts, t.event_type, y.user_num, y.session_value, y.product_num, t.category,
                y.price_value, y.quantity_value, coalesce(t.currency, 'USD'), t.device,
                t.traffic_source, t.payment_method, t.search_query, encode(y.email_hash, 'hex')
            ), 0)
        end as payload_hash
    from pg_temp.stage as s
    cross join lateral (
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
                        and position('.' in t.price) in (0, length(t.price) - 1, length(t.price) - 2)
                        and length(split_part(ltrim(t.price, '-'), '.', 1)) between 1 and 15
                        then t.price::numeric
                end as price_num,
                case
                    when length(t.quantity) <= 9
                        and translate(t.quantity, '0123456789', '') in ('', '-')
                        and pg_input_is_valid(t.quantity, 'int4')
                        then t.quantity::int
                end as quantity_num,
                t.event_type in ('add_to_cart', 'remove_from_cart', 'wishlist', 'purchase')
                    as needs_user,
                t.event_type in ('add_to_cart', 'remove_from_cart', 'purchase') as is_cart,
                coalesce(t.event_type in ('view', 'search', 'wishlist'), false) as ignores_price
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
                when t.event_type not in (
                    'view', 'search', 'add_to_cart', 'remove_from_cart', 'wishlist', 'purchase'
                ) then 128
                else 0
            end
            | case
                when t.user_id is null then case when y.needs_user then 256 else 0 end
                when y.user_num is null or y.user_num <= 0 then 512
                else 0
            end
            | case
                when y.session_value is null then 1024
                when length(y.session_value) > 64 then 2048
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
                when t.category not in (
                    'electronics', 'clothing', 'home_garden', 'sports', 'books', 'beauty',
                    'toys', 'grocery'
                ) then 16384
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
            | case when not y.ignores_price and y.price_num > v_max_price then 524288 else 0 end
            | case
                when y.is_cart then
                    case
                        when y.quantity_num is null or y.quantity_num not between 1 and 1000
                            then 1048576
                        else 0
                    end
                when not y.ignores_price and t.quantity is not null and y.quantity_num is null
                    then 1048576
                else 0
            end
            | case
                when t.currency is not null and t.currency not in ('USD', 'EUR', 'GBP')
                    then 2097152
                else 0
            end
            | case
                when t.device is not null and t.device not in ('desktop', 'mobile', 'tablet')
                    then 4194304
                else 0
            end
            | case
                when t.traffic_source is not null and t.traffic_source not in (
                    'direct', 'search', 'social', 'email', 'ads', 'referral'
                ) then 8388608
                else 0
            end
            | case
                when t.payment_method is not null and t.payment_method not in (
                    'card', 'paypal', 'apple_pay', 'google_pay', 'bank_transfer'
                ) then 16777216
                else 0
            end
            | case when length(t.search_query) > 200 then 33554432 else 0 end
            as mask
        offset 0
    ) as r;
end
$$;

revoke all on function ingest.check_stage(jsonb) from public;
