import { describe, expect, it } from 'vitest';
import { CloudErrorCode } from '../errors.js';
import { databaseError, isDataError } from './pg-errors.js';

const pgError = (code: string, message = 'refused') => Object.assign(new Error(message), { code });

describe('isDataError', () => {
  it('is true for data exceptions, integrity violations and program limits', () => {
    for (const code of ['22021', '22007', '22P04', '23514', '23502', '54000'])
      expect(isDataError(pgError(code)), code).toBe(true);
  });

  it('is false for the unique violation, connection and server states, and non-Postgres errors', () => {
    for (const code of ['23505', '08006', '57P01', '53100', '40001', '42P01', 'XX000'])
      expect(isDataError(pgError(code)), code).toBe(false);
    expect(isDataError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe(
      false,
    );
    expect(isDataError(undefined)).toBe(false);
  });
});

describe('databaseError', () => {
  it('codes a data error as not retryable and anything else as retryable, keeping the cause', () => {
    const cause = pgError('22021', 'invalid byte sequence for encoding "UTF8": 0x00');
    const data = databaseError(cause, 'the ingest commit');
    expect(data).toMatchObject({ code: CloudErrorCode.DATA_REFUSED, retryable: false, cause });
    expect(data.message).toBe(
      'Postgres refused the ingest commit: invalid byte sequence for encoding "UTF8": 0x00 (SQLSTATE 22021)',
    );
    expect(databaseError(pgError('57P01'), 'x')).toMatchObject({
      code: CloudErrorCode.DATABASE,
      retryable: true,
    });
    expect(databaseError(data, 'y')).toBe(data);
  });
});
