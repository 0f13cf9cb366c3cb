// The one batch path into PostgreSQL, for every source (files, HTTP, Kafka): the protocol
// (open_batch -> COPY -> process_batch -> commit, stage.ts), the CSV scanner and the wire
// format it writes for COPY (csv.ts), JSON event objects read as CSV fields (json.ts), and
// the loading of a whole file or in-memory batch (load.ts). Sources import this face only.
export {
  batchParts,
  type BatchResult,
  type BatchSpec,
  malformedJson,
  type Opened,
  type PartCounts,
  stageBatch,
  type Staged,
} from "./stage.ts";
export { crashPoint, pausePoint, type Settings, settings } from "./settings.ts";
export {
  bytesSource,
  FileChangedError,
  fileSource,
  loadFile,
  type LoadOptions,
  type LoadResult,
  loadSource,
  type Outcome,
  scannedSource,
  type Source,
} from "./load.ts";
export { CopyError, copyStream } from "./copy.ts";
export { recoverPrepared } from "./slices.ts";
export {
  csvLine,
  CsvScanner,
  HeaderError,
  lineCount,
  type MalformedRow,
  rawText,
  readWireRecord,
  splitRecord,
  WIRE_PREFIX_BYTES,
  wirePrefixSize,
  writeWirePrefix,
} from "./csv.ts";
export { field, isRawJson, parseExact, repeatedKey } from "./json.ts";
