// Re-sends: exact copies of earlier valid rows (from the same file or an earlier one) and
// conflicting duplicates (an accepted row's event_id with another price or quantity). Only rows
// that were written valid and accepted are ever offered; copies and conflicts never are. A row
// is kept as its event, id and time and written again the same way, so a copy is byte-identical.
import { centsToText } from "./catalog.ts";
import type { ShopEvent } from "./model.ts";
import type { Random } from "./random.ts";
import type { Override } from "./rows.ts";
import { LIMITS, PRICED_TYPES, type SchemaVersion } from "../common/contract.ts";

/** Share of duplicate rows that are conflicting duplicates (the rest are exact re-sends). */
export const CONFLICT_SHARE = 0.2;
/** Rows remembered per sample; sampling keeps them spread over everything written so far. */
const SAMPLE_SIZE = 1024;

/** A row as written: enough to write it again. */
export interface Sent {
  event: ShopEvent;
  uuid: Uint8Array;
  ms: number;
}

/** A fixed-size uniform sample of everything offered (reservoir sampling). */
class Reservoir {
  items: Sent[] = [];
  private seen = 0;

  constructor(private readonly rng: Random) {}

  /** Where an offered row goes in the sample, or -1 when it is not kept. */
  slot(): number {
    this.seen++;
    if (this.items.length < SAMPLE_SIZE) return this.items.length;
    const j = this.rng.int(this.seen);
    return j < SAMPLE_SIZE ? j : -1;
  }

  add(sent: Sent): void {
    const i = this.slot();
    if (i >= 0) this.items[i] = sent;
  }

  pick(): Sent | undefined {
    return this.items.length ? this.rng.pick(this.items) : undefined;
  }

  clear(): void {
    this.items = [];
    this.seen = 0;
  }
}

export class ResendPool {
  private readonly thisFile: Reservoir;
  private readonly earlier: Reservoir;
  private readonly pricedThisFile: Reservoir;
  private readonly pricedEarlier: Reservoir;

  constructor(private readonly rng: Random, private readonly version: SchemaVersion) {
    this.thisFile = new Reservoir(rng);
    this.earlier = new Reservoir(rng);
    this.pricedThisFile = new Reservoir(rng);
    this.pricedEarlier = new Reservoir(rng);
  }

  /** Offers a row that was written valid and will be accepted (first of its event_id). */
  accepted(event: ShopEvent, uuid: Uint8Array, ms: number): void {
    const priced = PRICED_TYPES.includes(event.type);
    const i = this.thisFile.slot();
    const j = priced ? this.pricedThisFile.slot() : -1;
    if (i < 0 && j < 0) return;
    const sent = { event, uuid: uuid.slice(), ms };
    if (i >= 0) this.thisFile.items[i] = sent;
    if (j >= 0) this.pricedThisFile.items[j] = sent;
  }

  /** Moves this file's sample into the earlier-files sample. */
  endFile(): void {
    for (const sent of this.thisFile.items) this.earlier.add(sent);
    for (const sent of this.pricedThisFile.items) this.pricedEarlier.add(sent);
    this.thisFile.clear();
    this.pricedThisFile.clear();
  }

  /** An earlier valid row to send again unchanged: half from this file, half from earlier. */
  exact(): Sent | undefined {
    return this.either(this.thisFile, this.earlier);
  }

  /** An accepted priced row, and another price (or, in v2, quantity) for it. */
  conflict(): { sent: Sent; override: Override } | undefined {
    const sent = this.either(this.pricedThisFile, this.pricedEarlier);
    if (!sent) return undefined;
    const { event } = sent;
    if (this.version >= 2 && this.rng.chance(0.4)) {
      const q = event.quantity;
      return { sent, override: { quantity: String(q >= 5 ? q - this.rng.between(1, 4) : q + 1) } };
    }
    const cents = event.product!.priceCents;
    const change = Math.max(1, Math.round(cents * (0.05 + 0.2 * this.rng.next())));
    const next = cents + change <= LIMITS.maxPrice * 100 ? cents + change : cents - change;
    return { sent, override: { price: centsToText(Math.max(1, next)) } };
  }

  private either(a: Reservoir, b: Reservoir): Sent | undefined {
    const [first, second] = this.rng.chance(0.5) ? [a, b] : [b, a];
    return first.pick() ?? second.pick();
  }
}
