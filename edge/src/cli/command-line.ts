import { type Command, CommanderError, InvalidArgumentError } from 'commander';

/** Where a command line's exit status is kept: an action sets it, `runCommandLine` returns it. */
export interface ExitStatus {
  code: number;
}

/** Exit status of a usage error (unknown command or option, missing or bad value), as for most Unix tools. */
export const USAGE_ERROR = 2;

/** The command and every subcommand below it, depth first, the command itself first. */
export function allCommands(root: Command): Command[] {
  return [root, ...root.commands.flatMap((c) => allCommands(c))];
}

/**
 * Applies the conventions every command of the CLI follows, to the whole tree (commander copies
 * such settings only to subcommands made with `.command()`, not to those added with `.addCommand()`):
 * `-h, --help` and `-V, --version` everywhere, a usage error shows the usage, and commander never
 * ends the process itself (`runCommandLine` turns its outcome into an exit status).
 */
export function finishCommandLine(
  root: Command,
  version: string,
  output?: { writeOut(text: string): void; writeErr(text: string): void },
): Command {
  for (const cmd of allCommands(root)) {
    cmd
      .version(version, '-V, --version', 'print the version')
      .helpOption('-h, --help', 'show this help')
      .showHelpAfterError()
      .exitOverride();
    if (cmd.commands.length > 0) cmd.helpCommand('help [command]', 'show the help of a command');
    if (output) cmd.configureOutput(output);
  }
  return root;
}

/**
 * Parses `argv` (the arguments after the program name) and runs the chosen action. Returns the
 * status the action left in `status`; 0 after help or the version; `USAGE_ERROR` for a usage
 * problem (already printed with the usage). Errors thrown by an action propagate.
 */
export async function runCommandLine(
  root: Command,
  argv: readonly string[],
  status: ExitStatus,
): Promise<number> {
  try {
    await root.parseAsync([...argv], { from: 'user' });
    return status.code;
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    // Help and version end with status 0; commander gives 1 to every usage problem, including a
    // command group called without its subcommand.
    return err.exitCode === 0 ? 0 : USAGE_ERROR;
  }
}

/**
 * Marks options the command cannot run without. Unlike commander's mandatory options they are checked
 * after unknown options, so a misspelt `--conifg` is reported as unknown (with a suggestion), not
 * as a missing `--config`.
 */
export function requireOptions(cmd: Command, ...names: string[]): Command {
  return cmd.hook('preAction', () => {
    for (const name of names) {
      const option = cmd.options.find((o) => o.attributeName() === name);
      if (option && cmd.getOptionValue(name) === undefined)
        cmd.error(`error: required option '${option.flags}' not specified`);
    }
  });
}

/** An option value parser for whole numbers in [min, max]; commander reports the problem as a usage error. */
export function integerIn(min: number, max: number): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (text.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    }
    return n;
  };
}
