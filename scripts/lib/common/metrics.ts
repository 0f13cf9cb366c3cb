// A tiny Prometheus registry: counters, gauges and histograms with labels, rendered in the
// text exposition format 0.0.4 (HELP and TYPE lines, escaped label values).

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type Labels = Record<string, string>;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

const escapeHelp = (s: string) => s.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
const escapeLabel = (s: string) =>
  s.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"');

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

function labelText(names: readonly string[], values: readonly string[], extra = ""): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i])}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(",")}}` : "";
}

abstract class Family<S> {
  abstract readonly type: "counter" | "gauge" | "histogram";
  protected readonly series = new Map<string, { values: string[]; state: S }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[] = [],
  ) {
    if (!NAME.test(name)) throw new RangeError(`Invalid metric name "${name}"`);
    for (const l of labelNames) {
      if (!LABEL.test(l) || l.startsWith("__") || l === "le") {
        throw new RangeError(`Invalid label name "${l}" on metric "${name}"`);
      }
    }
  }

  protected abstract initial(): S;

  protected get(labels: Labels): { values: string[]; state: S } {
    const keys = Object.keys(labels);
    if (
      keys.length !== this.labelNames.length || !this.labelNames.every((n) => n in labels)
    ) {
      throw new RangeError(
        `Metric "${this.name}" takes labels [${this.labelNames.join(", ")}] (got [${
          keys.join(", ")
        }])`,
      );
    }
    const values = this.labelNames.map((n) => String(labels[n]));
    const key = JSON.stringify(values);
    let s = this.series.get(key);
    if (!s) {
      s = { values, state: this.initial() };
      this.series.set(key, s);
    }
    return s;
  }

  /** Forgets every series (gauges refilled from a fresh reading). */
  reset(): void {
    this.series.clear();
  }

  protected abstract samples(): string[];

  render(): string {
    const head = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`;
    const body = this.samples();
    return head + (body.length ? body.join("\n") + "\n" : "");
  }
}

export class Counter extends Family<{ v: number }> {
  readonly type = "counter";

  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, labelNames);
    if (!name.endsWith("_total")) throw new RangeError(`Counter "${name}" must end in _total`);
    if (labelNames.length === 0) this.get({});
  }

  protected initial() {
    return { v: 0 };
  }

  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new RangeError(`Counter "${this.name}" can only go up (got ${by})`);
    this.get(labels).state.v += by;
  }

  value(labels: Labels = {}): number {
    return this.get(labels).state.v;
  }

  protected samples(): string[] {
    return [...this.series.values()].map((s) =>
      `${this.name}${labelText(this.labelNames, s.values)} ${formatValue(s.state.v)}`
    );
  }
}

export class Gauge extends Family<{ v: number }> {
  readonly type = "gauge";

  protected initial() {
    return { v: 0 };
  }

  set(labels: Labels, value: number): void {
    this.get(labels).state.v = value;
  }

  value(labels: Labels = {}): number {
    return this.get(labels).state.v;
  }

  protected samples(): string[] {
    return [...this.series.values()].map((s) =>
      `${this.name}${labelText(this.labelNames, s.values)} ${formatValue(s.state.v)}`
    );
  }
}

export class Histogram extends Family<{ counts: number[]; sum: number; count: number }> {
  readonly type = "histogram";
  readonly buckets: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], buckets: number[]) {
    super(name, help, labelNames);
    const sorted = [...new Set(buckets)].filter((b) => Number.isFinite(b)).sort((a, b) => a - b);
    if (sorted.length === 0) throw new RangeError(`Histogram "${name}" needs buckets`);
    this.buckets = sorted;
    if (labelNames.length === 0) this.get({});
  }

  protected initial() {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
  }

  observe(labels: Labels, value: number): void {
    const s = this.get(labels).state;
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]) s.counts[i]++;
    s.sum += value;
    s.count++;
  }

  count(labels: Labels = {}): number {
    return this.get(labels).state.count;
  }

  protected samples(): string[] {
    const out: string[] = [];
    for (const { values, state } of this.series.values()) {
      this.buckets.forEach((b, i) => {
        const le = `le="${formatValue(b)}"`;
        out.push(
          `${this.name}_bucket${labelText(this.labelNames, values, le)} ${state.counts[i]}`,
        );
      });
      out.push(
        `${this.name}_bucket${labelText(this.labelNames, values, 'le="+Inf"')} ${state.count}`,
      );
      out.push(`${this.name}_sum${labelText(this.labelNames, values)} ${formatValue(state.sum)}`);
      out.push(`${this.name}_count${labelText(this.labelNames, values)} ${state.count}`);
    }
    return out;
  }
}

export class Registry {
  readonly #families = new Map<string, Family<unknown>>();

  #add<F extends Family<unknown>>(f: F): F {
    if (this.#families.has(f.name)) throw new RangeError(`Metric "${f.name}" registered twice`);
    this.#families.set(f.name, f);
    return f;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#add(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.#add(new Gauge(name, help, labelNames));
  }

  histogram(name: string, help: string, labelNames: readonly string[], buckets: number[]) {
    return this.#add(new Histogram(name, help, labelNames, buckets));
  }

  render(): string {
    return [...this.#families.values()].map((f) => f.render()).join("");
  }
}
