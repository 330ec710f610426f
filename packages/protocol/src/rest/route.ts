import { z } from 'zod';
import { errorCodeList } from '../errors.ts';

/**
 * One REST route of the API as data: the server registers it (validating the request and
 * typing the handler's answer with these schemas), the OpenAPI document at /api/docs is
 * generated from it, and the tests validate real answers against `reply`.
 */
export interface RestRoute {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: `/api/${string}`;
  summary: string;
  /** `user`: a session token; `admin`: the operator token; `optional`: a session token if present. */
  auth: 'user' | 'admin' | 'optional' | 'none';
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  /** Reply schema by success status (200 or 201). */
  reply: { 200?: z.ZodType; 201?: z.ZodType };
}

/**
 * A route whose body or answer is not JSON (tus uploads, media bytes): params and query are
 * validated like a RestRoute's, the handler reads the body and writes the answer itself, and
 * the OpenAPI document describes both from here.
 */
export interface RawRestRoute {
  method: 'GET' | 'HEAD' | 'POST' | 'PATCH' | 'DELETE' | 'OPTIONS';
  url: `/api/${string}`;
  summary: string;
  /** `user`: a session token; `none`: the handler decides (e.g. a signed URL or no auth at all). */
  auth: 'user' | 'none';
  params?: z.ZodType;
  query?: z.ZodType;
  /** Request headers the route reads, name → meaning (the handler checks them). */
  headers?: Record<string, string>;
  /** A body the handler reads itself, unparsed. */
  body?: { contentType: string; description: string };
  /** Answers by status: what they mean, their media type if they carry a body, headers they set. */
  replies: Record<number, { description: string; contentType?: string; schema?: z.ZodType; headers?: readonly string[] }>;
}

export const rawRoute = <const R extends RawRestRoute>(r: R): R => r;

/** Keeps a route's literal types (for handler typing) while checking it is a RestRoute. */
export const restRoute = <const R extends RestRoute>(r: R): R => r;

/** The body of every error answer: `{"error":{code,message,details?,retryAfterMs?}}`. */
export const ErrorBodySchema = z.strictObject({
  error: z.strictObject({
    code: z.enum(errorCodeList as [string, ...string[]]),
    message: z.string(),
    details: z.unknown().optional(),
    retryAfterMs: z.number().int().nonnegative().optional(),
  }),
});

export const OkSchema = z.strictObject({ ok: z.literal(true) });
export const Seq = z.number().int().nonnegative();
/** A non-negative integer in a query string. */
export const QuerySeq = z.coerce.number().int().nonnegative();
export const queryLimit = (max: number) => z.coerce.number().int().min(1).max(max);

const OpenApiDocument = z.looseObject({ openapi: z.string(), info: z.looseObject({}), paths: z.record(z.string(), z.unknown()) });
export const docsRoutes = {
  openapi: restRoute({ method: 'GET', url: '/api/docs/openapi.json', summary: 'This OpenAPI 3.1 document', auth: 'none', reply: { 200: OpenApiDocument } }),
  docs: restRoute({ method: 'GET', url: '/api/docs', summary: 'The OpenAPI document (same as /api/docs/openapi.json)', auth: 'none', reply: { 200: OpenApiDocument } }),
};
