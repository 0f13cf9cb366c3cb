-- The extra values an analyst may see (analytics.event_extra, the lake's silver and bronze
-- tables): columns on the PII deny list (core.extra_pii_keys, read when called) are left out,
-- hashed or e-mail-like values show as "[masked]". Null when nothing is left.
-- Repeatable: applied on every migrate after the migrations (see db/functions/README.md).
create function core.visible_extra(p_extra jsonb)
returns jsonb
language sql
stable
strict
security definer
set search_path = pg_catalog, pg_temp
begin atomic
    select jsonb_object_agg(x.key, case
        when x.value like 'hmac:%'
            or x.value ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'
            then '[masked]'
        else x.value
    end)
    from jsonb_each_text(p_extra) as x
    where not exists (
        select from core.extra_pii_keys as p where lower(x.key) like p.pattern
    );
end;

revoke all on function core.visible_extra(jsonb) from public;
grant execute on function core.visible_extra(jsonb) to pipeline_analyst;
