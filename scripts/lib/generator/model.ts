// The shop: users in segments, sessions that follow a funnel (browse, search, wishlist, cart,
// checkout) and carts that survive between sessions. It produces events in order; time, ids and
// CSV are someone else's concern.
import { type Catalog, type Product, SEARCH_TERMS } from "./catalog.ts";
import { cumulative, type Random } from "./random.ts";
import type {
  Category,
  Currency,
  Device,
  EventType,
  PaymentMethod,
  TrafficSource,
} from "../common/contract.ts";
import { DEVICES, PAYMENT_METHODS, TRAFFIC_SOURCES } from "../common/contract.ts";

export const SEGMENTS = ["new", "returning", "premium", "inactive"] as const;
export type Segment = typeof SEGMENTS[number];

interface Profile {
  /** Share of the user population. */
  share: number;
  /** How often a user of the segment starts a session, relative to the others. */
  activity: number;
  /** Mean number of products looked at per session. */
  browse: number;
  /** Per product looked at: chance it was found by a search first. */
  search: number;
  /** Per product viewed: chance of a wishlist; add to cart relative to the funnel's cart rate. */
  wishlist: number;
  addToCart: number;
  /** Per product viewed, when the cart is not empty: chance of removing something. */
  remove: number;
  /** At the end of a session that carted: relative to the funnel's checkout rate. */
  checkout: number;
  /** Chance of a larger quantity (2..5) on an add to cart. */
  bulk: number;
  /** Chance of looking at a pricier alternative. */
  upmarket: number;
  /** Weights of direct, search, social, email, ads, referral. */
  sources: readonly number[];
}

const PROFILES: Readonly<Record<Segment | "guest", Profile>> = {
  new: {
    share: 0.25,
    activity: 1,
    browse: 4,
    search: 0.24,
    wishlist: 0.05,
    addToCart: 0.8,
    remove: 0.03,
    checkout: 0.8,
    bulk: 0.2,
    upmarket: 0,
    sources: [10, 35, 20, 2, 25, 8],
  },
  returning: {
    share: 0.45,
    activity: 1.6,
    browse: 5,
    search: 0.2,
    wishlist: 0.06,
    addToCart: 1,
    remove: 0.03,
    checkout: 1,
    bulk: 0.3,
    upmarket: 0.1,
    sources: [35, 20, 8, 25, 7, 5],
  },
  premium: {
    share: 0.12,
    activity: 2.5,
    browse: 6,
    search: 0.17,
    wishlist: 0.07,
    addToCart: 1.5,
    remove: 0.03,
    checkout: 1.3,
    bulk: 0.45,
    upmarket: 0.4,
    sources: [45, 10, 5, 30, 5, 5],
  },
  inactive: {
    share: 0.18,
    activity: 0.15,
    browse: 2,
    search: 0.25,
    wishlist: 0.04,
    addToCart: 0.5,
    remove: 0.04,
    checkout: 0.6,
    bulk: 0.1,
    upmarket: 0,
    sources: [10, 15, 10, 45, 15, 5],
  },
  guest: {
    share: 0,
    activity: 0,
    browse: 3,
    search: 0.25,
    wishlist: 0,
    addToCart: 0,
    remove: 0,
    checkout: 0,
    bulk: 0,
    upmarket: 0,
    sources: [15, 35, 20, 0, 20, 10],
  },
};

/**
 * How a session converts, before the segment, traffic source and device factors below:
 * `cart` = chance of an add to cart per product viewed, `checkout` = chance that a session that
 * carted buys its cart, `buyNow` = chance per product viewed of buying it at once without a
 * cart ("buy now": the only purchases without an add to cart in the same session). The
 * defaults give a few % of sessions with a cart and 1-5 % of visitors buying per day
 * (scripts/lib/generator/stats_test.ts).
 */
export interface Funnel {
  cart: number;
  checkout: number;
  buyNow: number;
}

export const DEFAULT_FUNNEL: Readonly<Funnel> = { cart: 0.009, checkout: 0.45, buyNow: 0.0003 };

/** Conversion factors: email and direct traffic and desktops buy more than social and mobile. */
const SOURCE_FACTOR: Readonly<Record<TrafficSource, number>> = {
  direct: 1.3,
  search: 1,
  social: 0.45,
  email: 1.7,
  ads: 0.7,
  referral: 1.1,
};
const DEVICE_FACTOR: Readonly<Record<Device, number>> = { desktop: 1.3, mobile: 0.75, tablet: 1 };

/** Share of sessions without a logged-in user. */
export const GUEST_SESSION_SHARE = 0.1;
/** Items beyond this many in a cart are forgotten (the oldest first). */
const CART_LIMIT = 8;

