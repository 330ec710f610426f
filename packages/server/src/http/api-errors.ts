import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import type { Logger } from 'pino';
import { MagpieError, jsonNestingExceeds, type ErrorCode } from '@magpie/protocol';
import type { Metrics } from '../metrics.ts';
import { errorBody, toMagpieError } from '../util/errors.ts';

/**
 * Every answer of the HTTP API has the documented error shape `{"error":{code,message}}`:
 * errors thrown by handlers, fastify's own refusals (bad JSON, wrong content type, body too
 * large, bad percent-encoding), unknown routes and methods, and what Node's HTTP parser
 * refuses before fastify sees a request (oversized headers or request line: 431).
 */

/** The one converter for anything thrown while serving an HTTP request. */
export function httpError(err: unknown, log?: Logger): MagpieError {
  if (err instanceof MagpieError) return err;
  if (err instanceof URIError) return new MagpieError('invalid', 'malformed percent-encoding in the URL');
  const fe = err as Partial<FastifyError>;
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new MagpieError('frame_too_large', 'request body too large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new MagpieError('invalid', 'unsupported content-type: send application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new MagpieError('invalid', 'empty body with content-type application/json');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new MagpieError('invalid', 'request body is not valid JSON');
    case 'FST_ERR_BAD_URL':
      return new MagpieError('invalid', 'malformed URL');
  }
  if (err instanceof SyntaxError) return new MagpieError('invalid', 'request body is not valid JSON');
  const status = fe.statusCode ?? 0;
  const code: ErrorCode | undefined = status === 404 ? 'not_found' : status === 413 ? 'frame_too_large' : status === 429 ? 'rate_limited' : status >= 400 && status < 500 ? 'invalid' : undefined;
  if (code) return new MagpieError(code, (fe.message ?? 'bad request').slice(0, 200));
  return toMagpieError(err, log);
}

/** Fastify constructor options of the API server: parser refusals in the documented shape. */
export function apiServerOptions(): Pick<FastifyServerOptions, 'frameworkErrors' | 'clientErrorHandler'> {
  return {
    // Bad percent-encoding in the path and similar router refusals (before any route runs).
    frameworkErrors: (err: FastifyError, _req: FastifyRequest, reply: FastifyReply) => {
      const e = httpError(err);
      void reply.code(e.status).send(errorBody(e));
    },
    clientErrorHandler: writeClientError,
  };
}

/**
 * Node's HTTP parser refused the bytes (header overflow, malformed request line, timeout):
 * no request object exists, so the answer is written to the socket directly, then closed.
 */
function writeClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  if (err.code === 'HPE_HEADER_OVERFLOW' || err.code === 'HPE_URI_TOO_LONG') writeRawError(socket, 431, new MagpieError('frame_too_large', 'request line or headers too large'));
  else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT') writeRawError(socket, 408, new MagpieError('unavailable', 'request not received in time'));
  else writeRawError(socket, 400, new MagpieError('invalid', 'malformed HTTP request'));
}

/** Answer on a raw socket (parser errors, refused WebSocket upgrades) in the documented shape, then close. */
export function writeRawError(socket: Duplex, status: number, e: MagpieError): void {
  const body = JSON.stringify(errorBody(e));
  if (socket.writable) {
    const text = STATUS_CODES[status] ?? 'Error';
    socket.write(`HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy();
}

/**
 * Error and not-found handlers, the JSON body parser with the nesting limit, and a last
 * guard that gives any body-less error response (a bare `reply.code(404).send()`) the shape.
 */
export function installApiErrors(app: FastifyInstance, opts: { log: Logger; metrics: Metrics; maxJsonDepth: number }): void {
  app.setErrorHandler((err, _req, reply) => {
    const e = httpError(err, opts.log);
    opts.metrics.errors.inc({ code: e.code });
    void reply.code(e.status).send(errorBody(e));
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send(errorBody(new MagpieError('not_found', `no such route: ${req.method} ${req.url.split('?')[0]!.slice(0, 100)}`)));
  });

  // Nesting is bounded before JSON.parse and the schema validators walk the body.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (jsonNestingExceeds(body as string, opts.maxJsonDepth)) {
      done(new MagpieError('nesting_too_deep', `JSON nests deeper than ${opts.maxJsonDepth} levels`), undefined);
      return;
    }
    parseJson(req, body as string, done);
  });

  // A callback hook, not an async one: it runs on every answer, and an async hook costs a promise each.
  app.addHook('onSend', (_req, reply, payload, done) => {
    if (reply.statusCode < 400 || (payload !== undefined && payload !== null && payload !== '')) return done(null, payload);
    const code: ErrorCode = reply.statusCode === 404 ? 'not_found' : reply.statusCode >= 500 ? 'internal' : 'invalid';
    void reply.header('content-type', 'application/json; charset=utf-8');
    done(null, JSON.stringify(errorBody(new MagpieError(code))));
  });
}
