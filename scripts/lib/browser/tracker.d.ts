// Types of tracker.js (docs/tracking.md#the-event-api).

export interface TrackerOptions {
  /** the collector's base URL, e.g. "https://collect.shop.example" */
  endpoint: string;
  /** the site's public write key (deno task sites add): "pk_" and 32 hex digits */
  key: string;
  /** true when the shopper agreed (or none is needed); else nothing is sent or stored */
  consent?: boolean;
  /** minutes without an event after which the next one starts a new session (default 30) */
  sessionMinutes?: number;
  /** how long an event waits for others before its batch is sent, ms (default 1000) */
  flushMs?: number;
  /** events in one request (default 20; the collector accepts BROWSER_MAX_EVENTS) */
  maxBatch?: number;
  /** events kept while the collector cannot be reached (default 1000, oldest dropped) */
  maxQueue?: number;
  /** events older than this are dropped from the queue (default 72) */
  maxAgeHours?: number;
  /** ISO code for products without their own (USD, EUR, GBP; empty: USD) */
  currency?: string;
}

export interface Product {
  /** the product id: an integer > 0 (as a string beyond 2^53) */
  id: number | string;
  /** electronics, clothing, home_garden, sports, books, beauty, toys, grocery */
  category: string;
  /** decimal with at most 2 fraction digits (a string keeps it exact) */
  price?: number | string;
  currency?: string;
}

export interface OrderLine extends Product {
  quantity?: number;
}

export interface Order {
  items: OrderLine[];
  currency?: string;
  /** card, paypal, apple_pay, google_pay, bank_transfer */
  paymentMethod?: string;
}

export function init(options: TrackerOptions): void;
export function setConsent(granted: boolean): void;
export function identify(userId: number | string): void;
export function reset(): void;
export function page(): void;
export function productView(p: Product): void;
export function search(query: string): void;
export function addToCart(p: Product, quantity?: number): void;
export function removeFromCart(p: Product, quantity?: number): void;
export function wishlist(p: Product): void;
export function purchase(order: Order): void;
export function flush(): Promise<void>;
export function uuidv7(): string;
