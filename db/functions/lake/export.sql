-- The lake's rules (docs/lake.md): which days are closed, which columns each Iceberg table has
-- and how they are read, the checksum of a day, what is still to export, and the ledger.
-- deno task export (scripts/lib/lake/export.py) only runs these and moves the bytes.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).

-- The first UTC day still open at p_now: day D is closed once D + 1 day + close_after has
-- passed (lake.settings; rows may arrive for it until then), so every day before this is closed.
create function lake.closed_before(p_now timestamptz)
returns date
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    select ((p_now - s.close_after) at time zone 'UTC')::date from lake.settings as s;
end;

-- The checksum of one row's text (see lake.digest): the first 60 bits of its MD5 as a number,
-- so that any engine can compute it (Spark: conv(substr(md5(t), 1, 15), 16, 10)). No SET
-- clause, so that it is inlined (3x faster over a million rows); the names are pg_catalog's.
create function lake.row_hash(p_text text)
returns bigint
language sql
immutable
strict
return ('x' operator(pg_catalog.||) pg_catalog.substr(pg_catalog.md5(p_text), 1, 15))::bit(60)::bigint;

-- The lake table p_table, or a clear error naming the tables there are.
create function lake.table_of(p_table text)
returns lake.tables
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_t lake.tables;
begin
    select * into v_t from lake.tables as t where t.table_name = p_table;
    if not found then
        raise exception 'lake table "%" is not in lake.tables (there are: %)', p_table,
            (select string_agg(t.table_name, ', ' order by t.table_name) from lake.tables as t)
            using errcode = '22023';
    end if;
    if to_regclass(v_t.source) is null then
        raise exception 'the source % of lake table "%" does not exist: run make up (deno task migrate)',
            v_t.source, p_table using errcode = '42P01';
    end if;
    return v_t;
end
$$;

-- The columns of the Iceberg table p_table in order: name, type (string, int, long, boolean,
-- date, timestamptz, decimal(p,s), list<string>) and the SQL expression over the source row s.
-- Numbers without a declared scale are exported as decimal(38,9). A gold table without a
-- reporting_currency column gets one. silver.events also gets one column per extension column
-- of the schema registry (a column a version names beyond the 15 pipeline columns of version
-- 2), read from extra, values of another type than registered left null.
create function lake.columns(p_table text)
returns table (col_position int, column_name text, lake_type text, expression text)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_t lake.tables := lake.table_of(p_table);
begin
    return query
    with cols as (
        select a.attnum::int as pos, a.attname::text as name, t.typname::text as typname,
            t.typcategory::text as category, a.atttypmod as typmod
        from pg_attribute as a
        join pg_type as t on t.oid = a.atttypid
        where a.attrelid = to_regclass(v_t.source) and a.attnum > 0 and not a.attisdropped
    ),

    typed as (
        select c.pos, c.name,
            case
                when c.typname = 'date' then 'date'
                when c.typname in ('timestamptz', 'timestamp') then 'timestamptz'
                when c.typname in ('int2', 'int4') then 'int'
                when c.typname = 'int8' then 'long'
                when c.typname = 'bool' then 'boolean'
                when c.typname = 'numeric' and c.typmod >= 4
                    then format('decimal(%s,%s)', ((c.typmod - 4) >> 16) & 65535, (c.typmod - 4) & 65535)
                when c.typname in ('numeric', 'float4', 'float8') then 'decimal(38,9)'
                when c.category = 'A' then 'list<string>'
                else 'string'
            end as lake_type
        from cols as c
    ),

    source_columns as (
        select t.pos, t.name, t.lake_type,
            case
                when t.lake_type = 'decimal(38,9)' then format('round(s.%I::numeric, 9)', t.name)
                when t.lake_type = 'list<string>' then format('s.%I::text[]', t.name)
                when t.lake_type = 'string' then format('s.%I::text', t.name)
                else format('s.%I', t.name)
            end as expr
        from typed as t
    ),

    currency as (
        select 10000 as pos, 'reporting_currency' as name, 'string' as lake_type,
            'core.reporting_currency()' as expr
        where v_t.layer = 'gold'
            and not exists (select from cols as c where c.name = 'reporting_currency')
    ),

    extension as (
        select x.name, x.type, min(x.version) as version
        from (
            select v.version, c.name, v.types ->> c.name as type
            from ingest.schema_versions as v
            cross join lateral unnest(v.columns) as c (name)
        ) as x
        where v_t.layer = 'silver'
            and x.name <> all (
                select unnest(v.columns) from ingest.schema_versions as v where v.version = 2
            )
            and not exists (select from cols as c where c.name = x.name)
        group by x.name, x.type
    ),

    extension_columns as (
        select 20000 + row_number() over (order by e.version, e.name)::int as pos, e.name,
            case e.type
                when 'integer' then 'long'
                when 'decimal' then 'decimal(38,9)'
                when 'timestamp' then 'timestamptz'
                when 'boolean' then 'boolean'
                else 'string'
            end as lake_type,
            case e.type
                when 'integer' then format(
                    'case when pg_input_is_valid(s.extra ->> %1$L, ''bigint'') then (s.extra ->> %1$L)::bigint end', e.name)
                when 'decimal' then format(
                    'case when pg_input_is_valid(s.extra ->> %1$L, ''numeric(38,9)'') then round((s.extra ->> %1$L)::numeric, 9) end', e.name)
                when 'timestamp' then format(
                    'case when pg_input_is_valid(s.extra ->> %1$L, ''timestamptz'') then (s.extra ->> %1$L)::timestamptz end', e.name)
                when 'boolean' then format(
                    'case when pg_input_is_valid(s.extra ->> %1$L, ''boolean'') then (s.extra ->> %1$L)::boolean end', e.name)
                else format('s.extra ->> %L', e.name)
            end as expr
        from extension as e
    ),

    final as (
        select * from source_columns
        union all
        select * from currency
        union all
        select * from extension_columns
    )

    select f.pos, f.name, f.lake_type, f.expr from final as f order by f.pos;
