-- migrate:up
-- The HTTP collector (deno task serve): idempotency records for POST /v1/events, and the
-- small read-only functions its /health, /metrics and dashboard use as pipeline_analyst
-- (which cannot read quality.* or ingest.* directly).
set local role pipeline_owner;

-- One row per (client, Idempotency-Key). It is inserted (status null) at the start of the
-- batch transaction and completed in that same transaction, so the record and the batch
-- commit or roll back together; a concurrent request with the same key waits on the primary
-- key until the first transaction ends, then reads its response.
create table ingest.http_idempotency (
    client text not null check (client ~ '^[0-9a-f]{16,64}$'),
    idempotency_key text not null check (length(idempotency_key) between 1 and 255),
    request_sha256 text not null check (request_sha256 ~ '^[0-9a-f]{64}$'),
    batch_id bigint,
    status int check (status between 100 and 599),
    body text,
    created_at timestamptz not null default now(),
    primary key (client, idempotency_key)
);
create index http_idempotency_created_at_idx on ingest.http_idempotency (created_at);

-- Claims a key for this transaction. Returns null when the claim is new (or the old record
-- is older than p_ttl and is taken over); otherwise the stored response:
-- {status, body, batch_id, request_sha256, created_at}.
create function ingest.http_claim(
    p_client text, p_key text, p_request_sha256 text, p_ttl interval
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_row ingest.http_idempotency;
begin
    insert into ingest.http_idempotency (client, idempotency_key, request_sha256)
    values (p_client, p_key, p_request_sha256)
    on conflict do nothing;
    if found then
        return null;
    end if;
    update ingest.http_idempotency
    set request_sha256 = p_request_sha256, batch_id = null, status = null, body = null,
        created_at = now()
    where client = p_client and idempotency_key = p_key and created_at < now() - p_ttl;
    if found then
        return null;
    end if;
    select * into v_row
    from ingest.http_idempotency
    where client = p_client and idempotency_key = p_key;
    return jsonb_build_object(
        'status', v_row.status, 'body', v_row.body, 'batch_id', v_row.batch_id,
        'request_sha256', v_row.request_sha256, 'created_at', v_row.created_at
    );
end
$$;

-- Stores the response for a key claimed in this transaction.
create function ingest.http_store(
    p_client text, p_key text, p_status int, p_body text, p_batch_id bigint
)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    update ingest.http_idempotency
    set status = p_status, body = p_body, batch_id = p_batch_id
    where client = p_client and idempotency_key = p_key and status is null;
    if not found then
        raise exception 'idempotency key "%" was not claimed in this transaction', p_key
            using errcode = '55000', hint = 'call ingest.http_claim first, in the same transaction';
    end if;
end
$$;

-- Deletes records older than p_ttl; returns how many.
create function ingest.http_purge(p_ttl interval)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_n bigint;
begin
    delete from ingest.http_idempotency where created_at < now() - p_ttl;
    get diagnostics v_n = row_count;
    return v_n;
end
$$;

-- Pipeline totals for /health and /metrics: batches, rows by outcome, the last batch, files
-- by ledger status.
create function analytics.collector_status()
returns jsonb
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    select jsonb_build_object(
        'batches', t.batches, 'rows', t.rows, 'valid', t.valid, 'invalid', t.invalid,
        'duplicates', t.duplicates, 'late', t.late,
        'last_batch', (
            select jsonb_build_object(
                'batch_id', m.batch_id, 'source_kind', m.source_kind,
                'finished_at', m.finished_at, 'rows', m.rows,
                'validity_rate', m.validity_rate,
                'age_seconds', round(extract(epoch from now() - m.finished_at)::numeric, 3)
            )
            from quality.batch_metrics as m
            order by m.finished_at desc, m.batch_id desc
            limit 1
        ),
        'files', (
            select coalesce(jsonb_object_agg(f.status, f.n), '{}')
            from (select status, count(*) as n from ingest.files group by status) as f
        )
    )
    from (
        select count(*) as batches, coalesce(sum(rows), 0) as rows,
            coalesce(sum(valid), 0) as valid, coalesce(sum(invalid), 0) as invalid,
            coalesce(sum(duplicates), 0) as duplicates, coalesce(sum(late), 0) as late
        from quality.batch_metrics
    ) as t;
end;

-- The last p_limit batches (newest last) for the validity chart.
create function analytics.collector_batches(p_limit int)
returns table (
    batch_id bigint, source_kind text, finished_at timestamptz, rows bigint, valid bigint,
    invalid bigint, duplicates bigint, validity_rate numeric
)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    select b.batch_id, b.source_kind, b.finished_at, b.rows, b.valid, b.invalid, b.duplicates,
        b.validity_rate
    from (
        select m.batch_id, m.source_kind, m.finished_at, m.rows, m.valid, m.invalid,
            m.duplicates, m.validity_rate
        from quality.batch_metrics as m
        order by m.finished_at desc, m.batch_id desc
        limit least(greatest(p_limit, 0), 1000)
    ) as b
    order by b.finished_at, b.batch_id;
end;

-- Dead-letter reason counts of the batches finished in the last p_hours (counts only, from
-- quality.batch_metrics.reason_counts: no dead-letter row leaves the database).
create function analytics.collector_reasons(p_hours int)
returns table (reason text, rows bigint)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    select r.key, sum(r.value::bigint)::bigint
    from quality.batch_metrics as m, jsonb_each_text(m.reason_counts) as r
    where m.finished_at >= now() - make_interval(hours => p_hours)
    group by r.key
    order by 2 desc, 1;
end;

-- Stored events per minute and type whose event_time lies in the last p_minutes (at most a
-- day, so only the newest partitions are read).
create function analytics.collector_events_per_minute(p_minutes int)
returns table (minute timestamptz, event_type text, events bigint)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    select date_trunc('minute', e.event_time), e.event_type, count(*)
    from core.events as e
    where e.event_time >= date_trunc('minute', now())
            - make_interval(mins => least(greatest(p_minutes, 1), 1440) - 1)
        and e.event_time < now() + interval '1 hour'
    group by 1, 2
    order by 1, 2;
end;

revoke all on table ingest.http_idempotency from public;
revoke all on function ingest.http_claim(text, text, text, interval) from public;
revoke all on function ingest.http_store(text, text, int, text, bigint) from public;
revoke all on function ingest.http_purge(interval) from public;
revoke all on function analytics.collector_status() from public;
revoke all on function analytics.collector_batches(int) from public;
revoke all on function analytics.collector_reasons(int) from public;
revoke all on function analytics.collector_events_per_minute(int) from public;
grant execute on function ingest.http_claim(text, text, text, interval) to pipeline_ingest;
grant execute on function ingest.http_store(text, text, int, text, bigint) to pipeline_ingest;
grant execute on function ingest.http_purge(interval) to pipeline_ingest;
grant execute on function analytics.collector_status() to pipeline_analyst;
grant execute on function analytics.collector_batches(int) to pipeline_analyst;
grant execute on function analytics.collector_reasons(int) to pipeline_analyst;
grant execute on function analytics.collector_events_per_minute(int) to pipeline_analyst;

reset role;

-- migrate:down
set local role pipeline_owner;
drop function if exists analytics.collector_events_per_minute(int);
drop function if exists analytics.collector_reasons(int);
drop function if exists analytics.collector_batches(int);
drop function if exists analytics.collector_status();
drop function if exists ingest.http_purge(interval);
drop function if exists ingest.http_store(text, text, int, text, bigint);
drop function if exists ingest.http_claim(text, text, text, interval);
drop table if exists ingest.http_idempotency;
reset role;
