// Safe by default: serve listens on loopback unless told otherwise, and refuses a network
// address while the demo API key or the default EMAIL_HASH_KEY is in use.
import { type Config, INSECURE_DEFAULTS } from "../common/config.ts";

/** 127.0.0.0/8, ::1 and localhost: reachable from this machine only. */
export function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

export interface Exposure {
  /** why serve must not start (one line), or undefined */
  refuse?: string;
  /** lines to log at start */
  warnings: string[];
}

/** What listening on `hostname` with `cfg` means; `allowInsecure` is the demo override. */
export function checkExposure(hostname: string, cfg: Config, allowInsecure: boolean): Exposure {
  const weak: string[] = [];
  const keys = cfg.API_KEYS.split(",").map((k) => k.trim());
  if (keys.includes(INSECURE_DEFAULTS.API_KEYS)) {
    weak.push(`API_KEYS contains the demo key "${INSECURE_DEFAULTS.API_KEYS}"`);
  }
  if (cfg.EMAIL_HASH_KEY === INSECURE_DEFAULTS.EMAIL_HASH_KEY) {
    weak.push("EMAIL_HASH_KEY is the default");
  }
  const warnings: string[] = [];
  if (cfg.EMAIL_HASH_KEY === INSECURE_DEFAULTS.EMAIL_HASH_KEY) {
    warnings.push(
      "EMAIL_HASH_KEY is the default: anyone who knows it can test guessed emails against the stored hashes; set a secret (it cannot change later without re-keying the hashes)",
    );
  }
  if (isLoopback(hostname)) return { warnings };
  if (weak.length && !allowInsecure) {
    return {
      refuse: `refusing to listen on ${hostname} (not loopback) while ${
        weak.join(" and ")
      }: set real secrets, listen on 127.0.0.1, or pass --allow-insecure-defaults (ALLOW_INSECURE_DEFAULTS=1) for a demo`,
      warnings,
    };
  }
  if (weak.length) {
    warnings.push(
      `listening on ${hostname} with ${weak.join(" and ")} (--allow-insecure-defaults)`,
    );
  }
  if (cfg.READ_KEYS.trim() === "") {
    warnings.push(
      `listening on ${hostname} without READ_KEYS: analytics and the dashboard are readable by anyone who reaches it`,
    );
  }
  return { warnings };
}
