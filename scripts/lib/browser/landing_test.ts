// UTM and referrer parsing (landing.ts) against real landing URLs and referrers, and the
// traffic_source they map to in SQL (ingest.traffic_source, against a real database).
import { assertEquals } from "../testing/assert.ts";
import { testDb } from "../testing/testdb.ts";
import { parseLanding } from "./landing.ts";

const SHOP = "https://shop.example/";
// landing URL, referrer -> utm_source, utm_medium, utm_campaign, click id, referrer host, source
const TABLE: [string, string, string, string, string, boolean, string, string][] = [
  [SHOP, "", "", "", "", false, "", "direct"],
  [`${SHOP}p/42`, "https://shop.example/", "", "", "", false, "shop.example", "direct"],
  [SHOP, "https://www.google.com/", "", "", "", false, "www.google.com", "search"],
  [SHOP, "https://www.google.co.uk/", "", "", "", false, "www.google.co.uk", "search"],
  [SHOP, "https://www.bing.com/search?q=skillet", "", "", "", false, "www.bing.com", "search"],
  [SHOP, "https://duckduckgo.com/", "", "", "", false, "duckduckgo.com", "search"],
  [SHOP, "https://l.facebook.com/", "", "", "", false, "l.facebook.com", "social"],
  [SHOP, "https://t.co/", "", "", "", false, "t.co", "social"],
  [SHOP, "https://www.reddit.com/r/BuyItForLife/", "", "", "", false, "www.reddit.com", "social"],
  [
    SHOP,
    "android-app://com.google.android.gm/",
    "",
    "",
    "",
    false,
    "com.google.android.gm",
    "referral",
  ],
  [
    SHOP,
    "https://blog.example.org/best-skillets",
    "",
    "",
    "",
    false,
    "blog.example.org",
    "referral",
  ],
  [
    `${SHOP}?gclid=Cj0KCQiA_example&utm_source=google&utm_medium=cpc&utm_campaign=winter_sale`,
    "https://www.google.com/",
    "google",
    "cpc",
    "winter_sale",
    true,
    "www.google.com",
    "ads",
  ],
  [`${SHOP}?msclkid=6f2a1b`, "https://www.bing.com/", "", "", "", true, "www.bing.com", "ads"],
  [
    `${SHOP}?utm_source=facebook&utm_medium=paid_social&utm_campaign=retarget`,
    "https://m.facebook.com/",
    "facebook",
    "paid_social",
    "retarget",
    false,
    "m.facebook.com",
    "ads",
  ],
  [
    `${SHOP}?utm_source=newsletter&utm_medium=email&utm_campaign=2026-12-week-49`,
    "",
    "newsletter",
    "email",
    "2026-12-week-49",
    false,
    "",
    "email",
  ],
  [
    `${SHOP}?utm_source=mailchimp&utm_medium=E-Mail`,
    "",
    "mailchimp",
    "E-Mail",
    "",
    false,
    "",
    "email",
  ],
  [
    `${SHOP}?utm_source=instagram&utm_medium=social`,
    "",
    "instagram",
    "social",
    "",
    false,
    "",
    "social",
  ],
  [`${SHOP}?utm_source=twitter`, "https://t.co/", "twitter", "", "", false, "t.co", "social"],
  [
    `${SHOP}?utm_source=google&utm_medium=organic`,
    "",
    "google",
    "organic",
    "",
    false,
    "",
    "search",
  ],
  [`${SHOP}?utm_source=partner-blog`, "", "partner-blog", "", "", false, "", "referral"],
  // fbclid marks organic Facebook links too: no ads on its own
  [
    `${SHOP}?fbclid=IwAR2x`,
    "https://l.facebook.com/",
    "",
    "",
    "",
    false,
    "l.facebook.com",
    "social",
  ],
  // encoded values and spaces
  [
    `${SHOP}?utm_source=Google%20Ads&utm_medium=%20CPC%20&utm_campaign=caf%C3%A9`,
    "",
    "Google Ads",
    "CPC",
    "café",
    false,
    "",
    "ads",
  ],
  ["not a url", "also not a url", "", "", "", false, "", "direct"],
];

Deno.test("parseLanding: UTM parameters, click ids and hosts of real URLs", () => {
  const got = TABLE.map(([landing, referrer]) => {
    const l = parseLanding(landing, referrer);
    return [l.utm_source, l.utm_medium, l.utm_campaign, l.click_id, l.referrer_host];
  });
  assertEquals(got, TABLE.map((r) => r.slice(2, 7)));
  assertEquals(parseLanding(SHOP, "").page_host, "shop.example");
});

Deno.test("ingest.traffic_source maps each parsed landing onto the contract's domain", async () => {
  const db = await testDb("browser_traffic_source");
  try {
    const inputs = TABLE.map(([landing, referrer]) => {
      const l = parseLanding(landing, referrer);
      return [l.utm_source, l.utm_medium, l.click_id, l.referrer_host, l.page_host];
    });
    await db.sql`set role pipeline_ingest`;
    const rows = await db.sql<{ i: number; traffic_source: string }[]>`
      select i, traffic_source from ingest.traffic_sources(${db.sql.json(inputs)}::jsonb)`;
    assertEquals(
      rows.map((r) => [TABLE[r.i][0], TABLE[r.i][1], r.traffic_source]),
      TABLE.map((r) => [r[0], r[1], r[7]]),
    );
    // a referrer host added to the table changes the mapping: the rule is data
    await db.sql`reset role`;
    await db.sql`insert into ingest.traffic_referrers (host_pattern, traffic_source)
      values ('(^|\.)blog\.example\.org$', 'social')`;
    const [{ s }] = await db.sql`
      select ingest.traffic_source(null, null, false, 'blog.example.org', 'shop.example') as s`;
    assertEquals(s, "social");
  } finally {
    await db.drop();
  }
});
