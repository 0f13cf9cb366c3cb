// Kafka record batches read whole. kafkajs 2.2.4 decodes every record of a fetch into an object:
// its offset and timestamp as strings computed with BigInt-backed Long arithmetic, its key and
// value as Buffers, a headers object, a Decoder per record. The consumer holds tens of thousands
// of them at a time (the micro-batches fetched ahead), so they also cost the garbage collector.
// `install()` replaces the decoder of the Fetch v11 response (the version kafkajs uses with
// brokers of Kafka 2.3 and later) with one that yields ONE entry per record batch: its fields
// are those kafkajs's own per-record logic reads (the offset, here the batch's last, so that
// kafkajs resolves and fetches on from the right place; the batch context for aborted
// transactions; a control batch's marker key), and `records` holds the batch's raw records.
// `messagesOf` then reads the offsets and values of the records straight from those bytes.
// Everything else (group membership, fetch sessions, seeking, filtering by the fetched offset
// and by aborted transactions) stays kafkajs's. records_test.ts checks that a fetch read this
// way gives exactly the messages kafkajs's own decoder gives (plain, gzip, transactions).
import type { Buffer } from "node:buffer";
import v11 from "kafkajs/src/protocol/requests/fetch/v11/response.js";
import Decoder from "kafkajs/src/protocol/decoder.js";
import compression from "kafkajs/src/protocol/message/compression/index.js";
import MessageSetDecoder from "kafkajs/src/protocol/messageSet/decoder.js";
import type { Message } from "./batch.ts";

/** A record batch as kafkajs sees it after install(): one "message". */
export interface RecordBatchEntry {
  offset: string;
  records: { bytes: Uint8Array; count: number; baseOffset: bigint };
}

// kafkajs's own decoder, kept for the comparison test
// deno-lint-ignore no-explicit-any
const kafkajsDecode: (raw: Buffer) => Promise<any> = v11.decode;

const CONTROL_FLAG = 0x20, TRANSACTIONAL_FLAG = 0x10, TIMESTAMP_TYPE_FLAG = 0x08;
const HEADER = 61; // baseOffset .. record count
const MAGIC_AT = 16;

/** A zigzag varint at `at`: [value, position after it] (values within 2^31, as lengths are). */
function varint(b: Uint8Array, at: number): [number, number] {
  const value = readVarint(b, at);
  return [value, varintEnd];
}

/**
 * The position after the varint readVarint read last: the per-record reading below takes it
 * from here rather than from a [value, position] pair, which made an array per field of every
 * record (the consumer's largest source of garbage, with the messages themselves).
 */
let varintEnd = 0;

