// The shape of a report section (a titled table of typed columns), shared by the report
// (report.ts) and its KPI sections (kpi_report.ts).

export type Value = string | number | boolean | Date | null | string[] | Record<string, number>;
export type Row = Record<string, Value>;

export type Format =
  | "text"
  | "id"
  | "int"
  | "money"
  | "rate"
  | "seconds"
  | "list"
  /** the row's `unit` says: a currency code is money, "ratio" a rate, else a count */
  | "by_unit";

export interface Column {
  key: string;
  title: string;
  format: Format;
}

export interface Section {
  key: string;
  title: string;
  columns: Column[];
  rows: Row[];
}