const FIRST_NAMES = [
  "anna",
  "ben",
  "chloe",
  "david",
  "emma",
  "farid",
  "grace",
  "hugo",
  "ines",
  "jonas",
  "kai",
  "lea",
  "maria",
  "noah",
  "olga",
  "pablo",
  "quinn",
  "rosa",
  "sam",
  "tara",
  "yuki",
  "zoe",
];
const LAST_NAMES = [
  "smith",
  "muller",
  "garcia",
  "rossi",
  "novak",
  "dubois",
  "jensen",
  "tanaka",
  "silva",
  "kowalski",
  "brown",
  "okafor",
  "nguyen",
  "larsen",
];
const EMAIL_DOMAINS = ["example.com", "example.org", "mail.example.net", "shop-mail.example"];

const CURRENCY_CUM = cumulative([70, 20, 10]);
const CURRENCY_LIST: readonly Currency[] = ["USD", "EUR", "GBP"];
const DEVICE_CUM = cumulative([42, 48, 10]);
const PAYMENT_CUM = cumulative([45, 25, 12, 10, 8]);
/** Weights of 2, 3, 4, 5 on a larger buy. */
const BULK_CUM = cumulative([55, 25, 12, 8]);

export interface CartItem {
  product: Product;
  quantity: number;
}

export interface User {
  id: number;
  idText: string;
  segment: Segment;
  email: string;
  currency: Currency;
  device: Device;
  payment: PaymentMethod;
  favourite: Category;
  /** What is in the cart now (kept between sessions). */
  cart: CartItem[];
  /** Kept for the row writer (rows.ts): `user_id,` and `user_email` LF. */
  csvId: Uint8Array | null;
  csvTail: Uint8Array | null;
}

export interface Session {
  /** `s_` and 16 hex digits: the two 32-bit numbers below. */
  id: string;
  idHigh: number;
  idLow: number;
  user: User | null;
  device: Device;
  source: TrafficSource;
  currency: Currency;
  /** Kept for the row writer (rows.ts): `,currency,device,traffic_source,`. */
  csvMiddle: Uint8Array | null;
}

/** One event as the shop sees it (the row layer adds id, time and text). */
export interface ShopEvent {
  type: EventType;
  session: Session;
  product: Product | null;
  /** 0 = not given (view, search, wishlist). */
  quantity: number;
  /** "" = not a search. */
  query: string;
  payment: PaymentMethod | null;
}

/** A shop event (quantity 0 = none, query "" = not a search). */
export function shopEvent(
  type: EventType,
  session: Session,
  product: Product | null,
  quantity = 0,
  query = "",
  payment: PaymentMethod | null = null,
): ShopEvent {
  return { type, session, product, quantity, query, payment };
}

export interface ShopOptions {
  users: number;
  products: number;
  /** Sessions open at the same time (their events interleave). */
  concurrency: number;
  /** Conversion rates (default DEFAULT_FUNNEL). */
  funnel?: Funnel;
  /** Sessions come from the first N users only (default all). */
  activeUsers?: number;
  /** Where the users come from (default the shop's own stream): a shared shop's seed. */
  baseRng?: Random;
}

interface OpenSession {
  events: readonly ShopEvent[];
  next: number;
}

/** First user id (ids look like a shop's: 10001, 10002, ...). */
const FIRST_USER_ID = 10_001;

export class Shop {
  readonly catalog: Catalog;
  readonly users: readonly User[];
  private readonly userActivity: number[];
  private readonly open: OpenSession[] = [];
  private readonly sourceCums: Record<Segment | "guest", number[]>;
  private readonly funnel: Funnel;

  constructor(private readonly rng: Random, catalog: Catalog, options: ShopOptions) {
    this.catalog = catalog;
    this.funnel = options.funnel ?? DEFAULT_FUNNEL;
    const segmentCum = cumulative(SEGMENTS.map((s) => PROFILES[s].share));
    const users: User[] = [];
    // who the users are (and what they left in their carts) comes from the base's stream only
    const base = options.baseRng ?? rng;
    for (let i = 0; i < options.users; i++) {
      const id = FIRST_USER_ID + i;
      const segment = SEGMENTS[base.weighted(segmentCum)];
      const first = base.pick(FIRST_NAMES);
      const last = base.pick(LAST_NAMES);
      const user: User = {
        id,
        idText: String(id),
        segment,
        email: `${first}.${last}${id}@${base.pick(EMAIL_DOMAINS)}`,
        currency: CURRENCY_LIST[base.weighted(CURRENCY_CUM)],
        device: DEVICES[base.weighted(DEVICE_CUM)],
        payment: PAYMENT_METHODS[base.weighted(PAYMENT_CUM)],
        favourite: catalog.pickCategory(base),
        cart: [],
        csvId: null,
        csvTail: null,
      };
      // known users arrive with what earlier (unseen) sessions left in their cart
      if (segment !== "new" && base.chance(0.35)) {
        for (let n = base.between(1, 2); n > 0; n--) {
          user.cart.push({ product: catalog.pick(base), quantity: this.quantity(user) });
        }
      }
      users.push(user);
    }
    this.users = users;
    const active = users.slice(0, options.activeUsers ?? users.length);
    this.userActivity = cumulative(active.map((u) => PROFILES[u.segment].activity));
    this.sourceCums = Object.fromEntries(
      [...SEGMENTS, "guest" as const].map((s) => [s, cumulative(PROFILES[s].sources)]),
    ) as Record<Segment | "guest", number[]>;
    const concurrency = Math.max(1, Math.floor(options.concurrency));
    for (let i = 0; i < concurrency; i++) this.open.push(this.startSession());
  }