/** A zigzag varint at `at`; the position after it in varintEnd. */
function readVarint(b: Uint8Array, at: number): number {
  let n = 0, shift = 0, byte: number;
  do {
    byte = b[at++];
    n += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  varintEnd = at;
  return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
}

function skipVarint(b: Uint8Array, at: number): number {
  while (b[at++] & 0x80) { /* continuation */ }
  return at;
}

/** The record batches of one partition's record set, as entries (see RecordBatchEntry). */
// deno-lint-ignore no-explicit-any
async function decodeRecordSet(decoder: any): Promise<unknown[]> {
  const size = decoder.readInt32();
  if (size <= 0 || !decoder.canReadBytes(size)) return [];
  const buf: Buffer = decoder.readBytes(size);
  if (buf.length <= MAGIC_AT || buf.readInt8(MAGIC_AT) !== 2) {
    // the legacy message formats (magic 0 and 1): kafkajs's own reader
    return MessageSetDecoder(new Decoder(buf), size);
  }
  const entries: unknown[] = [];
  for (let at = 0; at + HEADER <= buf.length;) {
    const baseOffset = buf.readBigInt64BE(at);
    const length = buf.readInt32BE(at + 8);
    const end = at + 12 + length;
    // the last batch of a fetch may be cut short (the fetch's byte limit): fetched again later
    if (end > buf.length) break;
    const attributes = buf.readInt16BE(at + 21);
    const lastOffsetDelta = buf.readInt32BE(at + 23);
    const firstTimestamp = buf.readBigInt64BE(at + 27).toString();
    const maxTimestamp = buf.readBigInt64BE(at + 35).toString();
    const producerId = buf.readBigInt64BE(at + 43).toString();
    const producerEpoch = buf.readInt16BE(at + 51);
    const firstSequence = buf.readInt32BE(at + 53);
    const count = buf.readInt32BE(at + 57);
    let bytes: Uint8Array = buf.subarray(at + HEADER, end);
    const codec = compression.lookupCodecByAttributes(attributes);
    if (codec) bytes = await codec.decompress(bytes);
    // a plain view, not a Buffer: the message values are cut from it with the built-in
    // subarray, not Buffer's, which costs twice as much garbage a message
    bytes = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const isControlBatch = (attributes & CONTROL_FLAG) !== 0;
    const batchContext = {
      firstOffset: baseOffset.toString(),
      firstTimestamp,
      partitionLeaderEpoch: buf.readInt32BE(at + 12),
      inTransaction: (attributes & TRANSACTIONAL_FLAG) !== 0,
      isControlBatch,
      lastOffsetDelta,
      producerId,
      producerEpoch,
      firstSequence,
      maxTimestamp,
      timestampType: (attributes & TIMESTAMP_TYPE_FLAG) !== 0 ? 1 : 0,
      magicByte: 2,
    };
    entries.push({
      magicByte: 2,
      attributes,
      timestamp: maxTimestamp,
      offset: (baseOffset + BigInt(lastOffsetDelta)).toString(),
      // a control batch's one record: its key is the marker (kafkajs ends an aborted
      // transaction at the abort marker, key 0,0,0,0)
      key: isControlBatch && count > 0 ? controlKey(bytes) : null,
      value: null,
      headers: {},
      isControlRecord: isControlBatch,
      batchContext,
      records: { bytes, count, baseOffset },
    });
    at = end;
  }
  return entries;
}

function controlKey(bytes: Uint8Array): Uint8Array | null {
  let at = varint(bytes, 0)[1] + 1; // length, attributes
  at = skipVarint(bytes, at); // timestamp delta
  at = skipVarint(bytes, at); // offset delta
  const [keyLength, from] = varint(bytes, at);
  return keyLength < 0 ? null : bytes.subarray(from, from + keyLength);
}

/** The Fetch v11 response, as kafkajs's decode reads it, with record sets read by batch. */
async function decode(raw: Buffer) {
  const decoder = new Decoder(raw);
  const clientSideThrottleTime = decoder.readInt32();
  const errorCode = decoder.readInt16();
  const sessionId = decoder.readInt32();
  // deno-lint-ignore no-explicit-any
  const responses = await decoder.readArrayAsync(async (d: any) => ({
    topicName: d.readString(),
    // deno-lint-ignore no-explicit-any
    partitions: await d.readArrayAsync(async (p: any) => ({
      partition: p.readInt32(),
      errorCode: p.readInt16(),
      highWatermark: p.readInt64().toString(),
      lastStableOffset: p.readInt64().toString(),
      lastStartOffset: p.readInt64().toString(),
      // deno-lint-ignore no-explicit-any
      abortedTransactions: p.readArray((a: any) => ({
        producerId: a.readInt64().toString(),
        firstOffset: a.readInt64().toString(),
      })),
      preferredReadReplica: p.readInt32(),
      messages: await decodeRecordSet(p),
    })),
  }));
  return { throttleTime: 0, clientSideThrottleTime, errorCode, sessionId, responses };
}

let installed = false;

/** Makes kafkajs read Fetch v11 record sets by batch (idempotent; process-wide). */
export function install(): void {
  if (installed) return;
  installed = true;
  v11.decode = decode;
}

/** kafkajs's own Fetch v11 decoder and this module's, for tests. */
export const decoders = { kafkajs: kafkajsDecode, byBatch: decode };

/**
 * The messages of a kafkajs batch's entries at or after `from` (the fetched offset): records
 * of the record-batch entries read from their bytes, and kafkajs's own messages (a broker
 * answering an older Fetch version) taken as they are.
 */
export function messagesOf(
  topic: string,
  partition: number,
  // deno-lint-ignore no-explicit-any
  entries: readonly any[],
  from: bigint | undefined,
): Message[] {
  const out: Message[] = [];
  for (const e of entries) {
    if (e.records === undefined) {
      const offset = BigInt(e.offset);
      if (from === undefined || offset >= from) {
        out.push({ topic, partition, offset, value: e.value });
      }
      continue;
    }
    const { bytes, count, baseOffset } = e.records as RecordBatchEntry["records"];
    let at = 0;
    for (let i = 0; i < count; i++) {
      const length = readVarint(bytes, at);
      const start = varintEnd;
      at = start + length;
      let p = skipVarint(bytes, start + 1); // attributes, timestamp delta
      const offsetDelta = readVarint(bytes, p);
      const keyLength = readVarint(bytes, varintEnd);
      p = varintEnd + Math.max(keyLength, 0);
      const valueLength = readVarint(bytes, p);
      const valueAt = varintEnd;
      const offset = baseOffset + BigInt(offsetDelta);
      if (from !== undefined && offset < from) continue;
      out.push({
        topic,
        partition,
        offset,
        value: valueLength < 0 ? null : bytes.subarray(valueAt, valueAt + valueLength),
      });
    }
  }
  return out;
}
