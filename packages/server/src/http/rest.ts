import type { FastifyInstance, FastifyReply, FastifyRequest, FastifyTypeProvider, RouteOptions } from 'fastify';
import type { z } from 'zod';
import { MagpieError, issuesOf, type RawRestRoute, type RestRoute } from '@magpie/protocol';
import type { AccountService, Principal } from '../services/account-service.ts';
import { adminGuard } from './admin-auth.ts';
import { bearer } from './validation.ts';

/**
 * The HTTP side of the REST schemas in @magpie/protocol (rest/): a fastify type provider for
 * zod, the compilers that validate requests with those schemas (failures answer the
 * documented `invalid` error with the issues), and one registration helper that also does
 * authentication, so no route file keeps its own auth closure or body parser.
 */

/** fastify type provider: handler inputs and answers are typed from zod schemas. */
export interface ZodTypeProvider extends FastifyTypeProvider {
  validator: this['schema'] extends z.ZodType ? z.output<this['schema']> : unknown;
  serializer: this['schema'] extends z.ZodType ? z.input<this['schema']> : unknown;
}

const isZod = (s: unknown): s is z.ZodType => typeof (s as z.ZodType | undefined)?.safeParse === 'function';

/** Validate requests with zod route schemas; answers are serialized as they are (the tests validate them). */
export function installZodCompilers(app: FastifyInstance): void {
  app.setValidatorCompiler(({ schema }) => {
    if (!isZod(schema)) throw new Error('REST route schemas must be zod schemas');
    const parse = (data: unknown) => {
      const r = schema.safeParse(data ?? {});
      return r.success ? { value: r.data } : { error: new MagpieError('invalid', 'request fails the schema', { details: issuesOf(r.error) }) };
    };
    const accepts = plainStringsCheck(schema);
    // `true`: valid as it is, fastify keeps the request part unchanged (zod would return an equal copy).
    return accepts ? (data: unknown) => (accepts(data) ? true : parse(data)) : parse;
  });
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
}

/** A route's plain-string params (see plainStringsCheck), checked in its preValidation hook. */
interface PlainParams {
  check: (data: unknown) => boolean;
  schema: z.ZodType;
}

/**
 * The validation of a request's params as the validator compiler does it (undefined: valid;
 * else the `invalid` error with zod's issues), for routes whose params are checked in their
 * preValidation hook.
 */
function paramsError(req: FastifyRequest, params: PlainParams | null): Error | undefined {
  if (params === null || params.check(req.params)) return undefined;
  const r = params.schema.safeParse(req.params ?? {});
  if (r.success) {
    req.params = r.data;
    return undefined;
  }
  return new MagpieError('invalid', 'request fails the schema', { details: issuesOf(r.error) });
}

/** A string field's length bounds (zod checks min_length, max_length, length_equals; no other check). */
interface StringField {
  name: string;
  min: number;
  max: number;
}

/**
 * For a strict object schema of plain required strings (route params such as `{ id: z.string() }`,
 * optionally with length bounds), a check that a value passes it exactly as it is: an object
 * with those keys only, each a string within its bounds. Null for any other schema. The
 * validator answers such values without zod (whose parse builds a copy and a result object
 * per request: ~0.5 KB of garbage on every red-packet open, issue 16); anything the check does
 * not accept is parsed by zod, so refusals carry zod's issues as before.
 */
export function plainStringsCheck(schema: z.ZodType): ((data: unknown) => boolean) | null {
  const def = (schema as unknown as { _zod?: { def?: { type?: string; shape?: Record<string, z.ZodType>; catchall?: z.ZodType } } })._zod?.def;
  if (def?.type !== 'object' || !def.shape) return null;
  // Strict objects only (an unknown key is an error); a stripping or loose object is left to zod.
  if ((def.catchall as unknown as { _zod?: { def?: { type?: string } } } | undefined)?._zod?.def?.type !== 'never') return null;
  const fields: StringField[] = [];
  for (const [name, field] of Object.entries(def.shape)) {
    const fdef = (field as unknown as { _zod?: { def?: { type?: string; coerce?: boolean; checks?: { _zod?: { def?: { check?: string; minimum?: number; maximum?: number; length?: number } } }[] } } })._zod?.def;
    if (fdef?.type !== 'string' || fdef.coerce) return null;
    const f: StringField = { name, min: 0, max: Infinity };
    for (const c of fdef.checks ?? []) {
      const cd = c._zod?.def;
      if (cd?.check === 'min_length' && typeof cd.minimum === 'number') f.min = Math.max(f.min, cd.minimum);
      else if (cd?.check === 'max_length' && typeof cd.maximum === 'number') f.max = Math.min(f.max, cd.maximum);
      else if (cd?.check === 'length_equals' && typeof cd.length === 'number') {
        f.min = Math.max(f.min, cd.length);
        f.max = Math.min(f.max, cd.length);
      } else return null;
    }
    fields.push(f);
  }
  const names = new Set(fields.map((f) => f.name));
  return (data) => {
    if (typeof data !== 'object' || data === null || Array.isArray(data)) return false;
    const o = data as Record<string, unknown>;
    let keys = 0;
    for (const k in o) {
      if (!names.has(k) || !Object.prototype.hasOwnProperty.call(o, k)) return false;
      keys++;
    }
    if (keys !== fields.length) return false;
    for (const f of fields) {
      const v = o[f.name];
      if (typeof v !== 'string' || v.length < f.min || v.length > f.max) return false;
    }
    return true;
  };
}

