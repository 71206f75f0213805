import { accessSync, constants } from 'node:fs';
import { EdgeError, EdgeErrorCode } from '../errors.js';

/**
 * The user the Debian package runs the agent as. With root, it is the only user that can read the
 * agent's files: the config and NATS seed (`root:fieldbeam 0640`, in the `0755` folder that the
 * collector's package shares) and the buffer (in `/var/lib/fieldbeam`, `0750`, under `UMask=0027`).
 */
export const SERVICE_USER = 'fieldbeam';

/** The first permission error (`EACCES`, `EPERM`) in `err` or its chain of causes. */
export function permissionError(err: unknown): NodeJS.ErrnoException | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') return e as NodeJS.ErrnoException;
  }
  return undefined;
}

const shellWord = (w: string) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", `'\\''`)}'`);

/**
 * The error a command reports when the user running it may not read one of the agent's files: which
 * file, and the command again as root and as the service user, ready to paste.
 */
export function accessDeniedError(path: string, args: readonly string[], cause?: unknown): EdgeError {
  const again = ['fieldbeam-edge', ...args].map(shellWord).join(' ');
  const code = permissionError(cause)?.code ?? 'EACCES';
  return new EdgeError(
    EdgeErrorCode.ACCESS_DENIED,
    `cannot read ${path}: permission denied (${code}). The agent's config and buffer are readable only ` +
      `by root and the agent's user (${SERVICE_USER} when installed by the package); run the command as ` +
      `root or as that user:\n  sudo ${again}\n  sudo -u ${SERVICE_USER} ${again}`,
    false,
    { cause },
  );
}

/**
 * Runs `read`, which reads the agent's files for the command `args` (its arguments after the program
 * name); a permission error becomes `accessDeniedError` naming the file that could not be read.
 */
export function readingAgentFiles<T>(args: readonly string[], read: () => T): T {
  try {
    return read();
  } catch (err) {
    const denied = permissionError(err);
    if (!denied) throw err;
    throw accessDeniedError(denied.path ?? 'a file of the agent', args, err);
  }
}

/**
 * Fails with `accessDeniedError` when `path` exists but this user may not read it, or may not look
 * into its folder. A missing file is left to the caller, which knows what it means.
 */
export function assertReadable(path: string, args: readonly string[]): void {
  try {
    accessSync(path, constants.R_OK);
  } catch (err) {
    if (permissionError(err)) throw accessDeniedError(path, args, err);
  }
}
