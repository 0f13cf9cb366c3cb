-- migrate:up
-- The browser source (docs/tracking.md): public write keys, one per site, bound to the origins
-- whose pages may send with it; and the referrer hosts that the traffic_source mapping reads.
-- Behaviour: db/functions/ingest/browser.sql.
set local role pipeline_owner;

-- A public write key ships in the page's source, so it is no secret: it names a site, may only
-- write (POST /v1/collect), and only from pages of its allowed origins. Revoked keys stay (the
-- batches they wrote keep their client id).
create table ingest.site_keys (
    site_key text primary key check (site_key ~ '^pk_[0-9a-f]{32}$'),
    site text not null check (site ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    -- scheme://host[:port], lowercase, no path: what a browser sends as Origin
    allowed_origins text[] not null check (
        cardinality(allowed_origins) between 1 and 50
        and array_to_string(allowed_origins, ' ') ~ '^(https?://[a-z0-9.-]+(:[0-9]{1,5})?( |$))+$'
    ),
    -- the key's rate limit (every collector process applies it on its own)
    events_per_minute int not null default 6000 check (events_per_minute between 1 and 10000000),
    note text not null default '',
    created_at timestamptz not null default now(),
    created_by text not null default current_user,
    revoked_at timestamptz
);
create index site_keys_site_idx on ingest.site_keys (site);

-- Referrer hosts that are search engines or social networks (anything else that is not the
-- shop itself is a referral). `host_pattern` is a POSIX regular expression on the lowercased
-- host; the mapping is ingest.traffic_source() (docs/tracking.md#traffic-source).
create table ingest.traffic_referrers (
    host_pattern text primary key,
    traffic_source text not null check (traffic_source in ('search', 'social')),
    note text not null default ''
);

insert into ingest.traffic_referrers (host_pattern, traffic_source, note) values
    ('(^|\.)google\.(com|[a-z]{2}|co\.[a-z]{2}|com\.[a-z]{2})$', 'search', 'Google, every country domain'),
    ('(^|\.)bing\.com$', 'search', 'Bing'),
    ('(^|\.)duckduckgo\.com$', 'search', 'DuckDuckGo'),
    ('(^|\.)search\.yahoo\.(com|[a-z]{2}|co\.[a-z]{2})$', 'search', 'Yahoo'),
    ('(^|\.)yandex\.(com|ru|[a-z]{2})$', 'search', 'Yandex'),
    ('(^|\.)baidu\.com$', 'search', 'Baidu'),
    ('(^|\.)ecosia\.org$', 'search', 'Ecosia'),
    ('(^|\.)search\.brave\.com$', 'search', 'Brave Search'),
    ('(^|\.)qwant\.com$', 'search', 'Qwant'),
    ('(^|\.)facebook\.com$', 'social', 'Facebook'),
    ('(^|\.)instagram\.com$', 'social', 'Instagram'),
    ('^t\.co$', 'social', 'X/Twitter link shortener'),
    ('(^|\.)(twitter|x)\.com$', 'social', 'X/Twitter'),
    ('(^|\.)linkedin\.com$|^lnkd\.in$', 'social', 'LinkedIn'),
    ('(^|\.)pinterest\.(com|[a-z]{2}|co\.[a-z]{2}|com\.[a-z]{2})$', 'social', 'Pinterest'),
    ('(^|\.)reddit\.com$', 'social', 'Reddit'),
    ('(^|\.)tiktok\.com$', 'social', 'TikTok'),
    ('(^|\.)youtube\.com$|^youtu\.be$', 'social', 'YouTube'),
    ('(^|\.)threads\.net$', 'social', 'Threads'),
    ('(^|\.)bsky\.app$', 'social', 'Bluesky');

revoke all on table ingest.site_keys, ingest.traffic_referrers from public;

reset role;

-- migrate:down
set local role pipeline_owner;
drop table if exists ingest.traffic_referrers;
drop table if exists ingest.site_keys;
reset role;
