import type { FastifyInstance, FastifyReply, FastifyRequest, FastifyTypeProvider } from 'fastify';
import type { z } from 'zod';
import { MagpieError, issuesOf, type RestRoute } from '@magpie/protocol';
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
    return (data: unknown) => {
      const r = schema.safeParse(data ?? {});
      return r.success ? { value: r.data } : { error: new MagpieError('invalid', 'request fails the schema', { details: issuesOf(r.error) }) };
    };
  });
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
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

const principals = new WeakMap<FastifyRequest, Principal | null>();

/** The protocol route a fastify route was registered from (its `config.rest`), for the OpenAPI document. */
export function restRouteOf(opts: { config?: unknown }): RestRoute | undefined {
  return (opts.config as { rest?: RestRoute } | undefined)?.rest;
}

/**
 * Registers protocol REST routes on one fastify instance (installing the zod compilers), with
 * the authentication each route declares. Any module may make its own over the same instance.
 */
export class RestApi {
  private readonly admin: (req: FastifyRequest) => void;

  constructor(
    private readonly app: FastifyInstance,
    private readonly accounts: AccountService,
    adminToken: string | undefined,
  ) {
    this.admin = adminGuard(adminToken);
    installZodCompilers(app);
  }

  /** Resolve the session of a request (`unauthorized` without a live one). */
  authenticate(req: FastifyRequest): Promise<Principal> {
    return this.accounts.authenticate(bearer(req));
  }

  route<R extends RestRoute>(r: R, handler: RestHandler<NoInfer<R>>): void {
    const response: Record<number, z.ZodType> = {};
    for (const [status, s] of Object.entries(r.reply)) if (s) response[Number(status)] = s;
    const defaultStatus = r.reply[201] && !r.reply[200] ? 201 : 200;
    this.app.route({
      method: r.method,
      url: r.url,
      config: { rest: r },
      schema: { ...(r.params && { params: r.params }), ...(r.query && { querystring: r.query }), ...(r.body && { body: r.body }), response },
      // Authentication runs before validation: a request without a session is `unauthorized` whatever its body.
      preValidation: async (req) => {
        if (r.auth === 'user') principals.set(req, await this.authenticate(req));
        else if (r.auth === 'optional') principals.set(req, bearer(req) ? await this.authenticate(req) : null);
        else if (r.auth === 'admin') this.admin(req);
      },
      handler: async (req, reply) => {
        if (defaultStatus !== 200) void reply.code(defaultStatus);
        return handler({ body: req.body, query: req.query, params: req.params, principal: principals.get(req), raw: req, reply } as RestRequest<R>);
      },
    });
  }
}