type In<S> = S extends z.ZodType ? z.output<S> : undefined;
type ReplyOf<R extends RestRoute> = R['reply'] extends { 201: infer S extends z.ZodType } ? z.input<S> : R['reply'] extends { 200: infer S extends z.ZodType } ? z.input<S> : never;

/** What a handler receives: the validated request parts and, on authenticated routes, the principal. */
export interface RestRequest<R extends RestRoute> {
  body: In<R['body']>;
  query: In<R['query']>;
  params: In<R['params']>;
  principal: R['auth'] extends 'user' ? Principal : R['auth'] extends 'optional' ? Principal | null : undefined;
  raw: FastifyRequest;
  reply: FastifyReply;
}

export type RestHandler<R extends RestRoute> = (req: RestRequest<R>) => Promise<ReplyOf<R>>;

/** What a raw route's handler receives: validated params and query; it reads the body and answers through `reply` (or hijacks it). */
export interface RawRequest<R extends RawRestRoute> {
  query: In<R['query']>;
  params: In<R['params']>;
  principal: R['auth'] extends 'user' ? Principal : undefined;
  raw: FastifyRequest;
  reply: FastifyReply;
}

/**
 * Per-request authentication state, kept on the request (fastify decorations, declared once on
 * the instance: no per-request WeakMap entries). `restSession` is the one session lookup of a
 * request, whoever asks first; `restPrincipal` / `restAuthError` its outcome on routes that
 * authenticate before the body is read.
 */
declare module 'fastify' {
  interface FastifyRequest {
    restSession: Promise<Principal> | null;
    restPrincipal: Principal | null;
    restAuthError: unknown;
  }
}

/** The protocol route a fastify route was registered from (its `config.rest`), for the OpenAPI document. */
export function restRouteOf(opts: { config?: unknown }): RestRoute | RawRestRoute | undefined {
  return (opts.config as { rest?: RestRoute | RawRestRoute } | undefined)?.rest;
}

/**
 * The one REST helper of a server: app.ts makes it over the fastify instance and passes it to
 * every module that serves /api routes (no module keeps its own auth closure or body parser).
 *
 *   api.route(someRoutes.x, async ({ principal, body, query, params }) => answer)
 *       a JSON route declared in @magpie/protocol rest/ (restRoute): authentication as the
 *       route's `auth` says (`user` gives `principal`), request validated with its schemas
 *       (`invalid` with the issues), the answer typed by its reply schema; 201 when the route
 *       only declares 201. Throw MagpieError for refusals.
 *   api.raw(someRoutes.y, async ({ principal, params, query, raw, reply }) => …)
 *       a route whose body or answer is not JSON (rawRoute): the body is left unread for the
 *       handler, which answers through `reply`.
 *   api.authenticate(req)  the session of a request, for handlers that decide auth themselves.
 *
 * Every route registered through it appears in the OpenAPI document with its schemas.
 */
export class RestApi {
  private readonly admin: (req: FastifyRequest) => void;

  /**
   * `limitUser` takes one request from a user's budget (throws `rate_limited`); it runs once per
   * request authenticated as a user, before its body is read.
   */
  constructor(
    private readonly app: FastifyInstance,
    private readonly accounts: AccountService,
    adminToken: string | undefined,
    private readonly limitUser: (userId: string) => void = () => {},
  ) {
    this.admin = adminGuard(adminToken);
    installZodCompilers(app);
    if (!app.hasRequestDecorator('restSession')) {
      app.decorateRequest('restSession', null);
      app.decorateRequest('restPrincipal', null);
      app.decorateRequest('restAuthError', null);
    }
  }

  /**
   * Resolve the session of a request (`unauthorized` without a live one); one session read per
   * request, shared by whoever asks (a route's own authentication and its handler). A user whose
   * request is authenticated here spends one request of the per-user budget.
   */
  authenticate(req: FastifyRequest): Promise<Principal> {
    return (req.restSession ??= this.accounts.authenticate(bearer(req)).then((p) => {
      this.limitUser(p.userId);
      return p;
    }));
  }

