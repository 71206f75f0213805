/**
 * `pnpm bench [SUITE ...] [-- suite flags]`: runs benchmark suites by name. Each suite is a module
 * exporting one function that takes the flags; it prints its table and writes
 * bench/results/<suite>.json. Add a suite with one line in `suites`.
 */

type Suite = (argv: string[]) => Promise<void>;

const suites: Record<string, { about: string; load: () => Promise<Suite> }> = {
  edge: {
    about: 'edge agent: ingest, latency, drain, RSS, bytes written; nats-server MQTT and aedes peers',
    load: async () => (await import('./edge.js')).runEdgeSuite,
  },
  'edge-trace': {
    about:
      'edge intake to wire with and without trace ids: CPU per message and v2 bytes per reading, in one process',
    load: async () => (await import('./edge-trace.js')).runEdgeTraceSuite,
  },
  pi: {
    about:
      'edge agent arm64 build under qemu-user emulation (as root): ingest rate, VmRSS, bundle/.deb sizes; emulated figures',
    load: async () => (await import('./pi.js')).runPiSuite,
  },
  cloud: {
    about: 'collector: 1M observations OBS -> Postgres vs raw COPY, 1M-row window -> Arrow + GeoParquet',
    load: async () => (await import('./cloud.js')).runCloudSuite,
  },
  fleet: {
    about:
      'fleet registry: 1,000 simulated edges heartbeating every 5 s; collector CPU and RSS, edge list time',
    load: async () => (await import('./fleet.js')).runFleetSuite,
  },
  console: {
    about:
      'operator console: 1,000 simulated edges, 10,000 sensors; fleet page first render in Chromium, collector CPU/RSS with 20 live clients',
    load: async () => (await import('./console.js')).runConsoleSuite,
  },
};

const HELP = `pnpm bench SUITE [SUITE ...] [--flags]   (pnpm bench SUITE --help for a suite's flags)

Suites:
${Object.entries(suites)
  .map(([name, s]) => `  ${name.padEnd(8)} ${s.about}`)
  .join('\n')}
Results are printed as tables and written to bench/results/<suite>.json.
`;

async function main(args: string[]): Promise<number> {
  // Suite names are the known ones; everything else (flags and their values) goes to every suite.
  const names: string[] = [];
  const flags: string[] = [];
  const unknown: string[] = [];
  args.forEach((a, i) => {
    if (a in suites) names.push(a);
    else if (a.startsWith('-') || args[i - 1]?.startsWith('--')) flags.push(a);
    else unknown.push(a);
  });
  if (names.length === 0 && unknown.length === 0) {
    process.stdout.write(HELP);
    return flags.includes('--help') || flags.includes('-h') ? 0 : 2;
  }
  if (unknown.length > 0) {
    process.stderr.write(`unknown suite: ${unknown.join(', ')}\n\n${HELP}`);
    return 2;
  }
  for (const name of names) await (await (suites[name] as { load: () => Promise<Suite> }).load())(flags);
  return 0;
}

main(process.argv.slice(2).filter((a) => a !== '--')).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
    process.exitCode = 1;
  },
);
