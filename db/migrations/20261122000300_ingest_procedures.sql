-- migrate:up
set local role pipeline_owner;

-- Analytics hook, called inside every batch transaction with the batch's new events in
-- pg_temp.batch_events; the analytics migrations replace its body.
create function analytics.apply_batch(p_batch_id bigint)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    perform p_batch_id;
end
$$;

-- Creates this batch's staging table pg_temp.stage (all text, dropped at commit) for COPY.
-- A temp table, not an unlogged one: creating and dropping an unlogged table per batch cost
-- ~7 ms more (its files and init fork), and parallel workers, which a regular table would
-- allow, cannot run the lateral check query anyway (measured: the Gather sits under it).
create function ingest.create_stage(p_batch_id bigint, p_schema_version int, p_extra text)
returns text
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    perform p_batch_id;
    drop table if exists pg_temp.stage;
    execute format(
        'create temp table stage (
            line_no bigint, event_id text, event_time text, event_type text, user_id text,
            session_id text, product_id text, category text, price text, quantity text,
            currency text, device text, traffic_source text, payment_method text,
            search_query text, user_email text,
            schema_version int not null default %s, src_batch_id bigint, ref_id bigint %s
        ) on commit drop', p_schema_version, coalesce(p_extra, ''));
    grant insert on pg_temp.stage to pipeline_ingest;
    return 'pg_temp.stage';
end
$$;

-- Drops a batch's staging table and the temp objects over it, at the end of the batch (so a
-- replay can follow a load in the same session).
create function ingest.drop_stage(p_batch_id bigint)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    perform p_batch_id;
    drop view if exists pg_temp.batch_events;
    drop table if exists pg_temp.stage;
end
$$;

