import { parseArgs } from 'node:util';

const HELP = `pnpm bench [SUITE ...]

Suites: (none yet)
Results are printed as tables and written to bench/results/<suite>.json.
`;

const { positionals, values } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: { help: { type: 'boolean', short: 'h' } },
  allowPositionals: true,
});
if (values.help || positionals.length === 0) process.stdout.write(HELP);