  /**
   * The route-level onRequest hook of routes with auth `user` (and `optional` with a token):
   * the session read and the per-user rate limit, before the body is read. A refused session
   * is kept for preValidation, so body errors still come first, as on every other route.
   */
  private readonly authOnRequest = (req: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void => {
    // A callback hook, not an async one (it runs on every authenticated request: an async hook
    // costs its own promise and frame on top of the session read's; issue 16).
    const session = this.accounts.authenticate(bearer(req));
    req.restSession = session;
    session.then(
      (p) => {
        req.restPrincipal = p;
        try {
          this.limitUser(p.userId);
        } catch (err) {
          // Over the per-user budget: refused here, before the body is read.
          done(err as Error);
          return;
        }
        done();
      },
      (err: unknown) => {
        req.restAuthError = err;
        done();
      },
    );
  };

  /** The hooks that authenticate a route as its `auth` says. */
  private authHooks(auth: RestRoute['auth'] | RawRestRoute['auth'], params: PlainParams | null = null): Pick<RouteOptions, 'onRequest' | 'preValidation'> {
    switch (auth) {
      case 'user':
        return {
          onRequest: this.authOnRequest,
          // Authentication is decided before validation: a request without a session is `unauthorized` whatever its body.
          preValidation: (req: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => done(req.restAuthError === null ? paramsError(req, params) : (req.restAuthError as Error)),
        };
      case 'optional':
        return {
          onRequest: (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
            if (bearer(req) === undefined) done();
            else this.authOnRequest(req, reply, done);
          },
          preValidation: (req: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => done(req.restAuthError === null ? paramsError(req, params) : (req.restAuthError as Error)),
        };
      case 'admin':
        return {
          preValidation: (req: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => {
            try {
              this.admin(req);
            } catch (err) {
              done(err as Error);
              return;
            }
            done(paramsError(req, params));
          },
        };
      default:
        return {};
    }
  }

  /**
   * A raw route: params and query validated, authentication as declared, the body left unread
   * for the handler (each raw route gets its own scope without body parsers).
   */
  raw<R extends RawRestRoute>(r: R, handler: (req: RawRequest<NoInfer<R>>) => Promise<unknown>): void {
    const add = (app: FastifyInstance) =>
      app.route({
        method: r.method,
        url: r.url,
        config: { rest: r },
        schema: { ...(r.params && { params: r.params }), ...(r.query && { querystring: r.query }) },
        ...withFirst(copyHeadersToRaw, this.authHooks(r.auth)),
        handler: (req, reply) => handler({ query: req.query, params: req.params, principal: req.restPrincipal ?? undefined, raw: req, reply } as RawRequest<R>),
      });
    void this.app.register(async (scope) => {
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', (_req, _payload, done) => done(null));
      add(scope);
    });
  }

  /** A JSON route (see the class comment). `head: false` leaves HEAD of a GET's URL to another route. */
  route<R extends RestRoute>(r: R, handler: RestHandler<NoInfer<R>>, opts: { head?: false } = {}): void {
    const response: Record<number, z.ZodType> = {};
    for (const [status, s] of Object.entries(r.reply)) if (s) response[Number(status)] = s;
    const defaultStatus = r.reply[201] && !r.reply[200] ? 201 : 200;
    // Plain-string params of a route that has a preValidation hook anyway (authenticated routes)
    // are checked there, right where fastify would validate them next (same order: after
    // authentication, before the query and body): fastify's validation step is then skipped
    // on routes with nothing else to validate, e.g. a red-packet open (issue 16).
    const plain = r.params && r.auth !== 'none' ? plainStringsCheck(r.params) : null;
    const params: PlainParams | null = plain && r.params ? { check: plain, schema: r.params } : null;
    this.app.route({
      method: r.method,
      url: r.url,
      config: { rest: r },
      ...(opts.head === false && { exposeHeadRoute: false }),
      schema: { ...(r.params && !params && { params: r.params }), ...(r.query && { querystring: r.query }), ...(r.body && { body: r.body }), response },
      ...this.authHooks(r.auth, params),
      handler: (req, reply) => {
        if (defaultStatus !== 200) void reply.code(defaultStatus);
        return handler({ body: req.body, query: req.query, params: req.params, principal: r.auth === 'user' || r.auth === 'optional' ? req.restPrincipal : undefined, raw: req, reply } as RestRequest<R>);
      },
    });
  }
}

type RequestHook = (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void;

/**
 * A raw route may answer on the raw response (tus hijacks the reply): the headers set so far on
 * fastify's reply (the security headers, http/security-headers.ts) are copied onto it first.
 */
const copyHeadersToRaw: RequestHook = (_req, reply, done) => {
  const headers = reply.getHeaders();
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined) reply.raw.setHeader(name, value);
  }
  done();
};

/** `hooks` with `first` run before its onRequest hook. */
function withFirst(first: RequestHook, hooks: Pick<RouteOptions, 'onRequest' | 'preValidation'>): Pick<RouteOptions, 'onRequest' | 'preValidation'> {
  const rest = hooks.onRequest === undefined ? [] : Array.isArray(hooks.onRequest) ? hooks.onRequest : [hooks.onRequest];
  return { ...hooks, onRequest: [first, ...rest] as RouteOptions['onRequest'] };
}
