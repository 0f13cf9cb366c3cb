-- Opening a batch: header check, schema version, column mapping, staging table.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- How a header maps onto a staging table: its schema version (from the registry), the COPY
-- column list, the DDL of the extra columns (x_N) and the expression that folds them into
-- extra. {schema_version, unknown_columns, reason} when the header cannot be loaded.
create function ingest.plan_stage(p_header text[])
returns jsonb
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_pipeline constant jsonb := ingest.pipeline_columns();
    v_schema jsonb;
    v_columns text[];
    v_renames jsonb;
    v_names text[];
    v_version int;
    v_missing text[];
    v_repeated text[];
    v_unknown text[];
    v_copy text[] := array['line_no'];
    v_extra text := '';
    v_extra_keys text[] := '{}';
    v_extra_values text[] := '{}';
    v_staged text;
begin
    -- the schema version and its columns come from the registry (ingest.schema_versions)
    v_names := array(select lower(btrim(h, e' \t\r\n')) from unnest(p_header) as h);
    v_schema := ingest.detect_schema(v_names);
    v_version := (v_schema ->> 'version')::int;
    v_columns := array(select jsonb_array_elements_text(v_schema -> 'columns'));
    v_renames := v_schema -> 'renames';
    v_missing := array(
        select c from jsonb_array_elements_text(v_schema -> 'required') as c
        where c <> all (v_names)
    );
    v_repeated := array(
        select n from unnest(v_names) as n where n = any (v_columns)
        group by n having count(*) > 1
    );
    v_unknown := array(select n from unnest(v_names) as n where n <> all (v_columns));
    if cardinality(v_missing) > 0 or cardinality(v_repeated) > 0 then
        return jsonb_build_object(
            'schema_version', v_version, 'unknown_columns', to_jsonb(v_unknown),
            'reason', case
                when cardinality(v_missing) > 0 then
                    format('missing required column(s) %s for schema version %s (header: %s)',
                        array_to_string(v_missing, ', '), v_version,
                        array_to_string(v_names, ','))
                else format('column(s) named twice: %s', array_to_string(v_repeated, ', '))
            end);
    end if;

    -- pipeline columns (or renamed ones) are staged by name; every other column (the
    -- version's own extension columns and unknown ones) as x_N, kept in extra by name
    for i in 1 .. cardinality(v_names) loop
        v_staged := coalesce(v_renames ->> v_names[i], v_names[i]);
        if v_names[i] = any (v_columns) and v_pipeline ? v_staged then
            v_copy := v_copy || quote_ident(v_staged);
        else
            v_copy := v_copy || format('x_%s', i);
            v_extra := v_extra || format(', x_%s text', i);
            v_extra_keys := v_extra_keys || coalesce(nullif(v_names[i], ''), format('column_%s', i));
            v_extra_values := v_extra_values || format('nullif(btrim(x_%s, e'' \t''), '''')', i);
        end if;
    end loop;

    return jsonb_build_object(
        'schema_version', v_version,
        'unknown_columns', to_jsonb(v_unknown),
        'copy_columns', array_to_string(v_copy, ', '),
        'extra', v_extra,
        'extra_json', case
            when cardinality(v_extra_keys) > 0 then format(
                'nullif(jsonb_strip_nulls(jsonb_object(%L::text[], array[%s]::text[])), ''{}'')',
                v_extra_keys, array_to_string(v_extra_values, ', '))
        end
    );
end
$$;

revoke all on function ingest.plan_stage(text[]) from public;

-- Checks a batch's header and creates its staging table (see ingest.create_stage) for COPY.
-- Returns {status: new|rejected|empty, batch_id, copy_columns, schema_version, ...}.
-- p_chunks > 0: the rows are staged by that many chunk sessions instead
-- (db/functions/ingest/chunks.sql), and no staging table is created here.
create function ingest.open_batch(
    p_source_kind text,
    p_source_name text,
    p_bytes bigint,
    p_header text[],
    p_chunks int default 0
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_plan jsonb;
    v_version int;
    v_unknown text[];
    v_batch_id bigint;
    v_table text;
    v_pinned int;
begin
    if p_source_kind not in ('file', 'http', 'kafka') then
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

    v_plan := ingest.plan_stage(p_header);
    v_version := (v_plan ->> 'schema_version')::int;
    v_unknown := array(select jsonb_array_elements_text(v_plan -> 'unknown_columns'));
    if v_plan ? 'reason' then
        return jsonb_build_object(
            'status', 'rejected', 'batch_id', v_batch_id, 'reason', v_plan ->> 'reason',
            'schema_version', v_version
        );
    end if;
    if p_chunks > 0 then
        -- chunk sessions stage and check the rows (ingest.open_chunk); this lock, held until
        -- this transaction ends, tells them (and ingest.sweep_scratch) the batch is alive
        perform pg_advisory_xact_lock(ingest.scratch_key(v_batch_id));
    else
        v_table := ingest.create_stage(v_batch_id, v_version, v_plan ->> 'extra',
            v_plan ->> 'extra_json');
    end if;

    perform set_config('pipeline.batch', (
        current_setting('pipeline.batch')::jsonb
        || jsonb_build_object('schema_version', v_version, 'unknown_columns', to_jsonb(v_unknown))
    )::text, true);
    -- a source pinned to another version (or a deprecated version) raises an alert
    v_pinned := ingest.check_source_schema(v_batch_id, p_source_kind, p_source_name,
        nullif(current_setting('pipeline.source_key', true), ''), v_version);

    return jsonb_build_object(
        'status', 'new',
        'batch_id', v_batch_id,
        'schema_version', v_version,
        'expected_schema_version', v_pinned,
        'unknown_columns', to_jsonb(v_unknown),
        'copy_columns', v_plan ->> 'copy_columns',
        'copy_table', v_table
    );
end
$$;

revoke all on function ingest.open_batch(text, text, bigint, text[], int) from public;
grant execute on function ingest.open_batch(text, text, bigint, text[], int) to pipeline_ingest;
