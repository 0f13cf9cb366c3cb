-- One staged batch end to end, in the caller's transaction.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- The dead letter rows of the lines the client's scanner found malformed (raw bytes kept).
create function ingest.dead_letter_malformed(p_batch_id bigint, p_name text, p_malformed jsonb)
returns void
language sql
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    insert into quality.dead_letter (batch_id, source, line_no, reasons, raw_line, raw_bytes)
    select p_batch_id, p_name, (m ->> 'line_no')::bigint, array['malformed_row'],
        m ->> 'raw', decode(m ->> 'raw_base64', 'base64')
    from jsonb_array_elements(coalesce(p_malformed, '[]')) as m;
end;

revoke all on function ingest.dead_letter_malformed(bigint, text, jsonb) from public;

-- The context ingest.open_batch set for p_batch_id in this transaction ({batch_id, kind,
-- name, sha256, bytes, started_at}); refuses a batch not opened in it.
create function ingest.opened_batch(p_batch_id bigint)
returns jsonb
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_ctx jsonb := nullif(current_setting('pipeline.batch', true), '')::jsonb;
begin
    if v_ctx is null or (v_ctx ->> 'batch_id')::bigint is distinct from p_batch_id then
        raise exception 'batch % was not opened in this transaction', p_batch_id
            using errcode = '55000', hint = 'call ingest.open_batch first, in the same transaction';
    end if;
    return v_ctx;
end
$$;

revoke all on function ingest.opened_batch(bigint) from public;

