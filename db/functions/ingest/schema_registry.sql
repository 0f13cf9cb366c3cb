-- The schema registry (docs/schema-registry.md): which version a header is, how rows of older
-- versions are upgraded to the pipeline's columns, registering a new version (refused when it
-- would break compatibility), source pins, and what is kept of unknown columns.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- The pipeline's own columns (core.events, the staging table) and their types. A schema
-- version may name others: their values are kept in extra, as text.
create function ingest.pipeline_columns()
returns jsonb
language sql
immutable
set search_path = pg_catalog, pg_temp
return '{"event_id": "uuid", "event_time": "timestamp", "event_type": "text",
    "user_id": "integer", "session_id": "text", "product_id": "integer", "category": "text",
    "price": "decimal", "quantity": "integer", "currency": "text", "device": "text",
    "traffic_source": "text", "payment_method": "text", "search_query": "text",
    "user_email": "text"}'::jsonb;

-- The version a header (lowercased, trimmed names) is: the highest registered version whose
-- own columns (named by no earlier version) the header names; else the lowest version.
-- Returns the version's registry row as jsonb.
create function ingest.detect_schema(p_names text[])
returns jsonb
language sql
stable
set search_path = pg_catalog, pg_temp
begin atomic
    select to_jsonb(v)
    from ingest.schema_versions as v
    cross join lateral (
        select exists (
            select from unnest(v.columns) as c
            where c = any (p_names)
                and not exists (
                    select from ingest.schema_versions as u
                    where u.version < v.version and c = any (u.columns)
                )
        ) as named
    ) as m
    order by m.named desc, case when m.named then -v.version else v.version end
    limit 1;
end;

