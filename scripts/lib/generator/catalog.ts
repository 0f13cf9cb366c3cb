// The product catalog: products in the contract's 8 categories, a price range per category,
// popularity that follows a long tail, and what people type into the search box.
import { CATEGORIES, type Category, type Currency } from "../common/contract.ts";
import { cumulative, type Random } from "./random.ts";

/** Price range per category, in currency units (min, max). */
export const PRICE_RANGES: Readonly<Record<Category, readonly [number, number]>> = {
  electronics: [50, 2000],
  clothing: [10, 300],
  home_garden: [15, 800],
  sports: [10, 600],
  books: [5, 100],
  beauty: [5, 150],
  toys: [5, 200],
  grocery: [1, 80],
};

/** Share of the catalog (and of the traffic) per category. */
const CATEGORY_WEIGHTS: Readonly<Record<Category, number>> = {
  electronics: 18,
  clothing: 20,
  home_garden: 12,
  sports: 10,
  books: 12,
  beauty: 10,
  toys: 8,
  grocery: 10,
};

/**
 * Search queries per category. A few hold commas, double quotes, a newline or non-ASCII
 * letters on purpose: they must come out as valid, quoted CSV.
 */
export const SEARCH_TERMS: Readonly<Record<Category, readonly string[]>> = {
  electronics: [
    "wireless headphones",
    "usb-c charger",
    "4k tv 55 inch",
    "laptop 16gb ram",
    "gaming mouse",
    "phone case, clear",
    '"noise cancelling" earbuds',
    "smart watch",
    "hdmi cable 2m",
    "bluetooth speaker waterproof",
  ],
  clothing: [
    "running shoes",
    "winter jacket",
    "jeans slim fit",
    "t-shirt, cotton, black",
    "rain coat",
    "wool socks",
    "summer dress",
    "hoodie",
  ],
  home_garden: [
    "garden hose",
    "led bulbs",
    "coffee table",
    "café chairs",
    "bed sheets queen",
    "plant pots\nceramic",
    "vacuum cleaner",
    "kitchen knife set",
  ],
  sports: [
    "yoga mat",
    "dumbbells 10kg",
    "tennis racket",
    "bike helmet",
    "football",
    "protein shaker",
    'camping tent "4 person"',
  ],
  books: [
    "cookbook",
    "science fiction",
    "children's books",
    "harry potter",
    "history of rome",
    "notebook a5",
    "Größe der Welt",
  ],
  beauty: [
    "sunscreen spf 50",
    "shampoo",
    "face cream",
    "perfume",
    "lipstick, red",
    "hair dryer",
  ],
  toys: ["lego", "puzzle 1000", "board games", "doll house", "rc car", "plush bear"],
  grocery: [
    "coffee beans",
    "olive oil",
    "green tea",
    "pasta",
    "dark chocolate 70%",
    "oat milk",
    "crème fraîche",
  ],
};

