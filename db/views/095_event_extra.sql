-- analytics.event_extra: the values of columns outside the pipeline's own (a schema version's
-- extension columns such as coupon_code, and unknown columns) per stored event, for analysts.
-- Columns on the PII deny list (core.extra_pii_keys, read at query time) are left out, and
-- e-mail-like values (hashed in core.events.extra) show as "[masked]" (core.visible_extra).
-- See docs/schema-registry.md.
-- applied on every make up: dropping first lets a new version change the columns
drop view if exists analytics.event_extra;
create view analytics.event_extra as
with events as (
    select event_id, event_time, event_type, batch_id, extra
    from core.events
    where extra is not null
),

visible as (
    select
        e.event_id,
        e.event_time,
        e.event_type,
        e.batch_id,
        core.visible_extra(e.extra) as extra
    from events as e
)

select * from visible;

comment on view analytics.event_extra is
'Per stored event with extra values: event_id, event_time, event_type, batch_id and extra (jsonb, column -> text value). Columns on the PII deny list (core.extra_pii_keys) are left out; e-mail-like values show as [masked].';

grant select on analytics.event_extra to pipeline_analyst;
