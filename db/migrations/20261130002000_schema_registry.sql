-- migrate:up
-- Schema registry (docs/schema-registry.md): the versions of the event file schema as data,
-- the sources that pin one, where unknown columns are kept (extra), and the PII deny list that
-- hides some of them from analysts. Behaviour: db/functions/ingest/schema_registry.sql.
set local role pipeline_owner;

-- One row per schema version. Versions are immutable once registered (only status changes);
-- ingest.register_schema_version() is the way in, and refuses an incompatible version.
create table ingest.schema_versions (
    version int primary key check (version > 0),
    -- every column a header of this version may name, in the producer's order
    columns text[] not null check (cardinality(columns) > 0),
    -- column -> type: text, integer, decimal, uuid, timestamp, boolean
    types jsonb not null check (jsonb_typeof(types) = 'object'),
    -- the columns a header of this version must hold (else the file is rejected whole)
    required text[] not null check (required <@ columns),
    -- header name -> the pipeline column it carries (a renamed column)
    renames jsonb not null default '{}' check (jsonb_typeof(renames) = 'object'),
    -- pipeline column this version lacks -> how a row of this version fills it
    -- ({"const": "text"} or {"template": "text with {column|fallback} and {event_date}"})
    upgrade jsonb not null default '{}' check (jsonb_typeof(upgrade) = 'object'),
    status text not null default 'active' check (status in ('active', 'deprecated')),
    description text not null default '',
    registered_at timestamptz not null default now(),
    registered_by text not null default current_user
);

insert into ingest.schema_versions (
    version, columns, types, required, upgrade, description, registered_by
) values (
    1,
    array['event_id', 'event_time', 'event_type', 'user_id', 'product_id', 'category', 'price'],
    '{"event_id": "uuid", "event_time": "timestamp", "event_type": "text", "user_id": "integer",
      "product_id": "integer", "category": "text", "price": "decimal"}',
    array['event_id', 'event_time', 'event_type', 'user_id', 'product_id', 'category', 'price'],
    '{"session_id": {"template": "v1-{user_id|guest}-{event_date|unknown}"},
      "quantity": {"const": "1"}}',
    'older producers: no session, quantity 1 (docs/contract.md section 1)',
    'migration'
), (
    2,
    array[
        'event_id', 'event_time', 'event_type', 'user_id', 'session_id', 'product_id',
        'category', 'price', 'quantity', 'currency', 'device', 'traffic_source',
        'payment_method', 'search_query', 'user_email'
    ],
    '{"event_id": "uuid", "event_time": "timestamp", "event_type": "text", "user_id": "integer",
      "session_id": "text", "product_id": "integer", "category": "text", "price": "decimal",
      "quantity": "integer", "currency": "text", "device": "text", "traffic_source": "text",
      "payment_method": "text", "search_query": "text", "user_email": "text"}',
    array[
        'event_id', 'event_time', 'event_type', 'user_id', 'session_id', 'product_id',
        'category', 'price', 'quantity'
    ],
    '{}',
    'the contract of docs/contract.md section 1',
    'migration'
);

-- A source that must send one version: a file name prefix, an HTTP client (the id the
-- collector derives from its API key) or, later, a Kafka topic. A batch of another version
-- still loads, and raises a quality.alerts row (kind schema_mismatch).
create table ingest.source_schemas (
    source_kind text not null check (source_kind in ('file', 'http', 'kafka')),
    source_match text not null check (source_match <> ''),
    version int not null references ingest.schema_versions (version),
    note text not null default '',
    created_at timestamptz not null default now(),
    primary key (source_kind, source_match)
);

-- Column names (LIKE patterns, lowercase) whose values are personal data: hashed in
-- core.events.extra, never shown by analytics.event_extra.
create table core.extra_pii_keys (
    pattern text primary key check (pattern = lower(pattern) and pattern <> ''),
    note text not null default ''
);
insert into core.extra_pii_keys (pattern, note) values
    ('%email%', 'e-mail addresses'),
    ('%e_mail%', 'e-mail addresses'),
    ('%phone%', 'phone numbers'),
    ('%address%', 'postal or IP addresses'),
    ('ip', 'IP address'),
    ('%ip_addr%', 'IP address'),
    ('%first_name%', 'names'),
    ('%last_name%', 'names'),
    ('%full_name%', 'names'),
    ('%customer_name%', 'names'),
    ('%birth%', 'dates of birth'),
    ('%ssn%', 'social security numbers'),
    ('%passport%', 'identity documents'),
    ('%card_number%', 'payment cards'),
    ('%iban%', 'bank accounts'),
    ('%postcode%', 'postal codes'),
    ('%zip%', 'postal codes');

-- values of columns outside the file's schema version (and of a version's own extension
-- columns), by column name; NULL when the row had none
alter table core.events add column extra jsonb;
alter table quality.dead_letter add column extra jsonb;

alter table quality.batch_metrics
    add column schema_version int,
    add column unknown_columns text[] not null default '{}';

alter table ingest.files drop constraint files_schema_version_check;
alter table ingest.files add constraint files_schema_version_check check (schema_version > 0);

reset role;

-- migrate:down
set local role pipeline_owner;
update ingest.files set schema_version = null where schema_version > 2;
alter table ingest.files drop constraint files_schema_version_check;
alter table ingest.files add constraint files_schema_version_check
    check (schema_version in (1, 2));
alter table quality.batch_metrics drop column if exists unknown_columns cascade;
alter table quality.batch_metrics drop column if exists schema_version cascade;
alter table quality.dead_letter drop column if exists extra cascade;
alter table core.events drop column if exists extra cascade;
drop table if exists core.extra_pii_keys cascade;
drop table if exists ingest.source_schemas cascade;
drop table if exists ingest.schema_versions cascade;
reset role;