end
$$;

-- The SQL that reads p_table's rows of the days in [p_from, p_to) (either null: unbounded),
-- only p_days when given. p_form 'typed': one typed column per Iceberg column; 'csv': the same
-- as text for COPY ... (format csv) (timestamps in UTC, list items separated by chr(31)).
create function lake.export_query(
    p_table text, p_from date, p_to date, p_days date[] default null, p_form text default 'typed'
)
returns text
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_t lake.tables := lake.table_of(p_table);
    v_select text;
    v_where text := 'true';
    v_query text;
begin
    if p_form not in ('typed', 'csv') then
        raise exception 'export_query form must be typed or csv (got "%")', p_form using errcode = '22023';
    end if;
    select string_agg(format('%s as %I', c.expression, c.column_name), ', ' order by c.col_position)
    into v_select
    from lake.columns(p_table) as c;
    if v_t.range_column is not null then
        if p_from is not null then
            v_where := v_where || format(' and s.%I >= %L::timestamp at time zone ''UTC''',
                v_t.range_column, p_from);
        end if;
        if p_to is not null then
            v_where := v_where || format(' and s.%I < %L::timestamp at time zone ''UTC''',
                v_t.range_column, p_to);
        end if;
    else
        if p_from is not null then v_where := v_where || format(' and s.day >= %L::date', p_from); end if;
        if p_to is not null then v_where := v_where || format(' and s.day < %L::date', p_to); end if;
    end if;
    v_query := format('select %s from %s as s where %s', v_select, v_t.source, v_where);
    if p_days is not null then
        v_query := format('select * from (%s) as q where q.day = any (%L::date[])', v_query, p_days);
    end if;
    if p_form = 'typed' then
        return v_query;
    end if;
    select string_agg(
        case
            when c.lake_type = 'timestamptz' then
                format('to_char(q.%1$I at time zone ''UTC'', ''YYYY-MM-DD HH24:MI:SS.US'') as %1$I', c.column_name)
            when c.lake_type = 'list<string>' then
                format('array_to_string(q.%1$I, chr(31)) as %1$I', c.column_name)
            else format('q.%I', c.column_name)
        end, ', ' order by c.col_position)
    into v_select
    from lake.columns(p_table) as c;
    return format('select %s from (%s) as q', v_select, v_query);
end
$$;

-- Per UTC day of p_table in [p_from, p_to) (only p_days when given): the rows and their
-- checksum, the sum of lake.row_hash over each row's text. A row's text is name=value for
-- each column that is not null, in column order, joined by '|'; values as: text as is,
-- integers and booleans as text, decimal(p,s) with exactly s decimals, dates as YYYY-MM-DD,
-- timestamps as microseconds since 1970 UTC, lists joined by ','. Nulls are left out, so a
-- column added later (null in old rows) changes no old day's checksum: no rewrite. Any reader
-- of the Iceberg table can compute the same.
create function lake.digest(p_table text, p_from date, p_to date, p_days date[] default null)
returns table (day date, row_count bigint, checksum numeric)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
set datestyle = 'ISO, YMD'
set timezone = 'UTC'
as $$
declare
    v_text text;
