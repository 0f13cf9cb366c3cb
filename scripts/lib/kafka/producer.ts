// Producer mode of `deno task generate`: the records of a generated CSV file as Kafka messages,
// one event per message, in file order. Readable records become JSON objects (the header's
// names, the fields' text as written) or stay CSV records; malformed records are sent as their
// raw bytes, so the consumer dead-letters them exactly as the file path would. The manifest of
// the files is therefore the manifest of the messages.
import { Buffer } from "node:buffer";
import type { Kafka, Producer } from "kafkajs";
import { CsvScanner, splitRecord } from "../batch/mod.ts";
import { type ClientSettings, kafkaClient } from "./client.ts";
import type { Format } from "./batch.ts";

export interface ProduceOptions {
  client: ClientSettings;
  /** the topic, or with routeByType the prefix: <topic>.views, .carts, .purchases, .searches, .other */
  topic: string;
  routeByType: boolean;
  format: Format;
}

export const ROUTES: Record<string, string> = {
  view: "views",
  add_to_cart: "carts",
  remove_from_cart: "carts",
  wishlist: "carts",
  purchase: "purchases",
  search: "searches",
};

/** The topics a run writes to (to create them, or to consume them all). */
export function topicsOf(o: Pick<ProduceOptions, "topic" | "routeByType">): string[] {
  if (!o.routeByType) return [o.topic];
  return [...new Set(Object.values(ROUTES)), "other"].map((r) => `${o.topic}.${r}`);
}

interface Record_ {
  line: number;
  value: Uint8Array;
  key: string | null;
  type: string | null;
}

const LF = 0x0a, QUOTE = 0x22;
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** The records of one CSV file in line order, each as the message to send. */
export function messagesOf(
  bytes: Uint8Array,
  format: Format,
): { header: string[]; records: Record_[] } {
  const scanner = new CsvScanner();
  const out = [scanner.push(bytes), scanner.end()];
  const header = scanner.header ?? [];
  const names = header.map((h) => h.trim().toLowerCase());
  const typeAt = names.indexOf("event_type"), userAt = names.indexOf("user_id");
  const sessionAt = names.indexOf("session_id");
  const keyOf = (fields: string[]) => {
    for (const at of [userAt, sessionAt]) {
      if (at >= 0 && fields[at]?.trim()) return fields[at].trim();
    }
    return null;
  };
  const records: Record_[] = [];
  for (const chunk of out) {
    // COPY-ready records: "line_no,fields...\n", a newline inside quotes belongs to the field
    let start = 0, quoted = false;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (b === QUOTE) quoted = !quoted;
      else if (b === LF && !quoted) {
        const text = decoder.decode(chunk.subarray(start, i));
        start = i + 1;
        const comma = text.indexOf(",");
        const line = Number(text.slice(0, comma));
        const record = text.slice(comma + 1);
        const fields = splitRecord(record);
        const value = format === "csv"
          ? encoder.encode(record)
          : encoder.encode(JSON.stringify(Object.fromEntries(names.map((n, j) => [n, fields[j]]))));
        records.push({
          line,
          value,
          key: keyOf(fields),
          type: typeAt >= 0 ? (fields[typeAt] ?? "").trim().toLowerCase() : null,
        });
      }
    }
  }
  for (const m of scanner.malformed) {
    records.push({ line: m.lineNo, value: m.raw, key: null, type: null });
  }
  records.sort((a, b) => a.line - b.line);
  return { header, records };
}

export class EventProducer {
  readonly #o: ProduceOptions;
  readonly #producer: Producer;
  readonly #kafka: Kafka;
  sent = 0;

  constructor(o: ProduceOptions) {
    this.#o = o;
    this.#kafka = kafkaClient(o.client);
    // idempotent: a send retried after a lost acknowledgement (a broker that has just started
    // or failed over) is written once, so the topics hold exactly the manifest's events (seen
    // without it on a fresh broker: 3,344 messages for 3,000 events)
    this.#producer = this.#kafka.producer({
      allowAutoTopicCreation: false,
      idempotent: true,
      maxInFlightRequests: 1,
    });
  }

  /** Connects; creates the topics that do not exist yet (with `partitions` partitions). */
  async connect(partitions = 4) {
    const admin = this.#kafka.admin();
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      const missing = topicsOf(this.#o).filter((t) => !existing.has(t));
      if (missing.length) {
        await admin.createTopics({
          waitForLeaders: true,
          topics: missing.map((topic) => ({ topic, numPartitions: partitions })),
        });
      }
    } finally {
      await admin.disconnect();
    }
    await this.#producer.connect();
  }

  /** Sends every record of one CSV file; resolves when the broker acknowledged them all. */
  async sendFile(
    path: string,
    onSent?: (r: { line: number; topic: string; at: number }[]) => void,
  ) {
    const { records } = messagesOf(await Deno.readFile(path), this.#o.format);
    const BATCH = 2_000;
    for (let i = 0; i < records.length; i += BATCH) {
      const byTopic = new Map<string, { key: string | null; value: Buffer }[]>();
      const slice = records.slice(i, i + BATCH);
      for (const r of slice) {
        const topic = this.#topicOf(r.type);
        let list = byTopic.get(topic);
        if (!list) byTopic.set(topic, list = []);
        list.push({
          key: r.key,
          value: Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength),
        });
      }
      for (const [topic, messages] of byTopic) {
        await this.#producer.send({ acks: -1, topic, messages });
      }
      this.sent += slice.length;
      onSent?.(slice.map((r) => ({ line: r.line, topic: this.#topicOf(r.type), at: Date.now() })));
    }
  }

  #topicOf(type: string | null): string {
    if (!this.#o.routeByType) return this.#o.topic;
    const route = type && Object.hasOwn(ROUTES, type) ? ROUTES[type] : "other";
    return `${this.#o.topic}.${route}`;
  }

  async disconnect() {
    await this.#producer.disconnect();
  }
}
