import { z } from 'zod';
import { ErrorBodySchema, type RawRestRoute, type RestRoute } from '@magpie/protocol';

/**
 * The OpenAPI 3.1 document of the REST API, generated from the protocol's route schemas
 * (z.toJSONSchema; draft 2020-12 is OpenAPI 3.1's dialect). Raw routes (tus, media bytes)
 * carry their parameters, headers and answers. Routes registered without schemas are listed
 * too, marked `x-magpie-unschematized` (the tests allow none), so the document names every route.
 */
export function openApiDocument(routes: readonly (RestRoute | RawRestRoute)[], others: readonly { method: string; url: string }[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const op = (method: string, url: string, value: unknown) => {
    const path = url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    (paths[path] ??= {})[method.toLowerCase()] = value;
  };
  const schematized = new Set(routes.map((r) => `${r.method} ${r.url}`));
  for (const r of routes) op(r.method, r.url, 'replies' in r ? rawOperation(r) : operation(r));
  for (const r of others) if (r.url.startsWith('/api/') && !schematized.has(`${r.method} ${r.url}`)) op(r.method, r.url, { 'x-magpie-unschematized': true, responses: { default: { description: 'see docs/protocol.md' } } });
  return {
    openapi: '3.1.0',
    info: { title: 'Magpie REST API', version, description: 'Generated from the zod schemas in @magpie/protocol (src/rest/). Errors: `{"error":{code,message}}`, see docs/protocol.md.' },
    components: {
      securitySchemes: { session: { type: 'http', scheme: 'bearer', description: 'token from POST /api/login' }, admin: { type: 'http', scheme: 'bearer', description: 'MAGPIE_ADMIN_TOKEN' } },
      schemas: { Error: json(ErrorBodySchema, 'output') },
    },
    paths,
  };
}

function json(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

function parameters(schema: z.ZodType | undefined, where: 'path' | 'query'): unknown[] {
  if (!schema) return [];
  const s = json(schema, 'input') as { properties?: Record<string, unknown>; required?: string[] };
  return Object.entries(s.properties ?? {}).map(([name, p]) => ({ name, in: where, required: where === 'path' || (s.required ?? []).includes(name), schema: p }));
}

function operation(r: RestRoute): Record<string, unknown> {
  const responses: Record<string, unknown> = {};
  for (const [status, s] of Object.entries(r.reply)) if (s) responses[status] = { description: 'success', content: { 'application/json': { schema: json(s, 'output') } } };
  responses['4XX'] = { description: 'error (code table in docs/protocol.md)', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
  return {
    summary: r.summary,
    ...security(r.auth),
    parameters: [...parameters(r.params, 'path'), ...parameters(r.query, 'query')],
    ...(r.body && { requestBody: { required: true, content: { 'application/json': { schema: json(r.body, 'input') } } } }),
    responses,
  };
}

function security(auth: RestRoute['auth']): Record<string, unknown> {
  return auth === 'user' ? { security: [{ session: [] }] } : auth === 'admin' ? { security: [{ admin: [] }] } : auth === 'optional' ? { security: [{}, { session: [] }] } : {};
}

function rawOperation(r: RawRestRoute): Record<string, unknown> {
  const responses: Record<string, unknown> = {};
  for (const [status, a] of Object.entries(r.replies)) {
    const media = a.contentType ?? (a.schema ? 'application/json' : undefined);
    responses[status] = {
      description: a.description,
      ...(a.headers?.length && { headers: Object.fromEntries(a.headers.map((h) => [h, { schema: { type: 'string' } }])) }),
      ...(media && { content: { [media]: { schema: a.schema ? json(a.schema, 'output') : { type: 'string', format: 'binary' } } } }),
    };
  }
  const headers = Object.entries(r.headers ?? {}).map(([name, description]) => ({ name, in: 'header', required: false, description, schema: { type: 'string' } }));
  return {
    summary: r.summary,
    ...security(r.auth),
    parameters: [...parameters(r.params, 'path'), ...parameters(r.query, 'query'), ...headers],
    ...(r.body && { requestBody: { required: true, description: r.body.description, content: { [r.body.contentType]: { schema: { type: 'string', format: 'binary' } } } } }),
    responses,
  };
}
