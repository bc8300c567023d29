/**
 * Typed errors. Every failure the user can see is one of these: it names the operation and the object,
 * says what to do, and carries the exit code. One top-level handler per binary turns it into one line.
 */
export type ErrorCode =
  | 'INPUT' // bad flag, bad env value, bad file content supplied by the user
  | 'CONFIG' // config.toml problems
  | 'NVML' // NVML missing, failing or refusing
  | 'DRIVER_ROOT' // driver root missing or unreadable
  | 'LDCACHE' // ld.so.cache missing or corrupt
  | 'TOPOLOGY' // mock topology problems
  | 'DEVICE' // unknown device requested
  | 'REQUIREMENT' // NVIDIA_REQUIRE_* not met
  | 'SPEC' // bundle config.json problems
  | 'RUNTIME' // low-level runtime (runc) missing or unusable
  | 'IO'; // filesystem failure writing our own outputs

export class NvrError extends Error {
  readonly code: ErrorCode;
  readonly fix?: string;
  readonly exitCode: number;

  constructor(code: ErrorCode, message: string, options: { fix?: string; cause?: unknown; exitCode?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NvrError';
    this.code = code;
    this.fix = options.fix;
    this.exitCode = options.exitCode ?? 1;
  }

  /** The single line shown to the user: what failed, and how to fix it. */
  userMessage(): string {
    return this.fix ? `${this.message}; ${this.fix}` : this.message;
  }
}

export function isNvrError(e: unknown): e is NvrError {
  return e instanceof NvrError;
}

/** An I/O error's errno name ("ENOENT"), or its message when it has none: the word our error lines quote. */
export const errnoOf = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? (e as Error).message;
