-- Replay: re-validating dead-lettered rows (deno task replay).
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

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
        raise exception 'unknown reason code(s): %; valid codes: %', array_to_string(v_unknown, ', '),
            array_to_string(ingest.reason_codes() || array['conflicting_duplicate'], ', ')
            using errcode = '22023', hint = 'use the codes of docs/contract.md section 2';
    end if;
    -- one replay at a time (a row lock would do, but Citus refuses SELECT ... FOR UPDATE in
    -- distributed mode): a concurrent replay waits here, then sees what this one left
    perform pg_advisory_xact_lock(hashtextextended('quality.replay', 0));
    v_table := ingest.create_stage(v_replay_id, 2, null);

    -- malformed rows have no fields to re-check: they stay as they are
    execute format($insert$
    insert into %s
    select d.line_no, d.event_id, d.event_time, d.event_type, d.user_id, d.session_id,
        d.product_id, d.category, d.price, d.quantity, d.currency, d.device, d.traffic_source,
        d.payment_method, d.search_query, core.unseal_email(d.user_email_sealed), d.schema_version,
        d.batch_id, d.dead_letter_id, d.extra
    from quality.dead_letter as d
    where d.raw_line is null
        and ($1 is null or d.reasons && $1)
        and ($2 is null or d.source = $2)
    order by d.dead_letter_id
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

revoke all on function quality.replay(text[], text, jsonb) from public;
