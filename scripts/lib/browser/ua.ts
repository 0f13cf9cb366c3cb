// The device class of a User-Agent, and whether it is a bot. Parsing, not a business rule: the
// three classes are the contract's device domain (desktop, mobile, tablet) and nothing else is
// derived from the string (docs/tracking.md#device). Kept in TypeScript because it runs before
// the batch exists (a bot's request never becomes one).

export type Device = "desktop" | "mobile" | "tablet";

export interface UserAgent {
  device: Device;
  /** a crawler, a headless or scripted browser, an HTTP library, or no User-Agent at all */
  bot: boolean;
}

// words crawlers, link previewers, monitors and HTTP libraries put in their User-Agent; "bot"
// only as a word or before a version/separator (a "CUBOT" phone is not a bot)
const BOT =
  /\bbot\b|bot[/\-_;]|crawl|spider|slurp|headless|lighthouse|pagespeed|externalhit|facebookcatalog|preview|python|curl\/|wget|httpclient|java\/|go-http-client|okhttp|axios|node-fetch|scrapy|phantomjs|puppeteer|playwright|selenium|mediapartners|adsbot|feedfetcher|ia_archiver|pingdom|uptime|monitor|semrush|ahrefs|bytespider|petalbot|\bk6\//i;
const TABLET = /ipad|tablet|kindle|silk\/|playbook|nexus (7|9|10)\b|\bsm-[tpx]\d/i;
const MOBILE = /mobi|iphone|ipod|android|windows phone|blackberry|bb10|opera mini|iemobile/i;

export function parseUserAgent(ua: string | null): UserAgent {
  const s = (ua ?? "").trim();
  if (s === "" || BOT.test(s)) return { device: "desktop", bot: true };
  if (TABLET.test(s)) return { device: "tablet", bot: false };
  // Android without "Mobile" is a tablet (Google's guidance for Android browsers)
  if (/android/i.test(s) && !/mobile/i.test(s)) return { device: "tablet", bot: false };
  if (MOBILE.test(s)) return { device: "mobile", bot: false };
  return { device: "desktop", bot: false };
}
