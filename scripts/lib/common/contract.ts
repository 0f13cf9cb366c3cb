// The contract's vocabulary (docs/contract.md sections 1 and 2): columns, domains, reason codes.

export const EVENT_TYPES = [
  "view",
  "search",
  "add_to_cart",
  "remove_from_cart",
  "wishlist",
  "purchase",
] as const;
export type EventType = typeof EVENT_TYPES[number];

export const CATEGORIES = [
  "electronics",
  "clothing",
  "home_garden",
  "sports",
  "books",
  "beauty",
  "toys",
  "grocery",
] as const;
export type Category = typeof CATEGORIES[number];

export const CURRENCIES = ["USD", "EUR", "GBP"] as const;
export const DEVICES = ["desktop", "mobile", "tablet"] as const;
export const TRAFFIC_SOURCES = ["direct", "search", "social", "email", "ads", "referral"] as const;
export const PAYMENT_METHODS = [
  "card",
  "paypal",
  "apple_pay",
  "google_pay",
  "bank_transfer",
] as const;
export type Currency = typeof CURRENCIES[number];
export type Device = typeof DEVICES[number];
export type TrafficSource = typeof TRAFFIC_SOURCES[number];
export type PaymentMethod = typeof PAYMENT_METHODS[number];

/** Schema version 2 columns, in the order the generator writes them. */
export const COLUMNS_V2 = [
  "event_id",
  "event_time",
  "event_type",
  "user_id",
  "session_id",
  "product_id",
  "category",
  "price",
  "quantity",
  "currency",
  "device",
  "traffic_source",
  "payment_method",
  "search_query",
  "user_email",
] as const;
/**
 * Schema version 3 (the worked example of docs/schema-registry.md, registered from
 * db/schemas/v3-coupon-code.json): version 2 plus coupon_code, kept in core.events.extra.
 */
export const COLUMNS_V3 = [...COLUMNS_V2, "coupon_code"] as const;
export type Column = typeof COLUMNS_V3[number];

/** Schema version 1 columns (older producers). */
export const COLUMNS_V1 = [
  "event_id",
  "event_time",
  "event_type",
  "user_id",
  "product_id",
  "category",
  "price",
] as const satisfies readonly Column[];

export type SchemaVersion = 1 | 2 | 3;
export const SCHEMA_VERSIONS: readonly SchemaVersion[] = [1, 2, 3];

export function columnsOf(version: SchemaVersion): readonly Column[] {
  return version === 1 ? COLUMNS_V1 : version === 2 ? COLUMNS_V2 : COLUMNS_V3;
}

/** Every reason code, in the contract's order (an invalid row lists its reasons in this order). */
export const REASON_CODES = [
  "malformed_row",
  "missing_event_id",
  "invalid_event_id",
  "missing_event_time",
  "invalid_event_time",
  "future_event_time",
  "too_old_event_time",
  "missing_event_type",
  "invalid_event_type",
  "missing_user_id",
  "invalid_user_id",
  "missing_session_id",
  "invalid_session_id",
  "missing_product_id",
  "invalid_product_id",
  "invalid_category",
  "missing_price",
  "invalid_price",
  "negative_price",
  "zero_price",
  "extreme_price",
  "invalid_quantity",
  "invalid_currency",
  "invalid_device",
  "invalid_traffic_source",
  "invalid_payment_method",
  "invalid_search_query",
  "conflicting_duplicate",
] as const;
export type ReasonCode = typeof REASON_CODES[number];

/** Types that need a known user (a guest row of these types is missing_user_id). */
export const USER_TYPES: readonly EventType[] = [
  "add_to_cart",
  "remove_from_cart",
  "wishlist",
  "purchase",
];

/** Types whose price and quantity are checked (on view, search and wishlist they are ignored). */
export const PRICED_TYPES: readonly EventType[] = ["add_to_cart", "remove_from_cart", "purchase"];

/** Thresholds of the validation (contract defaults; the generator stays far from them). */
export const LIMITS = {
  maxPrice: 10000,
  futureToleranceMs: 5 * 60_000,
  tooOldMs: 400 * 86_400_000,
  lateAfterMs: 10 * 60_000,
  maxSessionId: 64,
  maxSearchQuery: 200,
  maxQuantity: 1000,
} as const;
