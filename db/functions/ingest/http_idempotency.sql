-- Idempotency-Key records of the HTTP collector (POST /v1/events).
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

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

revoke all on function ingest.http_claim(text, text, text, interval) from public;
revoke all on function ingest.http_store(text, text, int, text, bigint) from public;
revoke all on function ingest.http_purge(interval) from public;
grant execute on function ingest.http_claim(text, text, text, interval) to pipeline_ingest;
grant execute on function ingest.http_store(text, text, int, text, bigint) to pipeline_ingest;
grant execute on function ingest.http_purge(interval) to pipeline_ingest;
