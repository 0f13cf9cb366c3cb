-- migrate:up
-- Deferred HTTP analytics queue each event's currency, so that analytics.apply_events keeps
-- revenue per currency for them too (20261130001500_revenue_per_currency.sql). The queue is
-- empty here (checked by 20261130001500).
-- MERGE NOTE: 20261130001900_kpi_rollups.sql (#19) adds the same column: when both branches
-- meet, delete this file (its column then comes from #19's migration).
set local role pipeline_owner;
alter table ingest.deferred_events add column currency text;
reset role;

-- migrate:down
set local role pipeline_owner;
alter table ingest.deferred_events drop column if exists currency;
reset role;
