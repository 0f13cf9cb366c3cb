// Test support: every definition of the pipeline's schemas as text, to compare two databases
// (fresh vs upgraded, before vs after a second migrate). Oids and names of system-generated
// objects are left out; everything a user could observe is in.
import type { Sql } from "../common/db.ts";

const schemas = ["ingest", "core", "quality", "analytics", "lake"];

/** Sorted lines "kind name: definition" for functions, views, tables, columns, constraints,
 * indexes, sequences, privileges, comments and default privileges of the four schemas. */
export async function catalog(sql: Sql): Promise<string[]> {
  const rows = await sql`
    with ns as (select oid, nspname from pg_namespace where nspname = any (${schemas}))
    select 'function ' || p.oid::regprocedure::text || ': ' || pg_get_functiondef(p.oid)
        || ' owner=' || pg_get_userbyid(p.proowner)
        || ' acl=' || coalesce(p.proacl::text, 'default')
        || ' comment=' || coalesce(obj_description(p.oid, 'pg_proc'), '') as line
    from pg_proc as p join ns on ns.oid = p.pronamespace
    where p.prokind in ('f', 'p')
    union all
    select 'view ' || c.oid::regclass::text || ': ' || pg_get_viewdef(c.oid)
        || ' owner=' || pg_get_userbyid(c.relowner)
        || ' acl=' || coalesce(c.relacl::text, 'default')
        || ' comment=' || coalesce(obj_description(c.oid, 'pg_class'), '')
    from pg_class as c join ns on ns.oid = c.relnamespace
    where c.relkind in ('v', 'm')
    union all
    select 'relation ' || c.oid::regclass::text || ': kind=' || c.relkind::text
        || ' persistence=' || c.relpersistence::text
        || ' owner=' || pg_get_userbyid(c.relowner)
        || ' acl=' || coalesce(c.relacl::text, 'default')
        || ' partition=' || coalesce(pg_get_partkeydef(c.oid), '')
        || ' bound=' || coalesce(pg_get_expr(c.relpartbound, c.oid), '')
    from pg_class as c join ns on ns.oid = c.relnamespace
    where c.relkind in ('r', 'p', 'S', 'f')
    union all
    select 'column ' || c.oid::regclass::text || '.' || a.attname || ': '
        || format_type(a.atttypid, a.atttypmod)
        || case when a.attnotnull then ' not null' else '' end
        || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
        || case when a.attidentity <> '' then ' identity ' || a.attidentity::text else '' end
        || ' #' || a.attnum
    from pg_attribute as a
    join pg_class as c on c.oid = a.attrelid
    join ns on ns.oid = c.relnamespace
    left join pg_attrdef as d on d.adrelid = a.attrelid and d.adnum = a.attnum
    where a.attnum > 0 and not a.attisdropped and c.relkind in ('r', 'p', 'v', 'm', 'f')
    union all
    select 'constraint ' || con.conrelid::regclass::text || ' ' || con.conname || ': '
        || pg_get_constraintdef(con.oid)
    from pg_constraint as con join ns on ns.oid = con.connamespace
    where con.conrelid <> 0
    union all
    select 'index ' || pg_get_indexdef(i.indexrelid)
    from pg_index as i join pg_class as c on c.oid = i.indexrelid
    join ns on ns.oid = c.relnamespace
    union all
    select 'schema ' || ns.nspname || ': owner=' || pg_get_userbyid(n.nspowner)
        || ' acl=' || coalesce(n.nspacl::text, 'default')
    from pg_namespace as n join ns on ns.oid = n.oid
    union all
    select 'default acl ' || coalesce(ns.nspname, '') || ' ' || d.defaclobjtype::text || ': '
        || d.defaclacl::text
    from pg_default_acl as d left join ns on ns.oid = d.defaclnamespace
    union all
    select 'trigger ' || pg_get_triggerdef(t.oid)
    from pg_trigger as t join pg_class as c on c.oid = t.tgrelid
    join ns on ns.oid = c.relnamespace
    where not t.tgisinternal
    order by 1`;
  return rows.map((r) => r.line as string);
}