/** True when a text needs CSV quoting (comma, double quote, CR or LF). */
export function needsQuoting(text: string): boolean {
  return /[",\r\n]/.test(text);
}

export interface Product {
  /** Catalog index (0-based). */
  index: number;
  id: number;
  idText: string;
  category: Category;
  /** The US price, in cents (the other markets' prices derive from it). */
  priceCents: number;
  /** Price with 2 decimals per market currency, e.g. USD "129.99", EUR "125.99", GBP "103.99". */
  prices: Readonly<Record<Currency, string>>;
  /** Kept for the row writer (rows.ts): `product_id,category,price` per currency. */
  csv: Partial<Record<Currency, Uint8Array>>;
}

/**
 * Units of a market's currency per US dollar that the shop prices with: the inverse of the
 * shipped default rates (db/migrations/20261130000100_exchange_rates.sql: EUR 1.0350, GBP
 * 1.2480 USD per unit). A product costs the converted amount, rounded down to whole units,
 * with the US price's ending (129.99 USD -> 125.99 EUR, 103.99 GBP): not the same number.
 */
export const MARKET_PER_USD: Readonly<Record<Currency, number>> = {
  USD: 1,
  EUR: 1 / 1.035,
  GBP: 1 / 1.248,
};

/** The product's price in each market currency, from its US price in cents. */
export function marketPrices(usdCents: number): Record<Currency, string> {
  const ending = usdCents % 100;
  const units = Math.floor(usdCents / 100);
  const local = (c: Currency) =>
    c === "USD" ? usdCents : Math.max(1, Math.floor(units * MARKET_PER_USD[c])) * 100 + ending;
  return {
    USD: centsToText(local("USD")),
    EUR: centsToText(local("EUR")),
    GBP: centsToText(local("GBP")),
  };
}

/** Formats cents as a decimal with exactly 2 fraction digits. */
export function centsToText(cents: number): string {
  const sign = cents < 0 ? "-" : "";
  const abs = Math.abs(cents);
  const units = Math.floor(abs / 100);
  const frac = abs % 100;
  return `${sign}${units}.${frac < 10 ? "0" : ""}${frac}`;
}

const PRICE_ENDINGS = [99, 99, 99, 49, 95, 0, 50];

/** A price inside the category's range, skewed to the low end, with a shop-like ending. */
function priceFor(rng: Random, category: Category): number {
  const [min, max] = PRICE_RANGES[category];
  const value = Math.exp(Math.log(min) + rng.next() * (Math.log(max) - Math.log(min)));
  const cents = Math.floor(value) * 100 + rng.pick(PRICE_ENDINGS);
  return Math.min(Math.max(cents, min * 100), max * 100);
}

/** First product id (ids look like a shop's: 100001, 100002, ...). */
const FIRST_PRODUCT_ID = 100_001;

export class Catalog {
  readonly products: readonly Product[];
  readonly byCategory: Readonly<Record<Category, readonly Product[]>>;
  private readonly popularity: number[];
  private readonly categoryPopularity: Record<Category, number[]>;
  private readonly categoryWeights: number[];

  constructor(rng: Random, size: number) {
    const categoryCum = cumulative(CATEGORIES.map((c) => CATEGORY_WEIGHTS[c]));
    const products: Product[] = [];
    const byCategory = Object.fromEntries(CATEGORIES.map((c) => [c, [] as Product[]])) as Record<
      Category,
      Product[]
    >;
    for (let i = 0; i < size; i++) {
      // every category has products even in a tiny catalog
      const category = i < CATEGORIES.length
        ? CATEGORIES[i]
        : CATEGORIES[rng.weighted(categoryCum)];
      const priceCents = priceFor(rng, category);
      const id = FIRST_PRODUCT_ID + i;
      const product = {
        index: i,
        id,
        idText: String(id),
        category,
        priceCents,
        prices: marketPrices(priceCents),
        csv: {},
      };
      products.push(product);
      byCategory[category].push(product);
    }
    this.products = products;
    this.byCategory = byCategory;
    // long tail: the k-th most popular product is viewed about 1/k^0.9 as often as the first
    const weights = products.map(() => 0);
    const order = rng.shuffle(products.map((_, i) => i));
    order.forEach((productIndex, rank) => weights[productIndex] = 1 / Math.pow(rank + 1, 0.9));
    this.popularity = cumulative(weights);
    this.categoryPopularity = Object.fromEntries(
      CATEGORIES.map((c) => [c, cumulative(byCategory[c].map((p) => weights[p.index]))]),
    ) as Record<Category, number[]>;
    this.categoryWeights = cumulative(CATEGORIES.map((c) => CATEGORY_WEIGHTS[c]));
  }

  /** A product, by popularity. */
  pick(rng: Random): Product {
    return this.products[rng.weighted(this.popularity)];
  }

  /** A product of one category, by popularity. */
  pickIn(rng: Random, category: Category): Product {
    const list = this.byCategory[category];
    return list[rng.weighted(this.categoryPopularity[category])];
  }

  /** A category, by traffic share. */
  pickCategory(rng: Random): Category {
    return CATEGORIES[rng.weighted(this.categoryWeights)];
  }
}
