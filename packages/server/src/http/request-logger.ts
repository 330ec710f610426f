import type { Bindings, ChildLoggerOptions } from 'pino';
import type { FastifyBaseLogger } from 'fastify';

/**
 * fastify gives every request a child logger (`request.log`, bound to the request's id).
 * pino's child() serializes the bindings at once, through the root logger's redaction
 * (util/logger.ts): ~2 µs of CPU and ~5 KB of garbage per request, and almost no request ever
 * logs. `lazyRequestLogger` is fastify's `childLoggerFactory`: it hands out a stand-in that
 * makes that very child — same parent, bindings and options — the first time anything logs,
 * reads the level or asks for a child through it. What is logged and how is unchanged.
 */
export function lazyRequestLogger(logger: FastifyBaseLogger, bindings: Bindings, opts: ChildLoggerOptions): FastifyBaseLogger {
  return new LazyChild(logger, bindings, opts) as unknown as FastifyBaseLogger;
}

type LogMethod = (...args: unknown[]) => void;

class LazyChild {
  private made: FastifyBaseLogger | null = null;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly opts: ChildLoggerOptions,
  ) {}

  /** The real child logger, made on first use. */
  private real(): FastifyBaseLogger {
    return (this.made ??= this.parent.child(this.bindings, this.opts));
  }

  get level(): string {
    return this.real().level;
  }

  set level(level: string) {
    this.real().level = level;
  }

  fatal(...args: unknown[]): void {
    (this.real().fatal as LogMethod)(...args);
  }

  error(...args: unknown[]): void {
    (this.real().error as LogMethod)(...args);
  }

  warn(...args: unknown[]): void {
    (this.real().warn as LogMethod)(...args);
  }

  info(...args: unknown[]): void {
    (this.real().info as LogMethod)(...args);
  }

  debug(...args: unknown[]): void {
    (this.real().debug as LogMethod)(...args);
  }

  trace(...args: unknown[]): void {
    (this.real().trace as LogMethod)(...args);
  }

  silent(...args: unknown[]): void {
    (this.real().silent as LogMethod)(...args);
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.real().child(bindings, options);
  }
}
