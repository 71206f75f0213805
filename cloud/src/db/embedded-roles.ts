import type pg from 'pg';

/** Schemas made by the user, not by Postgres. */
const USER_SCHEMA = `n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'`;

/**
 * The ALTER ... OWNER statements that hand everything `$1` owns in the user schemas of this database to
 * `$2`. Indexes, TOAST tables and the sequences of serial and identity columns follow their table, so
 * they are left out (Postgres refuses to move a table's own sequence on its own).
 */
const OWNERSHIP_STATEMENTS = `
  SELECT stmt FROM (
    SELECT 1 AS step, format('ALTER SCHEMA %I OWNER TO %I', n.nspname, $2::text) AS stmt
      FROM pg_namespace n
     WHERE n.nspowner = $1::regrole AND ${USER_SCHEMA}
    UNION ALL
    SELECT 2, format('ALTER %s %s OWNER TO %I',
                     CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                    WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'c' THEN 'TYPE' ELSE 'TABLE' END,
                     c.oid::regclass, $2::text)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relowner = $1::regrole AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c') AND ${USER_SCHEMA}
    UNION ALL
    SELECT 3, format('ALTER SEQUENCE %s OWNER TO %I', c.oid::regclass, $2::text)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relowner = $1::regrole AND c.relkind = 'S' AND ${USER_SCHEMA}
       AND NOT EXISTS (SELECT 1 FROM pg_depend d
                        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
    UNION ALL
    SELECT 4, format('ALTER %s %s OWNER TO %I',
                     CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
                     p.oid::regprocedure, $2::text)
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE p.proowner = $1::regrole AND ${USER_SCHEMA}
    UNION ALL
    SELECT 5, format('ALTER TYPE %s OWNER TO %I', t.oid::regtype, $2::text)
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE t.typowner = $1::regrole AND t.typtype IN ('e', 'd', 'r') AND ${USER_SCHEMA}
  ) s ORDER BY step`;

/**
 * Makes `owner` the owner of every object `from` (the superuser) owns in the user schemas of the
 * database `client` is connected to, in one transaction. A data folder from before the owner role had
 * its tables and functions made by the superuser; the owner role must own them to run migrations
 * (ALTER TABLE, new partitions) without superuser powers. Nothing to do: one catalog query.
 */
export async function ownEverything(client: pg.Client, from: string, owner: string): Promise<number> {
  const { rows } = await client.query<{ stmt: string }>(OWNERSHIP_STATEMENTS, [from, owner]);
  if (rows.length === 0) return 0;
  await client.query('BEGIN');
  try {
    for (const r of rows) await client.query(r.stmt);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  }
  return rows.length;
}
