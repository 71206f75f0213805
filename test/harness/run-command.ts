import { execFile } from 'node:child_process';

export interface CommandResult {
  /** The exit code (1 when the process could not be run or was ended by a signal or the timeout). */
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a Node script (a CLI's built entry point) to completion with extra environment variables and
 * gives back its exit code and output; a failing command resolves too, so a test can assert on it.
 */
export function runNodeScript(
  script: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [script, ...args],
      { env: { ...process.env, ...env }, timeout: timeoutMs },
      (err, stdout, stderr) => {
        const code = err ? (err as { code?: unknown }).code : 0;
        resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
      },
    );
  });
}
