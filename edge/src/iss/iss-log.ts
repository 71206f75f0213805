/** The logging the ISS modules need; a pino logger fits it. */
export interface IssLog {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const nothing = () => {};
export const silentLog: IssLog = { debug: nothing, info: nothing, warn: nothing, error: nothing };
