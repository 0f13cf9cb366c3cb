// What a session's landing page and referrer say about where the shopper came from: the UTM
// parameters, whether a paid click id is present, and the two hosts. Parsing only; the mapping
// onto the contract's traffic_source is SQL (ingest.traffic_source, docs/tracking.md).

export interface Landing {
  utm_source: string;
  utm_medium: string;
  utm_campaign: string;
  /** a paid click id (gclid, msclkid, ...) on the landing URL */
  click_id: boolean;
  /** the referrer's host, lowercased, "www." kept; "" when none or unparsable */
  referrer_host: string;
  /** the landing page's own host ("" when unparsable) */
  page_host: string;
}

/** Click ids ad platforms append to paid clicks (fbclid is not one: organic links carry it). */
const CLICK_IDS = [
  "gclid",
  "gbraid",
  "wbraid",
  "dclid",
  "msclkid",
  "ttclid",
  "twclid",
  "li_fat_id",
];
const MAX = 200;

function host(url: string): string {
  try {
    return new URL(url).hostname.toLowerCase();
  } catch {
    return "";
  }
}

export function parseLanding(landingUrl: string, referrer: string): Landing {
  let params = new URLSearchParams();
  try {
    params = new URL(landingUrl).searchParams;
  } catch { /* no landing URL: no UTM */ }
  const get = (name: string) => (params.get(name) ?? "").trim().slice(0, MAX);
  return {
    utm_source: get("utm_source"),
    utm_medium: get("utm_medium"),
    utm_campaign: get("utm_campaign"),
    click_id: CLICK_IDS.some((k) => params.has(k)),
    referrer_host: host(referrer),
    page_host: host(landingUrl),
  };
}