-- The SQL expression (over the staging table's columns) of one upgrade rule, for a version
-- whose staged columns are p_staged. Only two safe forms exist, and every piece of them is
-- quoted here, so a registry row can never inject SQL:
--   {"const": "text"}                       a constant
--   {"template": "v1-{user_id|guest}-{event_date|unknown}"}
--       literal text with placeholders: {column} or {column|fallback} (the trimmed value of a
--       staged column, fallback when empty) and {event_date} (UTC date of event_time)
-- Raises 22023 naming what is wrong.
create function ingest.upgrade_expression(p_column text, p_rule jsonb, p_staged text[])
returns text
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_template text;
    v_token text[];
    v_name text;
    v_fallback text;
    v_parts text[] := '{}';
begin
    if jsonb_typeof(p_rule) <> 'object'
        or (select count(*) from jsonb_object_keys(p_rule)) <> 1
        or not (p_rule ? 'const' or p_rule ? 'template') then
        raise exception 'upgrade rule for "%" must be {"const": "..."} or {"template": "..."} (got %)',
            p_column, p_rule using errcode = '22023';
    end if;
    if p_rule ? 'const' then
        if jsonb_typeof(p_rule -> 'const') <> 'string' or length(p_rule ->> 'const') > 200 then
            raise exception 'upgrade rule for "%": "const" must be a string of at most 200 characters',
                p_column using errcode = '22023';
        end if;
        return format('%L::text', p_rule ->> 'const');
    end if;
    v_template := p_rule ->> 'template';
    if jsonb_typeof(p_rule -> 'template') <> 'string' or length(v_template) > 200
        or v_template = '' then
        raise exception 'upgrade rule for "%": "template" must be a non-empty string of at most 200 characters',
            p_column using errcode = '22023';
    end if;
    if regexp_replace(v_template, '\{[^{}]*\}', '', 'g') ~ '[{}]' then
        raise exception 'upgrade rule for "%": unbalanced { or } in template "%"',
            p_column, v_template using errcode = '22023';
    end if;
    for v_token in select regexp_matches(v_template, '(\{[^{}]*\}|[^{}]+)', 'g') loop
        if left(v_token[1], 1) <> '{' then
            v_parts := v_parts || format('%L', v_token[1]);
            continue;
        end if;
        if v_token[1] !~ '^\{[a-z][a-z0-9_]*(\|[A-Za-z0-9_.:-]*)?\}$' then
            raise exception 'upgrade rule for "%": placeholder % must be {column} or {column|fallback} (fallback: letters, digits, _ . : -)',
                p_column, v_token[1] using errcode = '22023';
        end if;
        v_name := substring(v_token[1] from '^\{([a-z][a-z0-9_]*)');
        v_fallback := coalesce(substring(v_token[1] from '\|([^}]*)\}$'), '');
        if v_name = 'event_date' then
            v_parts := v_parts || format(
                'coalesce(case when pg_input_is_valid(btrim(event_time, e'' \t''), ''timestamptz'') then to_char(btrim(event_time, e'' \t'')::timestamptz, ''YYYY-MM-DD'') end, %L)',
                v_fallback);
        elsif v_name = any (p_staged) then
            v_parts := v_parts || format(
                'coalesce(nullif(btrim(%I, e'' \t''), ''''), %L)', v_name, v_fallback);
        else
            raise exception 'upgrade rule for "%": placeholder {%} names no column this version sends (it sends %; or use {event_date})',
                p_column, v_name, array_to_string(p_staged, ', ') using errcode = '22023';
        end if;
    end loop;
    return format('concat(%s)', array_to_string(v_parts, ', '));
end
$$;

-- The pipeline columns a version fills from its header (its own and renamed ones).
create function ingest.staged_columns(p_version ingest.schema_versions)
returns text[]
language sql
immutable
set search_path = pg_catalog, pg_temp
begin atomic
    select coalesce(array_agg(distinct coalesce(p_version.renames ->> c, c)), '{}')
    from unnest(p_version.columns) as c
    where ingest.pipeline_columns() ? coalesce(p_version.renames ->> c, c);
end;

-- Upgrades the staged rows of older versions to the pipeline's columns with the registry's
-- rules (ingest.schema_versions.upgrade), in place; called first by ingest.check_stage, so
-- files, HTTP batches and replays all go through it.
create function ingest.upgrade_stage()
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
as $$
declare
    v ingest.schema_versions;
    v_set text[];
    v_rule record;
    v_tables text[];
    v_table text;
begin
    -- pg_temp.stage is a table, or (a batch in chunks) a view over the chunks' tables: those
    -- are updated (Citus refuses an update through a view over its tables)
    if (select relkind from pg_class where oid = 'pg_temp.stage'::regclass) = 'v' then
        v_tables := array(
            select distinct d.refobjid::regclass::text
            from pg_rewrite as r
            join pg_depend as d on d.classid = 'pg_rewrite'::regclass and d.objid = r.oid
            where r.ev_class = 'pg_temp.stage'::regclass
                and d.refclassid = 'pg_class'::regclass and d.refobjid <> r.ev_class
            order by 1);
    else
        v_tables := array['pg_temp.stage'];
    end if;
    for v in
        select * from ingest.schema_versions where upgrade <> '{}' order by version
    loop
        -- a batch of one session holds no row of this version (the usual case): no update to
        -- plan
        if v_tables = array['pg_temp.stage']
            and not exists (select from pg_temp.stage where schema_version = v.version) then
            continue;
        end if;
        v_set := '{}';
        for v_rule in select key, value from jsonb_each(v.upgrade) order by key loop
            v_set := v_set || format('%I = %s', v_rule.key,
                ingest.upgrade_expression(v_rule.key, v_rule.value, ingest.staged_columns(v)));
        end loop;
        foreach v_table in array v_tables loop
            execute format('update %s set %s where schema_version = %s',
                v_table, array_to_string(v_set, ', '), v.version);
        end loop;
    end loop;
end
$$;

-- Registers a new schema version from its definition (the JSON of deno task schema add):
--   {"version": 3, "description": "...", "extends": 2,
--    "add": [{"name": "coupon_code", "type": "text", "required": false}],
--    "drop": ["search_query"], "renames": {"device_type": "device"},
--    "upgrade": {"currency": {"const": "EUR"}}}
-- or "columns": [{"name", "type", "required"}, ...] instead of extends/add/drop. Refuses
-- (22023, naming the reason) a version that would break compatibility: a column required by
-- the latest version removed, a column retyped, no new column to tell its headers apart, a
-- wrong number, an unsafe upgrade rule. Returns the registered row.
create function ingest.register_schema_version(p_definition jsonb)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_def jsonb := p_definition;
    v_version int;
    v_latest ingest.schema_versions;
    v_base ingest.schema_versions;
    v_new ingest.schema_versions;
    v_cols jsonb;
    v_col jsonb;
    v_name text;
    v_type text;
    v_pipeline jsonb := ingest.pipeline_columns();
    v_types constant text[] := array['text', 'integer', 'decimal', 'uuid', 'timestamp', 'boolean'];
    v_columns text[] := '{}';
    v_typemap jsonb := '{}';
    v_required text[] := '{}';
    v_renames jsonb := coalesce(p_definition -> 'renames', '{}');
    v_upgrade jsonb := coalesce(p_definition -> 'upgrade', '{}');
    v_bad text[];
    v_key text;
    v_prior record;
    v_prefix text;
begin
    if v_def is null or jsonb_typeof(v_def) <> 'object' then
        raise exception 'a schema definition must be a JSON object' using errcode = '22023';
    end if;
    v_bad := array(select k from jsonb_object_keys(v_def) as k where k <> all (array[
        'version', 'description', 'extends', 'add', 'drop', 'columns', 'renames', 'upgrade',
        'status']));
    if cardinality(v_bad) > 0 then
        raise exception 'unknown key(s) in the schema definition: %', array_to_string(v_bad, ', ')
            using errcode = '22023',
            hint = 'use version, description, extends, add, drop, columns, renames, upgrade';
    end if;
    select * into v_latest from ingest.schema_versions order by version desc limit 1;
    if jsonb_typeof(v_def -> 'version') <> 'number' or (v_def ->> 'version') !~ '^[0-9]+$' then
        raise exception 'the schema definition needs "version": %, the next version number',
            v_latest.version + 1 using errcode = '22023';
    end if;
    v_version := (v_def ->> 'version')::int;
    v_prefix := format('schema version %s refused: ', v_version);
    if exists (select from ingest.schema_versions where version = v_version) then
        raise exception '%version % is already registered (versions are immutable: register % instead)',
            v_prefix, v_version, v_latest.version + 1 using errcode = '22023';
    end if;
    if v_version <> v_latest.version + 1 then
        raise exception '%the next version number is %', v_prefix, v_latest.version + 1
            using errcode = '22023';
    end if;

    -- the column list: explicit, or a base version with columns added and dropped
    if v_def ? 'columns' then
        if v_def ?| array['extends', 'add', 'drop'] then
            raise exception '%give either "columns" or "extends" with "add"/"drop", not both',
                v_prefix using errcode = '22023';
        end if;
        v_cols := v_def -> 'columns';
    else
        select * into v_base from ingest.schema_versions
        where version = coalesce((v_def ->> 'extends')::int, v_latest.version);
        if not found then
            raise exception '%"extends": % is not a registered version', v_prefix,
                v_def ->> 'extends' using errcode = '22023';
        end if;
        if v_def ? 'drop' and jsonb_typeof(v_def -> 'drop') <> 'array' then
            raise exception '%"drop" must be an array of column names', v_prefix
                using errcode = '22023';
        end if;
        select coalesce(jsonb_agg(jsonb_build_object(
            'name', c, 'type', v_base.types ->> c, 'required', c = any (v_base.required)
        ) order by o), '[]')
        into v_cols
        from unnest(v_base.columns) with ordinality as x (c, o)
        where not coalesce(v_def -> 'drop', '[]') ? c;
        if v_def ? 'add' and jsonb_typeof(v_def -> 'add') <> 'array' then
            raise exception '%"add" must be an array of {"name", "type", "required"}', v_prefix
                using errcode = '22023';
        end if;
        v_cols := v_cols || coalesce(v_def -> 'add', '[]');
    end if;
    if jsonb_typeof(v_cols) <> 'array' or jsonb_array_length(v_cols) = 0 then
        raise exception '%"columns" must be a non-empty array', v_prefix using errcode = '22023';
    end if;

    for v_col in select value from jsonb_array_elements(v_cols) loop
        v_name := v_col ->> 'name';
        v_type := coalesce(v_col ->> 'type', 'text');
        if jsonb_typeof(v_col) <> 'object' or v_name is null
            or v_name !~ '^[a-z][a-z0-9_]{0,62}$' then
            raise exception '%column % needs a "name" of lowercase letters, digits and _ (starting with a letter)',
                v_prefix, v_col using errcode = '22023';
        end if;
        if v_name in ('line_no', 'schema_version', 'src_batch_id', 'ref_id', 'extra')
            or v_name ~ '^x_[0-9]+$' then
            raise exception '%column name "%" is reserved by the pipeline', v_prefix, v_name
                using errcode = '22023';
        end if;
        if v_type <> all (v_types) then
            raise exception '%column "%" has type "%"; types are %', v_prefix, v_name, v_type,
                array_to_string(v_types, ', ') using errcode = '22023';
        end if;
        if v_name = any (v_columns) then
            raise exception '%column "%" is listed twice', v_prefix, v_name using errcode = '22023';
        end if;
        v_columns := v_columns || v_name;
        v_typemap := v_typemap || jsonb_build_object(v_name, v_type);
        if coalesce((v_col ->> 'required')::boolean, false) then
            v_required := v_required || v_name;
        end if;
    end loop;

    -- renames: a header name carrying a pipeline column of the same type
    if jsonb_typeof(v_renames) <> 'object' then
        raise exception '%"renames" must be an object {"header name": "pipeline column"}',
            v_prefix using errcode = '22023';
    end if;
    for v_key, v_name in select key, value #>> '{}' from jsonb_each(v_renames) loop
        if v_key <> all (v_columns) then
            raise exception '%renamed column "%" is not one of this version''s columns', v_prefix,
                v_key using errcode = '22023';
        end if;
        if not v_pipeline ? v_name or v_pipeline ? v_key or v_name = any (v_columns) then
            raise exception '%"renames": "%" must map a new name to a pipeline column this version does not also name (pipeline columns: %)',
                v_prefix, v_key, (select string_agg(k, ', ') from jsonb_object_keys(v_pipeline) as k)
                using errcode = '22023';
        end if;
        if v_typemap ->> v_key <> v_pipeline ->> v_name then
            raise exception '%column "%" (renamed "%") is retyped from % to %', v_prefix, v_name,
                v_key, v_pipeline ->> v_name, v_typemap ->> v_key using errcode = '22023';
        end if;
    end loop;

    -- compatibility: a name keeps its type forever
    for v_name in select unnest(v_columns) loop
        if v_pipeline ? v_name and v_pipeline ->> v_name <> v_typemap ->> v_name then
            raise exception '%column "%" is retyped from % to % (pipeline columns keep their type)',
                v_prefix, v_name, v_pipeline ->> v_name, v_typemap ->> v_name
                using errcode = '22023';
        end if;
        select s.version, s.types ->> v_name as type into v_prior
        from ingest.schema_versions as s
        where s.types ? v_name and s.types ->> v_name <> v_typemap ->> v_name
        order by s.version desc limit 1;
        if found then
            raise exception '%column "%" is retyped from % (version %) to %', v_prefix, v_name,
                v_prior.type, v_prior.version, v_typemap ->> v_name using errcode = '22023';
        end if;
    end loop;
    -- compatibility: what the latest version requires stays (under its name or renamed)
    v_bad := array(
        select r from unnest(v_latest.required) as r
        where r <> all (v_columns)
            and not exists (
                select from jsonb_each_text(v_renames) as m where m.value = coalesce(
                    v_latest.renames ->> r, r)
            )
    );
    if cardinality(v_bad) > 0 then
        raise exception '%removes required column(s) % of version % (files of version % could not be validated)',
            v_prefix, array_to_string(v_bad, ', '), v_latest.version, v_version
            using errcode = '22023';
    end if;
    -- a header must be told apart from older versions' headers
    if not exists (
        select from unnest(v_columns) as c
        where not exists (select from ingest.schema_versions as s where c = any (s.columns))
    ) then
        raise exception '%it adds no column that earlier versions lack, so its headers could not be told apart (add a column, or pin sources to it)',
            v_prefix using errcode = '22023';
    end if;

    v_new := row(
        v_version, v_columns, v_typemap, v_required, v_renames, v_upgrade,
        coalesce(v_def ->> 'status', 'active'), coalesce(v_def ->> 'description', ''),
        now(), session_user
    )::ingest.schema_versions;
    if v_new.status not in ('active', 'deprecated') then
        raise exception '%"status" must be active or deprecated', v_prefix using errcode = '22023';
    end if;
    -- upgrade rules: for pipeline columns this version does not send, in a safe form
    if jsonb_typeof(v_upgrade) <> 'object' then
        raise exception '%"upgrade" must be an object {"pipeline column": rule}', v_prefix
            using errcode = '22023';
    end if;
    for v_key in select jsonb_object_keys(v_upgrade) loop
        if not v_pipeline ? v_key or v_key = any (ingest.staged_columns(v_new)) then
            raise exception '%"upgrade" names "%", which is not a pipeline column this version lacks',
                v_prefix, v_key using errcode = '22023';
        end if;
        begin
            perform ingest.upgrade_expression(v_key, v_upgrade -> v_key, ingest.staged_columns(v_new));
        exception when invalid_parameter_value then
            raise exception '%', v_prefix || sqlerrm using errcode = '22023';
        end;
    end loop;

    insert into ingest.schema_versions select v_new.*;
    return to_jsonb(v_new);
end
$$;

-- Marks a version active or deprecated (a deprecated version still loads, with an alert).
create function ingest.set_schema_status(p_version int, p_status text)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_row ingest.schema_versions;
begin
    if p_status not in ('active', 'deprecated') then
        raise exception 'status must be active or deprecated (got "%")', p_status
            using errcode = '22023';
    end if;
    update ingest.schema_versions set status = p_status where version = p_version
    returning * into v_row;
    if not found then
        raise exception 'schema version % is not registered', p_version using errcode = '22023';
    end if;
    return to_jsonb(v_row);
end
$$;

-- Pins a source to a version (p_version null: removes the pin). Sources: file (a file name
-- prefix), http (the client id the collector logs for an API key), kafka (a topic).
create function ingest.pin_source_schema(
    p_kind text, p_match text, p_version int, p_note text default ''
)
returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_version is null then
        delete from ingest.source_schemas where source_kind = p_kind and source_match = p_match;
        return jsonb_build_object('unpinned', found);
    end if;
    if not exists (select from ingest.schema_versions where version = p_version) then
        raise exception 'schema version % is not registered', p_version using errcode = '22023';
    end if;
    insert into ingest.source_schemas (source_kind, source_match, version, note)
    values (p_kind, p_match, p_version, coalesce(p_note, ''))
    on conflict (source_kind, source_match)
    do update set version = excluded.version, note = excluded.note, created_at = now();
    return jsonb_build_object('source_kind', p_kind, 'source_match', p_match,
        'version', p_version);
end
$$;

-- Checks an opened batch against its source's pin and its version's status: a mismatch or a
-- deprecated version writes a quality.alerts row (the batch still loads, with the version its
-- header declares). Returns the pinned version, or null.
create function ingest.check_source_schema(
    p_batch_id bigint, p_kind text, p_name text, p_source_key text, p_version int
)
returns int
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_pin ingest.source_schemas;
    v_status text;
begin
    select * into v_pin from ingest.source_schemas as s
    where s.source_kind = p_kind
        and case p_kind
            when 'file' then starts_with(p_name, s.source_match)
            else s.source_match = p_source_key
        end
    order by length(s.source_match) desc
    limit 1;
    if found and v_pin.version <> p_version then
        insert into quality.alerts (batch_id, kind, message)
        values (p_batch_id, 'schema_mismatch', format(
            'batch %s (%s): source %s "%s" is pinned to schema version %s but sent version %s',
            p_batch_id, p_name, p_kind, v_pin.source_match, v_pin.version, p_version));
    end if;
    select status into v_status from ingest.schema_versions where version = p_version;
    if v_status = 'deprecated' then
        insert into quality.alerts (batch_id, kind, message)
        values (p_batch_id, 'deprecated_schema', format(
            'batch %s (%s): schema version %s is deprecated', p_batch_id, p_name, p_version));
    end if;
    return v_pin.version;
end
$$;

-- Records the batch's schema version and unknown columns in its metrics row.
create function ingest.record_schema(p_batch_id bigint)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_ctx jsonb := nullif(current_setting('pipeline.batch', true), '')::jsonb;
begin
    update quality.batch_metrics
    set schema_version = (v_ctx ->> 'schema_version')::int,
        unknown_columns = array(
            select jsonb_array_elements_text(coalesce(v_ctx -> 'unknown_columns', '[]')))
    where batch_id = p_batch_id;
end
$$;

-- What core.events keeps of a row's extra values: values of columns on the PII deny list
-- (core.extra_pii_keys) and e-mail-like values are replaced by a keyed hash "hmac:<hex>" (as
-- user_email is); the dead letter keeps them as sent.
create function ingest.protect_extra(p_extra jsonb, p_key text)
returns jsonb
language sql
stable
set search_path = pg_catalog, pg_temp
begin atomic
    select jsonb_object_agg(e.key, case
        when exists (select from core.extra_pii_keys as p where lower(e.key) like p.pattern)
            or e.value ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'
            then 'hmac:' || encode(public.hmac(lower(e.value), p_key, 'sha256'), 'hex')
        else e.value
    end)
    from jsonb_each_text(p_extra) as e;
end;

revoke all on function ingest.pipeline_columns() from public;
revoke all on function ingest.detect_schema(text[]) from public;
revoke all on function ingest.upgrade_expression(text, jsonb, text[]) from public;
revoke all on function ingest.staged_columns(ingest.schema_versions) from public;
revoke all on function ingest.upgrade_stage() from public;
revoke all on function ingest.register_schema_version(jsonb) from public;
revoke all on function ingest.set_schema_status(int, text) from public;
revoke all on function ingest.pin_source_schema(text, text, int, text) from public;
revoke all on function ingest.check_source_schema(bigint, text, text, text, int) from public;
revoke all on function ingest.record_schema(bigint) from public;
revoke all on function ingest.protect_extra(jsonb, text) from public;
