// Streaming, atomic file output. Rows are written into a fixed buffer that goes to
// `name.csv.tmp` whenever it fills up (each write awaited, so memory stays bounded); at the end
// the file is closed and appears under its final name in one step, never replacing a file.

/** Size of the write buffer. */
const BUFFER_BYTES = 1 << 20;
/** Room kept free for one more row; every row is far smaller. */
export const ROW_ROOM = 64 * 1024;

const encoder = new TextEncoder();

export class FileExistsError extends Error {
  override name = "FileExistsError";
}

export class AtomicFileWriter {
  /** The buffer and the next free position (row writers fill it directly). */
  readonly buf = new Uint8Array(BUFFER_BYTES);
  pos = 0;
  /** Bytes handed to the file so far. */
  bytes = 0;
  private closed = false;

  private constructor(
    readonly path: string,
    readonly tmpPath: string,
    private readonly file: Deno.FsFile,
  ) {}

  /** Opens `path + ".tmp"` (which must not exist) for a file that will be named `path`. */
  static async create(path: string): Promise<AtomicFileWriter> {
    await assertAbsent(path);
    const tmpPath = `${path}.tmp`;
    let file: Deno.FsFile;
    try {
      file = await Deno.open(tmpPath, { write: true, createNew: true });
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) {
        throw new FileExistsError(`File "${tmpPath}" already exists (another run writing?)`, {
          cause: error,
        });
      }
      throw new Error(`Cannot create "${tmpPath}"`, { cause: error });
    }
    return new AtomicFileWriter(path, tmpPath, file);
  }

  /** True when less than ROW_ROOM is free: call `flush` before the next row. */
  get full(): boolean {
    return this.pos > BUFFER_BYTES - ROW_ROOM;
  }

  /** One byte. */
  byte(b: number): void {
    this.buf[this.pos++] = b;
  }

  /** A string as UTF-8 (a plain loop for ASCII, the encoder from the first other character). */
  ascii(s: string): void {
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 128) {
        const { read, written } = encoder.encodeInto(s.slice(i), buf.subarray(p));
        if (read < s.length - i) throw new RangeError("A row does not fit the write buffer");
        this.pos = p + written;
        return;
      }
      buf[p++] = c;
    }
    this.pos = p;
  }

  /** Bytes encoded earlier. */
  copy(bytes: Uint8Array): void {
    if (bytes.length > 24) {
      this.buf.set(bytes, this.pos);
      this.pos += bytes.length;
      return;
    }
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < bytes.length; i++) buf[p++] = bytes[i];
    this.pos = p;
  }

  /** Raw bytes. */
  raw(bytes: Uint8Array): void {
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** Writes the buffer to the file. */
  async flush(): Promise<void> {
    if (this.pos > BUFFER_BYTES) throw new RangeError("A row overflowed the write buffer");
    let offset = 0;
    while (offset < this.pos) offset += await this.file.write(this.buf.subarray(offset, this.pos));
    this.bytes += this.pos;
    this.pos = 0;
  }

  /** Flushes, closes, and gives the file its final name (fails if that name exists). */
  async commit(): Promise<void> {
    await this.flush();
    this.close();
    try {
      // a hard link never replaces an existing file, unlike rename
      await Deno.link(this.tmpPath, this.path);
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) {
        throw new FileExistsError(`File "${this.path}" already exists; it was not replaced`, {
          cause: error,
        });
      }
      // file systems without hard links: check, then rename
      await assertAbsent(this.path);
      await Deno.rename(this.tmpPath, this.path);
      return;
    }
    await Deno.remove(this.tmpPath);
  }

  /** Closes and deletes the temporary file (after a failure). */
  async abort(): Promise<void> {
    this.close();
    await Deno.remove(this.tmpPath).catch(() => {});
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.file.close();
  }
}

async function assertAbsent(path: string): Promise<void> {
  try {
    await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw new Error(`Cannot check "${path}"`, { cause: error });
  }
  throw new FileExistsError(`File "${path}" already exists; it was not replaced`);
}

/** Writes a small text file atomically (temporary file, then rename). */
export async function writeTextAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, path);
}
