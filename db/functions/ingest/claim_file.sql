-- The file ledger: one row per distinct file content.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

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

revoke all on function ingest.claim_file(text, text, text) from public;
grant execute on function ingest.claim_file(text, text, text) to pipeline_ingest;
