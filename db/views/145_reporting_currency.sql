-- analytics.reporting_currency: the currency every revenue figure of the KPI views is in
-- (core.settings), for readers that do not see the core schema (dashboards).
drop view if exists analytics.reporting_currency;
create view analytics.reporting_currency as
select core.reporting_currency() as currency;
