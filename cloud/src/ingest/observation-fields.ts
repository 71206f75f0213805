import type { Observation } from '@fieldbeam/protocol';

/**
 * The stored fields of an observation, listed once. Everything that names them derives from this
 * table: ingest's COPY rows and column list, the staging table of the replay path, the columns a
 * dataset window reads (datasets/window-reader.ts) and the read API's SELECT (api/row-sources.ts).
 * A new stored field is one entry here and its column in a migration (besides the protocol's schema,
 * validator and v2 columns that carry it).
 *
 * The order is the order of dataset files and API rows; COPY names its columns, so storage order
 * does not matter.
 */

/** A field's Postgres type, which decides how it is written and read. */
export type FieldType = 'text' | 'float8' | 'timestamptz' | 'text[]';

/** What ingest writes for one field of one observation; undefined and null are SQL NULL. */
export type FieldValue = string | number | readonly string[] | null | undefined;

export interface ObservationField {
  /** The column's name. */
  readonly name: string;
  /** The observation's key it comes from (the column's name unless told otherwise). */
  readonly key: keyof Observation;
  readonly type: FieldType;
  readonly nullable: boolean;
  /** The field's value in an observation as received (for `timestamptz`: the ISO-8601 string). */
  readonly of: (o: Observation) => FieldValue;
  /** A column of dataset windows (the Arrow object and its exports). */
  readonly window: boolean;
  /** A column of the read API's raw items. */
  readonly api: boolean;
  /** Collation of a key column (byte order, for keyset paging and the staging join). */
  readonly collate?: 'C';
}

const field = (
  key: keyof Observation,
  type: FieldType,
  nullable: boolean,
  shown: { window: boolean; api: boolean },
  more: { column?: string; collate?: 'C' } = {},
): ObservationField => ({
  name: more.column ?? key,
  key,
  type,
  nullable,
  of: (o) => o[key] as FieldValue,
  ...shown,
  ...(more.collate ? { collate: more.collate } : {}),
});

const BOTH = { window: true, api: true };

export const OBSERVATION_FIELDS: readonly ObservationField[] = [
  field('id', 'text', false, { window: false, api: true }, { collate: 'C' }),
  field('time', 'timestamptz', false, BOTH),
  field('station', 'text', false, BOTH),
  field('sensor', 'text', true, BOTH),
  field('variable', 'text', false, BOTH),
  field('value', 'float8', true, BOTH),
  field('text', 'text', true, BOTH),
  field('unit', 'text', false, BOTH),
  field('lat', 'float8', true, BOTH),
  field('lon', 'float8', true, BOTH),
  field('alt', 'float8', true, BOTH),
  field('quality', 'text[]', true, BOTH),
  field('source', 'text', false, BOTH),
  field('edge', 'text', false, BOTH),
  field('received', 'timestamptz', false, { window: false, api: false }),
  // The W3C trace-id of the message that brought the reading; datasets record versions, not traces.
  field('trace', 'text', true, { window: false, api: false }, { column: 'trace_id' }),
];

/** The window's fields, in file order. */
export const WINDOW_FIELDS = OBSERVATION_FIELDS.filter((f) => f.window);

/** The columns ingest writes, in COPY order (the staging table adds `seq` first). */
export const INGEST_COLUMNS = OBSERVATION_FIELDS.map((f) => f.name).join(', ');

/** The read API's SELECT list of raw rows. */
export const API_COLUMNS = OBSERVATION_FIELDS.filter((f) => f.api)
  .map((f) => f.name)
  .join(', ');

const SQL_TYPE: Record<FieldType, string> = {
  text: 'text',
  float8: 'double precision',
  timestamptz: 'timestamptz',
  'text[]': 'text[]',
};

/**
 * The per-connection staging table of the replay path: `seq` (the batch's stream sequence, for the
 * per-batch counts) and every ingested field. Emptied at each commit.
 */
export const STAGE_DDL = `CREATE TEMP TABLE IF NOT EXISTS fb_stage (
  seq bigint NOT NULL, ${OBSERVATION_FIELDS.map(
    (f) =>
      `${f.name} ${SQL_TYPE[f.type]}${f.collate ? ` COLLATE "${f.collate}"` : ''}${f.nullable ? '' : ' NOT NULL'}`,
  ).join(', ')}
) ON COMMIT DELETE ROWS`;

const NEEDS_ESCAPE = /[\\\n\r\t]/;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
/** One field in COPY text format. */
function copyText(s: string): string {
  return NEEDS_ESCAPE.test(s) ? s.replace(/[\\\n\r\t]/g, (c) => ESCAPES[c] ?? c) : s;
}
function copyArray(items: readonly string[]): string {
  // An array literal with every element quoted, then escaped once more for COPY.
  const lit = `{${items.map((q) => `"${q.replace(/["\\]/g, (c) => `\\${c}`)}"`).join(',')}}`;
  return copyText(lit);
}

function copyField(f: ObservationField, v: FieldValue): string {
  if (v === undefined || v === null) return '\\N';
  switch (f.type) {
    case 'float8':
      return String(v);
    case 'text[]':
      return copyArray(v as readonly string[]);
    default:
      return copyText(v as string);
  }
}

/** One observation as a line of COPY text in {@link INGEST_COLUMNS} order. */
export function observationCopyLine(o: Observation): string {
  let line = '';
  for (let i = 0; i < OBSERVATION_FIELDS.length; i++) {
    const f = OBSERVATION_FIELDS[i] as ObservationField;
    line += `${i > 0 ? '\t' : ''}${copyField(f, f.of(o))}`;
  }
  return `${line}\n`;
}
