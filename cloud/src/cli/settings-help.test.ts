import { describe, expect, it } from 'vitest';
import { CloudConfigSchema } from '../config.js';
import { settingNames, settingsHelp, unknownSettingsInHelp } from './settings-help.js';

describe('settings in --help', () => {
  it('lists every setting of the schema, with the default the schema declares', () => {
    const help = settingsHelp();
    for (const name of Object.keys(CloudConfigSchema.shape))
      expect(help).toMatch(new RegExp(`^  ${name} `, 'm'));
    expect(help).toMatch(
      /^ {2}NATS_URL +comma-separated NATS servers \(default: nats:\/\/127\.0\.0\.1:4222\)$/m,
    );
    expect(help).toMatch(/^ {2}FB_EMBEDDED_PG_PORT +.*\(default: 5433\)$/m);
  });

  it('describes no setting that does not exist', () => {
    expect(unknownSettingsInHelp()).toEqual([]);
  });

  it('shows only the settings asked for, in the schema order, wrapped, a default on one line', () => {
    const help = settingsHelp(['FB_DATA_DIR', 'DATABASE_URL'], 60);
    expect(help.split('\n').slice(2)).toEqual([
      '  DATABASE_URL  any PostgreSQL; unset: an embedded Postgres',
      '                in $FB_DATA_DIR/postgres',
      "  FB_DATA_DIR   the collector's data folder",
      '                (default: /var/lib/fieldbeam-cloud)',
    ]);
    expect(settingNames[0]).toBe('NATS_URL');
  });
});
