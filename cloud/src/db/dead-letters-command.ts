import { parseArgs } from 'node:util';
import type pg from 'pg';
import { listDeadLetters } from './dead-letters.js';

export const DEAD_LETTERS_USAGE = `fieldbeam-cloud dead-letters [--source SOURCE] [--limit N] [--before ID] [--json]
  what ingest, the builder and exporters set aside, newest first: when, source, code, subject and
  reason. SOURCE: ingest, coordinator, builder, exporter (every exporter) or exporter:geoparquet
`;

/**
 * `fieldbeam-cloud dead-letters`: the dead letters for an operator, as a table or JSON. Returns the
 * exit status (2 for bad options, with the usage).
 */
export async function runDeadLettersCommand(
  args: string[],
  db: pg.Pool,
  out: { write(s: string): unknown },
  err: { write(s: string): unknown } = process.stderr,
): Promise<number> {
  let values: { source?: string; limit?: string; before?: string; json?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        source: { type: 'string' },
        limit: { type: 'string' },
        before: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    err.write(`${(e as Error).message}\n\nusage: ${DEAD_LETTERS_USAGE}`);
    return 2;
  }
  if (values.help) {
    out.write(`usage: ${DEAD_LETTERS_USAGE}`);
    return 0;
  }
  const limit = values.limit === undefined ? 50 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    err.write(`--limit: an integer from 1 to 10000\n\nusage: ${DEAD_LETTERS_USAGE}`);
    return 2;
  }
  if (values.before !== undefined && !/^\d{1,18}$/.test(values.before)) {
    err.write(`--before: a dead-letter id\n\nusage: ${DEAD_LETTERS_USAGE}`);
    return 2;
  }
  const rows = await listDeadLetters(db, {
    limit,
    before: values.before ?? null,
    source: values.source ?? null,
  });
  if (values.json) {
    out.write(
      `${JSON.stringify(
        rows.map(({ payload, ...r }) => ({ ...r, payloadBytes: payload?.length ?? 0 })),
        null,
        2,
      )}\n`,
    );
    return 0;
  }
  if (rows.length === 0) {
    out.write('(no dead letters)\n');
    return 0;
  }
  for (const r of rows) {
    const at = r.at.toISOString().replace(/\.\d{3}Z$/, 'Z');
    const seq = r.streamSeq === null ? '' : ` #${r.streamSeq}`;
    out.write(`${r.id}  ${at}  ${r.source}  ${r.code ?? '-'}  ${r.subject}${seq}\n    ${r.reason}\n`);
  }
  return 0;
}
