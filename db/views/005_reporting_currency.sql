-- analytics.reporting_currency: one row, the currency every money column of the analytics
-- views is in (core.settings, written by deno task migrate from REPORTING_CURRENCY), so that
-- the analyst (who cannot use schema core) can label figures.
-- applied on every make up: dropping first lets a new version change the columns
drop view if exists analytics.reporting_currency;
create view analytics.reporting_currency as
select core.reporting_currency() as reporting_currency;

comment on view analytics.reporting_currency is
'The reporting currency of every revenue figure (REPORTING_CURRENCY, default USD).';

grant select on analytics.reporting_currency to pipeline_analyst;
