import pg from 'pg';
import type { DatasetDef } from './dataset-config.js';

/** Takes a value for a query and returns the SQL that stands for it (a placeholder or a literal). */
export type Bind = (value: unknown) => string;

/** A binder that appends each value to `values` and returns its placeholder (`$1`, `$2`, ...). */
export function bindTo(values: unknown[]): Bind {
  return (v) => {
    values.push(v);
    return `$${values.length}`;
  };
}

/**
 * A binder that writes each value into the SQL as a quoted literal, for statements that take no bind
 * parameters (COPY, DECLARE CURSOR). Takes dates, finite numbers, strings and string lists: what a
 * dataset filter is made of, all from the validated dataset config or the collector itself.
 */
export const inlineLiteral: Bind = (v) => {
  if (v instanceof Date) return `${pg.escapeLiteral(v.toISOString())}::timestamptz`;
  if (typeof v === 'string') return pg.escapeLiteral(v);
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) {
    return `ARRAY[${v.map((x: string) => pg.escapeLiteral(x)).join(', ')}]::text[]`;
  }
  throw new TypeError(`cannot write ${typeof v} as an SQL literal`);
};

/** A time range of a filter; either end may be open. */
export interface FilterRange {
  from?: Date | undefined;
  to?: Date | undefined;
  /** `to` is included (the read API's datetime) rather than excluded (a window's [start, end)). */
  toIncluded?: boolean;
}

/**
 * The conditions (to be joined with AND) that select a dataset's raw observations: its sources,
 * stations and variables, then the time range. The one place a dataset's selection is written in SQL:
 * the coordinator, the window reader, aggregation and the read API all build on it.
 */
export function datasetConditions(
  def: Pick<DatasetDef, 'filter'>,
  bind: Bind,
  range: FilterRange = {},
): string[] {
  const where: string[] = [];
  const { sources, stations, variables } = def.filter;
  if (sources) where.push(`source = ANY(${bind(sources)}::text[])`);
  if (stations) where.push(`station = ANY(${bind(stations)}::text[])`);
  if (variables) where.push(`variable = ANY(${bind(variables)}::text[])`);
  if (range.from) where.push(`time >= ${bind(range.from)}`);
  if (range.to) where.push(`time ${range.toIncluded ? '<=' : '<'} ${bind(range.to)}`);
  return where;
}

/** The dataset's conditions joined, or `true` when it takes every observation. */
export function datasetWhere(def: Pick<DatasetDef, 'filter'>, bind: Bind, range: FilterRange = {}): string {
  const where = datasetConditions(def, bind, range);
  return where.length > 0 ? where.join(' AND ') : 'true';
}
