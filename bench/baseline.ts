// The simplest honest SQL loader (issue 29's yardstick for `make bench`): COPY into an unlogged
// all-text staging table, then one INSERT ... SELECT that casts, applies the contract's field
// checks as a WHERE (no reasons, no dead letter, no metrics, no analytics), hashes the e-mail
// with sha256() and dedupes with ON CONFLICT (event_id) DO NOTHING into a typed table with a
// uuid primary key. One session, one transaction. Written from docs/contract.md section 2 alone:
// it shares no code with the pipeline, so it cannot inherit its costs or its mistakes.
import type { Sql } from "../scripts/lib/common/db.ts";
import { copyStream, fileSource } from "../scripts/lib/batch/mod.ts";
import { COLUMNS_V2 } from "../scripts/lib/common/contract.ts";

/** The loader reads the contract's schema version 2 columns, as the generator writes them. */
export const BASELINE_COLUMNS = COLUMNS_V2;

export const BASELINE_DDL = `
create unlogged table public.baseline_raw (${BASELINE_COLUMNS.map((c) => `${c} text`).join(", ")});
create table public.baseline_events (
  event_id uuid primary key, event_time timestamptz not null, event_type text not null,
  user_id bigint, session_id text not null, product_id bigint, category text,
  price numeric(12, 2), quantity int not null, currency text not null, device text,
  traffic_source text, payment_method text, search_query text, email_hash bytea)`;

// Every rule of docs/contract.md section 2 (thresholds at their defaults: 5 min, 400 days,
// 10000) on trimmed values; empty = NULL. A row failing any rule is dropped, nothing else.
export const BASELINE_INSERT = `
insert into public.baseline_events
select v.event_id::uuid, v.event_time::timestamptz, v.event_type, v.user_id::bigint,
  v.session_id, v.product_id::bigint, v.category,
  case when v.event_type in ('add_to_cart', 'remove_from_cart', 'purchase')
    then v.price::numeric end,
  case when v.event_type in ('add_to_cart', 'remove_from_cart', 'purchase')
    then v.quantity::int else 1 end,
  coalesce(v.currency, 'USD'), v.device, v.traffic_source, v.payment_method, v.search_query,
  sha256(convert_to(lower(v.user_email), 'UTF8'))
from (
  select nullif(btrim(event_id), '') as event_id, nullif(btrim(event_time), '') as event_time,
    lower(nullif(btrim(event_type), '')) as event_type, nullif(btrim(user_id), '') as user_id,
    nullif(btrim(session_id), '') as session_id, nullif(btrim(product_id), '') as product_id,
    lower(nullif(btrim(category), '')) as category, nullif(btrim(price), '') as price,
    nullif(btrim(quantity), '') as quantity, upper(nullif(btrim(currency), '')) as currency,
    lower(nullif(btrim(device), '')) as device,
    lower(nullif(btrim(traffic_source), '')) as traffic_source,
    lower(nullif(btrim(payment_method), '')) as payment_method,
    nullif(btrim(search_query), '') as search_query, nullif(btrim(user_email), '') as user_email
  from public.baseline_raw
) as v
where pg_input_is_valid(v.event_id, 'uuid')
  and v.event_time ~ '^\\d{4}-\\d\\d-\\d\\d[T ]\\d\\d:\\d\\d(:\\d\\d(\\.\\d+)?)?(Z|z|[+-]\\d\\d(:?\\d\\d)?)$'
  and pg_input_is_valid(v.event_time, 'timestamptz')
  and v.event_time::timestamptz <= now() + interval '5 minutes'
  and v.event_time::timestamptz >= now() - interval '400 days'
  and v.event_type in ('view', 'search', 'add_to_cart', 'remove_from_cart', 'wishlist', 'purchase')
  and (v.user_id is null
    or (pg_input_is_valid(v.user_id, 'bigint') and v.user_id ~ '^[0-9]+$'
      and v.user_id::bigint > 0))
  and (v.user_id is not null
    or v.event_type not in ('add_to_cart', 'remove_from_cart', 'wishlist', 'purchase'))
  and v.session_id is not null and length(v.session_id) <= 64
  and (v.product_id is null
    or (pg_input_is_valid(v.product_id, 'bigint') and v.product_id ~ '^[0-9]+$'
      and v.product_id::bigint > 0))
  and (v.product_id is not null or v.event_type = 'search')
  and (v.category in ('electronics', 'clothing', 'home_garden', 'sports', 'books', 'beauty',
      'toys', 'grocery')
    or (v.category is null and v.event_type = 'search'))
  and (v.event_type not in ('add_to_cart', 'remove_from_cart', 'purchase') or (
    v.price ~ '^-?([0-9]+(\\.[0-9]{0,2})?|\\.[0-9]{1,2})$'
    and v.price::numeric >= 0 and v.price::numeric <= 10000
    and (v.event_type <> 'purchase' or v.price::numeric > 0)
    and v.quantity ~ '^[+-]?[0-9]+$' and pg_input_is_valid(v.quantity, 'int')
    and v.quantity::int between 1 and 1000))
  and (v.currency is null or v.currency in ('USD', 'EUR', 'GBP'))
  and (v.device is null or v.device in ('desktop', 'mobile', 'tablet'))
  and (v.traffic_source is null
    or v.traffic_source in ('direct', 'search', 'social', 'email', 'ads', 'referral'))
  and (v.payment_method is null
    or v.payment_method in ('card', 'paypal', 'apple_pay', 'google_pay', 'bank_transfer'))
  and (v.search_query is null or length(v.search_query) <= 200)
on conflict (event_id) do nothing`;

/**
 * Loads one CSV file (the header in BASELINE_COLUMNS order) the simplest honest way, in one
 * transaction of `sql` (whose database holds BASELINE_DDL's tables, empty). Returns the rows
 * inserted.
 */
export async function baselineLoad(sql: Sql, path: string): Promise<number> {
  return await sql.begin(async (tx) => {
    await copyStream(
      tx,
      "copy public.baseline_raw from stdin (format csv, header true)",
      (await fileSource(path)).open(),
    );
    const r = await tx.unsafe(BASELINE_INSERT);
    await tx.unsafe("truncate public.baseline_raw");
    return r.count;
  });
}