-- The end of every batch, once its events and dead letter rows are in (ingest.finish_batch for
-- one session, ingest.finish_slices for a file in slices): metrics, schema record, low-validity
-- alert, analytics, staging cleanup and the ledger's status, in the caller's transaction.
-- Counts are the batch's own: p_rows = rows staged + malformed; invalid = the rest.
create function ingest.close_batch(
    p_batch_id bigint,
    p_rows bigint,
    p_accepted bigint,
    p_duplicates bigint,
    p_late bigint,
    p_reasons jsonb,
    p_invalid_rows jsonb,
    p_settings jsonb,
    p_copy_ms numeric,
    p_started timestamptz,
    p_drop_stage boolean default true
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
set work_mem = '256MB'
set random_page_cost = 1.1
as $$
declare
    v_ctx jsonb := nullif(current_setting('pipeline.batch', true), '')::jsonb;
    v_invalid bigint := p_rows - p_accepted - p_duplicates;
    v_rate numeric;
    v_min_rate numeric := coalesce((p_settings ->> 'min_validity_rate')::numeric, 0.95);
    v_alert boolean := false;
begin
    v_rate := case when p_accepted + v_invalid > 0
        then round(p_accepted::numeric / (p_accepted + v_invalid), 6) end;

    insert into quality.batch_metrics (
        batch_id, source_kind, source_name, sha256, rows, valid, invalid, duplicates, late,
        validity_rate, reason_counts, bytes, copy_ms, process_ms, started_at, finished_at
    ) values (
        p_batch_id, v_ctx ->> 'kind', v_ctx ->> 'name', v_ctx ->> 'sha256', p_rows, p_accepted,
        v_invalid, p_duplicates, p_late, v_rate, p_reasons, (v_ctx ->> 'bytes')::bigint, p_copy_ms,
        round(extract(epoch from clock_timestamp() - p_started)::numeric * 1000, 1),
        (v_ctx ->> 'started_at')::timestamptz, clock_timestamp()
    );

    perform ingest.record_schema(p_batch_id);

    if v_rate < v_min_rate then
        v_alert := true;
        insert into quality.alerts (batch_id, kind, message, validity_rate, threshold)
        values (p_batch_id, 'low_validity', format(
            'batch %s (%s): validity %s%% is below %s%%', p_batch_id, v_ctx ->> 'name',
            round(v_rate * 100, 2), round(v_min_rate * 100, 2)
        ), v_rate, v_min_rate);
    end if;

    perform analytics.apply_batch(p_batch_id);
    if p_drop_stage then
        perform ingest.drop_stage(p_batch_id);
    else
        -- a batch in slices: the prepared slice transactions still read the scratch tables,
        -- which are dropped once they committed (ingest.sweep_scratch)
        perform ingest.drop_temp_stage();
    end if;

    update ingest.files
    set status = case when p_rows = 0 then 'empty' else 'done' end,
        finished_at = clock_timestamp()
    where sha256 = v_ctx ->> 'sha256' and v_ctx ->> 'kind' = 'file';

    return jsonb_build_object(
        'batch_id', p_batch_id, 'rows', p_rows, 'valid', p_accepted, 'invalid', v_invalid,
        'duplicates', p_duplicates, 'late', p_late, 'validity_rate', v_rate,
        'reasons', p_reasons, 'alert', v_alert, 'invalid_rows', p_invalid_rows,
        'process_ms', round(extract(epoch from clock_timestamp() - p_started)::numeric * 1000, 1)
    );
end
$$;

revoke all on function ingest.close_batch(bigint, bigint, bigint, bigint, bigint, jsonb, jsonb,
    jsonb, numeric, timestamptz, boolean) from public;

-- Processes one staged batch end to end: checks, dedupe, events, dead letter, metrics, alert
-- and ledger, all in the caller's transaction. p_expected_rows is the number of rows the
-- client streamed: a mismatch means COPY lost rows, and the whole batch is refused.
-- p_check false: pg_temp.checked was already built from pg_temp.stage (by the chunk sessions of
-- a parallel load, see ingest.process_chunks); only this schema's functions may say so.
create function ingest.finish_batch(
    p_batch_id bigint,
    p_expected_rows bigint,
    p_malformed jsonb,
    p_settings jsonb,
    p_copy_ms numeric,
    p_check boolean
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
set work_mem = '256MB'
-- a batch's lookups (dedupe against core.event_ids, the rollups' seen-visitor tables) probe
-- indexes whose pages are cached: priced as such, a small batch probes instead of hashing the
-- whole table (docs/measurements.md)
set random_page_cost = 1.1
as $$
declare
    v_ctx jsonb := ingest.opened_batch(p_batch_id);
    v_started timestamptz := clock_timestamp();
    v_staged bigint;
    v_malformed bigint := coalesce(jsonb_array_length(p_malformed), 0);
    v_accepted bigint;
    v_late bigint;
    v_dups bigint;
    v_reasons jsonb;
    v_invalid_rows jsonb;
begin
    select count(*) into v_staged from pg_temp.stage;
    if v_staged + v_malformed <> p_expected_rows then
        raise exception 'batch % staged % rows (+% malformed) but the client sent %',
            p_batch_id, v_staged, v_malformed, p_expected_rows
            using errcode = '22000', hint = 'the COPY stream was cut short: retry the file';
    end if;

    if p_check then
        perform ingest.check_stage(p_settings);
    end if;
    select a.accepted, a.late into v_accepted, v_late from ingest.accept_checked(p_batch_id) as a;

    insert into quality.dead_letter (
        batch_id, source, line_no, reasons, event_id, event_time, event_type, user_id,
        session_id, product_id, category, price, quantity, currency, device, traffic_source,
        payment_method, search_query, user_email_sealed, schema_version, extra
    )
    select
        p_batch_id, v_ctx ->> 'name', c.line_no, ingest.dead_letter_reasons(r.is_conflict, c.mask),
        s.event_id, s.event_time, s.event_type, s.user_id, s.session_id, s.product_id,
        s.category, s.price, s.quantity, s.currency, s.device, s.traffic_source,
        s.payment_method, s.search_query, core.seal_email(s.user_email), c.schema_version, s.extra
    from pg_temp.checked as c
    join pg_temp.stage as s on s.line_no = c.line_no
    left join pg_temp.rejected as r on r.line_no = c.line_no
    where not c.is_valid or r.is_conflict;

    perform ingest.dead_letter_malformed(p_batch_id, v_ctx ->> 'name', p_malformed);

    select count(*) filter (where not is_conflict) into v_dups from pg_temp.rejected;
    -- the first 1000 invalid rows, for callers (the HTTP collector) that may not read the dead letter
    select coalesce(jsonb_agg(jsonb_build_object('line_no', d.line_no, 'reasons', d.reasons)
        order by d.line_no), '[]')
    into v_invalid_rows
    from (
        select line_no, reasons from quality.dead_letter
        where batch_id = p_batch_id order by line_no limit 1000
    ) as d;
    select coalesce(jsonb_object_agg(reason, n), '{}') into v_reasons
    from (
        select reason, count(*) as n
        from quality.dead_letter as d, unnest(d.reasons) as reason
        where d.batch_id = p_batch_id
        group by reason
    ) as x;

    return ingest.close_batch(p_batch_id, v_staged + v_malformed, v_accepted, v_dups, v_late,
        v_reasons, v_invalid_rows, p_settings, p_copy_ms, v_started);
end
$$;

revoke all on function ingest.finish_batch(bigint, bigint, jsonb, jsonb, numeric, boolean)
    from public;

-- The entry point for a batch staged in pg_temp.stage (files, HTTP, Kafka): checks it, then
-- ingest.finish_batch.
create function ingest.process_batch(
    p_batch_id bigint,
    p_expected_rows bigint,
    p_malformed jsonb,
    p_settings jsonb,
    p_copy_ms numeric default null
)
returns jsonb
language sql
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    select ingest.finish_batch(
        p_batch_id, p_expected_rows, p_malformed, p_settings, p_copy_ms, true);
end;

revoke all on function ingest.process_batch(bigint, bigint, jsonb, jsonb, numeric) from public;
grant execute on function ingest.process_batch(bigint, bigint, jsonb, jsonb, numeric) to pipeline_ingest;