begin
    select string_agg(format('%L || %s', c.column_name || '=',
        case
            when c.lake_type = 'string' then format('q.%I', c.column_name)
            when c.lake_type like 'decimal(%' then format('q.%I::numeric(38,%s)::text',
                c.column_name, substring(c.lake_type from ',(\d+)\)$'))
            when c.lake_type = 'timestamptz' then
                format('(extract(epoch from q.%I) * 1000000)::bigint::text', c.column_name)
            when c.lake_type = 'list<string>' then format('array_to_string(q.%I, '','')', c.column_name)
            else format('q.%I::text', c.column_name)
        end), ', ' order by c.col_position)
    into v_text
    from lake.columns(p_table) as c;
    return query execute format(
        'select q.day, count(*)::bigint, coalesce(sum(lake.row_hash(concat_ws(''|'', %s))), 0)::numeric
        from (%s) as q group by q.day order by q.day',
        v_text, lake.export_query(p_table, p_from, p_to, p_days));
end
$$;

-- What deno task export has to do at p_now: every closed day of every lake table (of p_table
-- when given) whose rows differ from the ledger (not exported yet, or rows changed since: late
-- rows, a replay, a corrected exchange rate), with its current digest. Days only in the ledger
-- (their rows dropped by retention since) stay in the lake as they are.
create function lake.pending(p_now timestamptz, p_table text default null)
returns table (table_name text, layer text, day date, row_count bigint, checksum numeric,
    exported_rows bigint)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_t lake.tables;
    v_before date := lake.closed_before(p_now);
begin
    for v_t in
        select * from lake.tables as t
        where p_table is null or t.table_name = p_table
        order by case t.layer when 'silver' then 1 when 'bronze' then 2 else 3 end, t.table_name
    loop
        return query
        select v_t.table_name, v_t.layer, d.day, d.row_count, d.checksum, x.row_count
        from lake.digest(v_t.table_name, null, v_before) as d
        left join lake.exports as x on x.table_name = v_t.table_name and x.day = d.day
        where x.day is null or x.row_count <> d.row_count or x.checksum <> d.checksum
        order by d.day;
    end loop;
    if p_table is not null and not found then
        perform lake.table_of(p_table);
    end if;
end
$$;

-- The ledger, once the snapshot p_snapshot_id holding them is committed: p_days is a JSON
-- array of {day, row_count, checksum} (as lake.digest gave them with the rows written).
create function lake.record_exports(p_table text, p_snapshot_id bigint, p_days jsonb)
returns int
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_n int;
begin
    perform lake.table_of(p_table);
    insert into lake.exports as x (table_name, day, snapshot_id, row_count, checksum)
    select p_table, (d ->> 'day')::date, p_snapshot_id, (d ->> 'row_count')::bigint,
        (d ->> 'checksum')::numeric
    from jsonb_array_elements(p_days) as d
    on conflict (table_name, day) do update
    set snapshot_id = excluded.snapshot_id, row_count = excluded.row_count,
        checksum = excluded.checksum, exported_at = now();
    get diagnostics v_n = row_count;
    update lake.settings set is_enabled = true, updated_at = now() where not is_enabled;
    return v_n;
end
$$;

-- Turns the export on or off (retention guards the lake only while it is on); deno task
-- export turns it on by exporting, deno task export --disable off.
create function lake.set_enabled(p_enabled boolean)
returns void
language sql
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    update lake.settings set is_enabled = p_enabled, updated_at = now();
end;

-- The UTC days of p_table with rows in [p_from, p_to) that the ledger does not hold as they
-- are now (missing, or another row count): retention must not drop them while export is on.
create function lake.unexported_days(p_table text, p_from timestamptz, p_to timestamptz)
returns setof date
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
as $$
begin
    return query
    select d.day
    from lake.digest(p_table, (p_from at time zone 'UTC')::date,
        ((p_to at time zone 'UTC') + interval '1 day' - interval '1 microsecond')::date) as d
    left join lake.exports as x on x.table_name = p_table and x.day = d.day
    where x.day is null or x.row_count <> d.row_count
    order by d.day;
end
$$;

revoke all on function lake.closed_before(timestamptz) from public;
revoke all on function lake.table_of(text) from public;
revoke all on function lake.columns(text) from public;
revoke all on function lake.export_query(text, date, date, date[], text) from public;
revoke all on function lake.digest(text, date, date, date[]) from public;
revoke all on function lake.pending(timestamptz, text) from public;
revoke all on function lake.record_exports(text, bigint, jsonb) from public;
revoke all on function lake.set_enabled(boolean) from public;
revoke all on function lake.unexported_days(text, timestamptz, timestamptz) from public;
