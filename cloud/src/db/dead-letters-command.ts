import type pg from 'pg';
import { listDeadLetters } from './dead-letters.js';

/** The options of `fieldbeam-cloud dead-letters`, as parsed (cli/program.ts declares them). */
export interface DeadLettersOptions {
  source?: string;
  limit: number;
  /** Only dead letters older than this id (paging). */
  before?: string;
  json?: boolean;
}

/** `fieldbeam-cloud dead-letters`: the dead letters for an operator, as a table or JSON. */
export async function runDeadLettersCommand(
  values: DeadLettersOptions,
  db: pg.Pool,
  out: { write(s: string): unknown },
): Promise<number> {
  const limit = values.limit;
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