  /** The next event of some open session. */
  next(): ShopEvent {
    const slot = this.rng.int(this.open.length);
    const session = this.open[slot];
    const event = session.events[session.next++];
    if (session.next >= session.events.length) this.open[slot] = this.startSession();
    return event;
  }

  /** A known user, by how active the segment is (for rows that need one). */
  someUser(): User {
    return this.users[this.rng.weighted(this.userActivity)];
  }

  private startSession(): OpenSession {
    const rng = this.rng;
    const guest = this.userActivity.length === 0 || rng.chance(GUEST_SESSION_SHARE);
    const user = guest ? null : this.someUser();
    const profile = PROFILES[user ? user.segment : "guest"];
    const idHigh = rng.uint32();
    const idLow = rng.uint32();
    const session: Session = {
      id: `s_${idHigh.toString(16).padStart(8, "0")}${idLow.toString(16).padStart(8, "0")}`,
      idHigh,
      idLow,
      user,
      device: user && rng.chance(0.8) ? user.device : DEVICES[rng.weighted(DEVICE_CUM)],
      source: TRAFFIC_SOURCES[rng.weighted(this.sourceCums[user ? user.segment : "guest"])],
      currency: user ? user.currency : rng.chance(0.85) ? "USD" : rng.pick(CURRENCY_LIST),
      csvMiddle: null,
    };
    const events: ShopEvent[] = [];
    const add = (
      type: EventType,
      product: Product | null,
      quantity = 0,
      query = "",
      payment: PaymentMethod | null = null,
    ) => events.push(shopEvent(type, session, product, quantity, query, payment));

    const factor = SOURCE_FACTOR[session.source] * DEVICE_FACTOR[session.device];
    const cartChance = Math.min(1, this.funnel.cart * profile.addToCart * factor);
    const buyNowChance = Math.min(1, this.funnel.buyNow * profile.addToCart * factor);
    const checkoutChance = Math.min(1, this.funnel.checkout * profile.checkout);
    let carted = false;
    let boughtNow = false;
    const looks = rng.count(profile.browse);
    for (let i = 0; i < looks && !boughtNow; i++) {
      let product: Product;
      if (rng.chance(profile.search)) {
        const category = user && rng.chance(0.5) ? user.favourite : this.catalog.pickCategory(rng);
        add("search", null, 0, rng.pick(SEARCH_TERMS[category]));
        product = this.catalog.pickIn(rng, category);
      } else {
        product = user && rng.chance(0.4)
          ? this.catalog.pickIn(rng, user.favourite)
          : this.catalog.pick(rng);
      }
      if (rng.chance(profile.upmarket)) {
        const other = this.catalog.pickIn(rng, product.category);
        if (other.priceCents > product.priceCents) product = other;
      }
      add("view", product);
      if (!user) continue;
      if (rng.chance(profile.wishlist)) add("wishlist", product);
      if (rng.chance(buyNowChance)) {
        // buy now: this product at once, no cart; the session ends with the purchase
        add("purchase", product, 1, "", rng.chance(0.85) ? user.payment : this.payment());
        boughtNow = true;
        break;
      }
      if (rng.chance(cartChance)) {
        const item = { product, quantity: this.quantity(user) };
        user.cart.push(item);
        add("add_to_cart", product, item.quantity);
        carted = true;
      }
      if (user.cart.length > 0 && rng.chance(profile.remove)) {
        const [item] = user.cart.splice(rng.int(user.cart.length), 1);
        add("remove_from_cart", item.product, item.quantity);
      }
    }
    // only a session that carted checks out (what earlier sessions left in the cart goes too)
    if (user && carted && user.cart.length > 0 && rng.chance(checkoutChance)) {
      const payment = rng.chance(0.85) ? user.payment : this.payment();
      for (const item of user.cart) add("purchase", item.product, item.quantity, "", payment);
      user.cart.length = 0;
    }
    if (user && user.cart.length > CART_LIMIT) user.cart.splice(0, user.cart.length - CART_LIMIT);
    return { events, next: 0 };
  }

  private payment(): PaymentMethod {
    return PAYMENT_METHODS[this.rng.weighted(PAYMENT_CUM)];
  }

  /** 1 mostly, up to 5; now and then a bulk buy of 6 to 12. */
  private quantity(user: User): number {
    const rng = this.rng;
    if (!rng.chance(PROFILES[user.segment].bulk)) return 1;
    const q = 2 + rng.weighted(BULK_CUM);
    return q === 5 && rng.chance(0.1) ? rng.between(6, 12) : q;
  }
}