-- Checks a batch's header and creates its staging table (see ingest.create_stage) for COPY.
-- Returns {status: new|rejected|empty, batch_id, copy_columns, schema_version, ...}.
create function ingest.open_batch(
    p_source_kind text,
    p_source_name text,
    p_bytes bigint,
    p_header text[]
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_known constant text[] := array[
        'event_id', 'event_time', 'event_type', 'user_id', 'session_id', 'product_id',
        'category', 'price', 'quantity', 'currency', 'device', 'traffic_source',
        'payment_method', 'search_query', 'user_email'
    ];
    v_v1 constant text[] := array[
        'event_id', 'event_time', 'event_type', 'user_id', 'product_id', 'category', 'price'
    ];
    v_v2 constant text[] := v_v1 || array['session_id', 'quantity'];
    v_names text[];
    v_version int;
    v_missing text[];
    v_repeated text[];
    v_unknown text[];
    v_copy text[] := array['line_no'];
    v_extra text := '';
    v_reason text;
    v_batch_id bigint;
    v_table text;
begin
    if p_source_kind not in ('file', 'http') then
        raise exception 'unknown source kind "%"', p_source_kind using errcode = '22023';
    end if;
    v_batch_id := nextval('ingest.batch_ids');

    perform set_config('pipeline.batch', jsonb_build_object(
        'batch_id', v_batch_id, 'kind', p_source_kind, 'name', p_source_name,
        'bytes', p_bytes, 'started_at', clock_timestamp()
    )::text, true);
    if p_header is null or cardinality(p_header) = 0 then
        return jsonb_build_object('status', 'empty', 'batch_id', v_batch_id);
    end if;

    v_names := array(select lower(btrim(h, e' \t\r\n')) from unnest(p_header) as h);
    v_version := case when v_names && (v_known[9:15] || array['session_id']) then 2 else 1 end;
    v_missing := array(
        select c from unnest(case v_version when 2 then v_v2 else v_v1 end) as c
        where c <> all (v_names)
    );
    v_repeated := array(
        select n from unnest(v_names) as n where n = any (v_known)
        group by n having count(*) > 1
    );
    v_unknown := array(select n from unnest(v_names) as n where n <> all (v_known));
    if cardinality(v_missing) > 0 or cardinality(v_repeated) > 0 then
        v_reason := case
            when cardinality(v_missing) > 0 then
                format('missing required column(s) %s for schema version %s (header: %s)',
                    array_to_string(v_missing, ', '), v_version, array_to_string(v_names, ','))
            else format('column(s) named twice: %s', array_to_string(v_repeated, ', '))
        end;
        return jsonb_build_object(
            'status', 'rejected', 'batch_id', v_batch_id, 'reason', v_reason,
            'schema_version', v_version
        );
    end if;

    for i in 1 .. cardinality(v_names) loop
        if v_names[i] = any (v_known) then
            v_copy := v_copy || quote_ident(v_names[i]);
        else
            v_copy := v_copy || format('x_%s', i);
            v_extra := v_extra || format(', x_%s text', i);
        end if;
    end loop;

    v_table := ingest.create_stage(v_batch_id, v_version, v_extra);

    perform set_config('pipeline.batch', (
        current_setting('pipeline.batch')::jsonb
        || jsonb_build_object('schema_version', v_version, 'unknown_columns', to_jsonb(v_unknown))
    )::text, true);

    return jsonb_build_object(
        'status', 'new',
        'batch_id', v_batch_id,
        'schema_version', v_version,
        'unknown_columns', to_jsonb(v_unknown),
        'copy_columns', array_to_string(v_copy, ', '),
        'copy_table', v_table
    );
end
$$;

-- Records a file's content hash in the ledger for the batch opened in this transaction.
-- Returns null when the claim is new; for content already in the ledger (under any name) it
-- returns the first file's name and status, and the caller rolls back. A concurrent claim of
-- the same content waits here until the other transaction ends.
create function ingest.claim_file(
    p_sha256 text, p_status text default 'loading', p_reason text default null
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_ctx jsonb := nullif(current_setting('pipeline.batch', true), '')::jsonb;
    v_prior ingest.files;
begin
    if v_ctx is null then
        raise exception 'no batch is open in this transaction'
            using errcode = '55000', hint = 'call ingest.open_batch first, in the same transaction';
    end if;
    insert into ingest.files (
        sha256, file_name, bytes, status, reason, batch_id, schema_version, unknown_columns,
        finished_at
    ) values (
        p_sha256, v_ctx ->> 'name', (v_ctx ->> 'bytes')::bigint, p_status, p_reason,
        (v_ctx ->> 'batch_id')::bigint, (v_ctx ->> 'schema_version')::int,
        array(select jsonb_array_elements_text(coalesce(v_ctx -> 'unknown_columns', '[]'))),
        case when p_status <> 'loading' then clock_timestamp() end
    )
    on conflict (sha256) do nothing;
    if found then
        perform set_config('pipeline.batch', (v_ctx || jsonb_build_object('sha256', p_sha256))::text, true);
        return null;
    end if;
    select * into v_prior from ingest.files where sha256 = p_sha256;
    return jsonb_build_object('original_name', v_prior.file_name, 'original_status', v_prior.status);
end
$$;

-- Creates the monthly partitions of core.events covering [p_from, p_to]. An advisory lock
-- makes concurrent ingesters create each partition once.
create function core.ensure_partitions(p_from timestamptz, p_to timestamptz)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_month timestamptz;
    v_name text;
begin
    if p_from is null then
        return;
    end if;
    v_month := date_trunc('month', p_from at time zone 'UTC') at time zone 'UTC';
    while v_month <= p_to loop
        v_name := 'events_' || to_char(v_month at time zone 'UTC', 'YYYY_MM');
        if to_regclass('core.' || v_name) is null then
            perform pg_advisory_xact_lock(hashtext('core.events partitions'));
            -- another batch may have created it while we waited for the lock; our catalog
            -- snapshot may not show it yet, so "already exists" is success too
            begin
                execute format(
                    'create table if not exists core.%I partition of core.events for values from (%L) to (%L)',
                    v_name, v_month, (v_month at time zone 'UTC' + interval '1 month') at time zone 'UTC'
                );
            exception when duplicate_table then
                null;
            end;
        end if;
        v_month := (v_month at time zone 'UTC' + interval '1 month') at time zone 'UTC';
    end loop;
end
$$;

-- The reason codes in contract order; bit i-1 of a reason mask stands for codes[i].
create function ingest.reason_codes()
returns text[]
language sql
immutable
parallel safe
return array[
    'missing_event_id', 'invalid_event_id', 'missing_event_time', 'invalid_event_time',
    'future_event_time', 'too_old_event_time', 'missing_event_type', 'invalid_event_type',
    'missing_user_id', 'invalid_user_id', 'missing_session_id', 'invalid_session_id',
    'missing_product_id', 'invalid_product_id', 'invalid_category', 'missing_price',
    'invalid_price', 'negative_price', 'zero_price', 'extreme_price', 'invalid_quantity',
    'invalid_currency', 'invalid_device', 'invalid_traffic_source', 'invalid_payment_method',
    'invalid_search_query'
];

-- A reason mask as the list of codes, in contract order.
create function ingest.reasons_of(p_mask int)
returns text[]
language sql
immutable
parallel safe
return array(
    select c.code
    from unnest(ingest.reason_codes()) with ordinality as c (code, bit)
    where p_mask & (1 << (c.bit::int - 1)) <> 0
    order by c.bit
);

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
            case
                when s.schema_version = 1 then
                    'v1-' || coalesce(t.user_id, 'guest') || '-'
                    || coalesce(to_char(x.ts, 'YYYY-MM-DD'), 'unknown')
                else t.session_id
            end as session_value,
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
                case
                    when length(t.user_id) <= 18 and translate(t.user_id, '0123456789', '') = ''
                        then t.user_id::bigint
                end as user_num,
                case
                    when length(t.product_id) <= 18
                        and translate(t.product_id, '0123456789', '') = ''
                        then t.product_id::bigint
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
                    when s.schema_version = 1 then 1
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

-- Dedupes pg_temp.checked against everything stored (first accepted wins) and inserts the
-- accepted rows into core.events. Leaves pg_temp.rejected (valid rows that were duplicates or
-- conflicting duplicates) and the view pg_temp.batch_events (this batch's new events).
create function ingest.accept_checked(p_batch_id bigint, out accepted bigint, out late bigint)
returns record
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
as $$
declare
    v_min timestamptz;
    v_max timestamptz;
    v_valid bigint;
    v_claimed bigint;
begin
    select min(event_time), max(event_time), count(*)
    into v_min, v_max, v_valid
    from pg_temp.checked where is_valid;
    perform core.ensure_partitions(v_min, v_max);

    -- The unique index decides: for each id the batch's first line goes in first, so within
    -- the batch and against every committed (or concurrently committing) batch the first
    -- accepted row wins. Ordering by id also gives concurrent batches one lock order (no
    -- deadlock on shared ids) and walks the btree in order.
    insert into core.event_ids (event_id, payload_hash, batch_id, line_no)
    select c.event_id, c.payload_hash, coalesce(nullif(c.src_batch_id, 0), p_batch_id), c.line_no
    from pg_temp.checked as c
    where c.is_valid
    order by c.event_id, c.line_no
    on conflict do nothing;
    get diagnostics v_claimed = row_count;

    drop table if exists pg_temp.rejected;
    create temp table rejected (
        line_no bigint, src_batch_id bigint, is_conflict boolean
    ) on commit drop;
    if v_claimed < v_valid then
        -- rare: some ids were taken; the taken ones are those whose winner is another row
        insert into pg_temp.rejected
        select c.line_no, c.src_batch_id, e.payload_hash <> c.payload_hash
        from pg_temp.checked as c
        join core.event_ids as e on e.event_id = c.event_id
        where c.is_valid
            and (e.batch_id, e.line_no)
            <> (coalesce(nullif(c.src_batch_id, 0), p_batch_id), c.line_no);
        analyze pg_temp.rejected;
    end if;

    drop view if exists pg_temp.batch_events;
    execute format($view$
        create temp view batch_events as
        select
            c.event_id, c.event_time, c.event_type, c.user_id, c.session_id, c.product_id,
            c.category, c.price, c.quantity,
            case when c.event_type = 'purchase' then c.price * c.quantity end as total_amount,
            c.currency, c.device, c.traffic_source, c.payment_method, c.search_query,
            c.email_hash, c.is_late, coalesce(nullif(c.src_batch_id, 0), %s) as batch_id,
            c.line_no, now() as ingested_at
        from pg_temp.checked as c
        where c.is_valid %s
    $view$, p_batch_id, case when v_claimed < v_valid then $anti$
            and not exists (
                select from pg_temp.rejected as r
                where r.line_no = c.line_no and r.src_batch_id = c.src_batch_id
            ) $anti$ else '' end);

    insert into core.events select * from pg_temp.batch_events;
    get diagnostics accepted = row_count;
    select count(*) into late from pg_temp.batch_events where is_late;
end
$$;

-- Processes one staged batch end to end: checks, dedupe, events, dead letter, metrics, alert
-- and ledger, all in the caller's transaction. p_expected_rows is the number of rows the
-- client streamed: a mismatch means COPY lost rows, and the whole batch is refused.
create function ingest.process_batch(
    p_batch_id bigint,
    p_expected_rows bigint,
    p_malformed jsonb,
    p_settings jsonb,
    p_copy_ms numeric default null
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
set work_mem = '256MB'
as $$
declare
    v_ctx jsonb := nullif(current_setting('pipeline.batch', true), '')::jsonb;
    v_started timestamptz := clock_timestamp();
    v_staged bigint;
    v_malformed bigint := coalesce(jsonb_array_length(p_malformed), 0);
    v_accepted bigint;
    v_late bigint;
    v_dups bigint;
    v_invalid bigint;
    v_rows bigint;
    v_rate numeric;
    v_min_rate numeric := coalesce((p_settings ->> 'min_validity_rate')::numeric, 0.95);
    v_reasons jsonb;
    v_alert boolean := false;
    v_invalid_rows jsonb;
begin
    if v_ctx is null or (v_ctx ->> 'batch_id')::bigint is distinct from p_batch_id then
        raise exception 'batch % was not opened in this transaction', p_batch_id
            using errcode = '55000', hint = 'call ingest.open_batch first, in the same transaction';
    end if;
    select count(*) into v_staged from pg_temp.stage;
    if v_staged + v_malformed <> p_expected_rows then
        raise exception 'batch % staged % rows (+% malformed) but the client sent %',
            p_batch_id, v_staged, v_malformed, p_expected_rows
            using errcode = '22000', hint = 'the COPY stream was cut short: retry the file';
    end if;

    perform ingest.check_stage(p_settings);
    select a.accepted, a.late into v_accepted, v_late from ingest.accept_checked(p_batch_id) as a;

    insert into quality.dead_letter (
        batch_id, source, line_no, reasons, event_id, event_time, event_type, user_id,
        session_id, product_id, category, price, quantity, currency, device, traffic_source,
        payment_method, search_query, user_email, schema_version
    )
    select
        p_batch_id, v_ctx ->> 'name', c.line_no,
        case
            when r.is_conflict then array['conflicting_duplicate']
            else ingest.reasons_of(c.mask)
        end,
        s.event_id, s.event_time, s.event_type, s.user_id, s.session_id, s.product_id,
        s.category, s.price, s.quantity, s.currency, s.device, s.traffic_source,
        s.payment_method, s.search_query, s.user_email, c.schema_version
    from pg_temp.checked as c
    join pg_temp.stage as s on s.line_no = c.line_no
    left join pg_temp.rejected as r on r.line_no = c.line_no
    where not c.is_valid or r.is_conflict;

    insert into quality.dead_letter (batch_id, source, line_no, reasons, raw_line, raw_bytes)
    select p_batch_id, v_ctx ->> 'name', (m ->> 'line_no')::bigint, array['malformed_row'],
        m ->> 'raw', decode(m ->> 'raw_base64', 'base64')
    from jsonb_array_elements(coalesce(p_malformed, '[]')) as m;

    select count(*) filter (where not is_conflict) into v_dups from pg_temp.rejected;
    -- the first 1000 invalid rows, for callers (the HTTP collector) that may not read the dead letter
    select coalesce(jsonb_agg(jsonb_build_object('line_no', d.line_no, 'reasons', d.reasons)
        order by d.line_no), '[]')
    into v_invalid_rows
    from (
        select line_no, reasons from quality.dead_letter
        where batch_id = p_batch_id order by line_no limit 1000
    ) as d;
    v_rows := v_staged + v_malformed;
    v_invalid := v_rows - v_accepted - v_dups;
    v_rate := case when v_accepted + v_invalid > 0
        then round(v_accepted::numeric / (v_accepted + v_invalid), 6) end;
    select coalesce(jsonb_object_agg(reason, n), '{}') into v_reasons
    from (
        select reason, count(*) as n
        from quality.dead_letter as d, unnest(d.reasons) as reason
        where d.batch_id = p_batch_id
        group by reason
    ) as x;

    insert into quality.batch_metrics (
        batch_id, source_kind, source_name, sha256, rows, valid, invalid, duplicates, late,
        validity_rate, reason_counts, bytes, copy_ms, process_ms, started_at, finished_at
    ) values (
        p_batch_id, v_ctx ->> 'kind', v_ctx ->> 'name', v_ctx ->> 'sha256', v_rows, v_accepted,
        v_invalid, v_dups, v_late, v_rate, v_reasons, (v_ctx ->> 'bytes')::bigint, p_copy_ms,
        round(extract(epoch from clock_timestamp() - v_started)::numeric * 1000, 1),
        (v_ctx ->> 'started_at')::timestamptz, clock_timestamp()
    );

    if v_rate < v_min_rate then
        v_alert := true;
        insert into quality.alerts (batch_id, kind, message, validity_rate, threshold)
        values (p_batch_id, 'low_validity', format(
            'batch %s (%s): validity %s%% is below %s%%', p_batch_id, v_ctx ->> 'name',
            round(v_rate * 100, 2), round(v_min_rate * 100, 2)
        ), v_rate, v_min_rate);
    end if;

    perform analytics.apply_batch(p_batch_id);
    perform ingest.drop_stage(p_batch_id);

    update ingest.files
    set status = case when v_rows = 0 then 'empty' else 'done' end,
        finished_at = clock_timestamp()
    where sha256 = v_ctx ->> 'sha256' and v_ctx ->> 'kind' = 'file';

    return jsonb_build_object(
        'batch_id', p_batch_id, 'rows', v_rows, 'valid', v_accepted, 'invalid', v_invalid,
        'duplicates', v_dups, 'late', v_late, 'validity_rate', v_rate, 'reasons', v_reasons,
        'alert', v_alert, 'invalid_rows', v_invalid_rows,
        'process_ms', round(extract(epoch from clock_timestamp() - v_started)::numeric * 1000, 1)
    );
end
$$;

-- Re-validates dead-lettered rows (optionally only some reasons or one source). Rows that now
-- pass move to core.events (dedupe still applies), the rest keep refreshed reasons; the
-- metrics of the batches they came from are adjusted so rows = valid + invalid + duplicates.
create function quality.replay(p_reasons text[], p_source text, p_settings jsonb)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
set work_mem = '256MB'
as $$
declare
    v_replay_id bigint := nextval('ingest.batch_ids');
    v_started timestamptz := clock_timestamp();
    v_rows bigint;
    v_moved bigint;
    v_dups bigint;
    v_unknown text[];
    v_table text;
begin
    v_unknown := array(
        select r from unnest(p_reasons) as r
        where r <> all (ingest.reason_codes() || array['conflicting_duplicate'])
    );
    if cardinality(v_unknown) > 0 then
        raise exception 'unknown reason code(s): %', array_to_string(v_unknown, ', ')
            using errcode = '22023', hint = 'use the codes of docs/contract.md section 2';
    end if;
    v_table := ingest.create_stage(v_replay_id, 2, null);

    -- malformed rows have no fields to re-check: they stay as they are
    execute format($insert$
    insert into %s
    select d.line_no, d.event_id, d.event_time, d.event_type, d.user_id, d.session_id,
        d.product_id, d.category, d.price, d.quantity, d.currency, d.device, d.traffic_source,
        d.payment_method, d.search_query, d.user_email, d.schema_version, d.batch_id,
        d.dead_letter_id
    from quality.dead_letter as d
    where d.raw_line is null
        and ($1 is null or d.reasons && $1)
        and ($2 is null or d.source = $2)
    order by d.dead_letter_id
    for update
    $insert$, v_table) using p_reasons, p_source;
    get diagnostics v_rows = row_count;

    perform ingest.check_stage(p_settings);
    select a.accepted into v_moved from ingest.accept_checked(v_replay_id) as a;
    select count(*) filter (where not is_conflict) into v_dups from pg_temp.rejected;

    -- per source batch: how many rows moved out of invalid, into valid or duplicates
    with outcome as (
        select c.ref_id, c.src_batch_id,
            case
                when r.line_no is null and c.is_valid then 'valid'
                when r.is_conflict is false then 'duplicate'
            end as moved_to,
            case
                when r.is_conflict then array['conflicting_duplicate']
                else ingest.reasons_of(c.mask)
            end as reasons
        from pg_temp.checked as c
        left join pg_temp.rejected as r
            on r.line_no = c.line_no and r.src_batch_id = c.src_batch_id
    ),

    adjust as (
        update quality.batch_metrics as m
        set valid = m.valid + a.to_valid,
            duplicates = m.duplicates + a.to_dup,
            invalid = m.invalid - a.to_valid - a.to_dup,
            validity_rate = case when m.valid + a.to_valid + m.invalid - a.to_valid - a.to_dup > 0
                then round((m.valid + a.to_valid)::numeric
                    / (m.valid + m.invalid - a.to_dup), 6) end
        from (
            select src_batch_id,
                count(*) filter (where moved_to = 'valid') as to_valid,
                count(*) filter (where moved_to = 'duplicate') as to_dup
            from outcome group by src_batch_id
        ) as a
        where m.batch_id = a.src_batch_id
    ),

    gone as (
        delete from quality.dead_letter as d
        using outcome as o
        where d.dead_letter_id = o.ref_id and o.moved_to is not null
    )

    update quality.dead_letter as d
    set reasons = o.reasons, replayed_at = clock_timestamp(), replay_count = d.replay_count + 1
    from outcome as o
    where d.dead_letter_id = o.ref_id and o.moved_to is null;

    -- the source batches' reason counts follow what is left in the dead letter
    update quality.batch_metrics as m
    set reason_counts = coalesce((
        select jsonb_object_agg(r.reason, r.n)
        from (
            select reason, count(*) as n
            from quality.dead_letter as d, unnest(d.reasons) as reason
            where d.batch_id = m.batch_id
            group by reason
        ) as r
    ), '{}')
    where m.batch_id in (select distinct src_batch_id from pg_temp.checked);

    insert into quality.replays (
        replay_id, reasons, source, rows, moved, duplicates, still_invalid, started_at, finished_at
    ) values (
        v_replay_id, p_reasons, p_source, v_rows, v_moved, v_dups, v_rows - v_moved - v_dups,
        v_started, clock_timestamp()
    );

    perform analytics.apply_batch(v_replay_id);
    perform ingest.drop_stage(v_replay_id);

    return jsonb_build_object(
        'replay_id', v_replay_id, 'rows', v_rows, 'moved', v_moved, 'duplicates', v_dups,
        'still_invalid', v_rows - v_moved - v_dups
    );
end
$$;

revoke all on function ingest.open_batch(text, text, bigint, text[]) from public;
revoke all on function ingest.claim_file(text, text, text) from public;
revoke all on function ingest.process_batch(bigint, bigint, jsonb, jsonb, numeric) from public;
revoke all on function quality.replay(text[], text, jsonb) from public;
revoke all on function ingest.check_stage(jsonb) from public;
revoke all on function ingest.create_stage(bigint, int, text) from public;
revoke all on function ingest.drop_stage(bigint) from public;
revoke all on function ingest.reasons_of(int) from public;
revoke all on function ingest.reason_codes() from public;
revoke all on function ingest.accept_checked(bigint) from public;
revoke all on function core.ensure_partitions(timestamptz, timestamptz) from public;
revoke all on function analytics.apply_batch(bigint) from public;
grant execute on function ingest.open_batch(text, text, bigint, text[]) to pipeline_ingest;
grant execute on function ingest.claim_file(text, text, text) to pipeline_ingest;
grant execute on function ingest.process_batch(bigint, bigint, jsonb, jsonb, numeric)
to pipeline_ingest;

reset role;

-- migrate:down
set local role pipeline_owner;
drop function if exists quality.replay(text[], text, jsonb);
drop function if exists ingest.process_batch(bigint, bigint, jsonb, jsonb, numeric);
drop function if exists ingest.accept_checked(bigint);
drop function if exists ingest.check_stage(jsonb);
drop function if exists ingest.drop_stage(bigint);
drop function if exists ingest.create_stage(bigint, int, text);
drop function if exists ingest.reasons_of(int);
drop function if exists ingest.reason_codes();
drop function if exists core.ensure_partitions(timestamptz, timestamptz);
drop function if exists ingest.claim_file(text, text, text);
drop function if exists ingest.open_batch(text, text, bigint, text[]);
drop function if exists analytics.apply_batch(bigint);
reset role;
