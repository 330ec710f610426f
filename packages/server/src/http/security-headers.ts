import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import helmet from 'helmet';

/** A Host header fit to be echoed into the CSP (name or IP, optional port); anything else is left out. */
const HOST = /^(?:[a-z0-9.-]{1,253}|\[[0-9a-f:.]{2,45}\])(?::\d{1,5})?$/i;

/**
 * The WebSocket endpoint of this origin. CSP Level 3 lets `'self'` cover ws:/wss: of the
 * same host, but older Safari does not, so the endpoint is also named explicitly.
 */
function sameOriginSockets(req: IncomingMessage): string {
  const host = req.headers.host ?? '';
  return HOST.test(host) ? `ws://${host} wss://${host}` : '';
}

/**
 * Security headers on every answer (web client, API, metrics), set by @fastify/helmet.
 *
 * The CSP is what the built web client needs and no more: its own scripts and stylesheets
 * (React's `style` props are set through the CSSOM, which `style-src` does not restrict),
 * fetch and WebSocket to its own origin, the service worker and manifest from its origin,
 * images from its origin, data:/blob: URLs and https (avatars are http(s) URLs), audio and
 * video from its origin and blob: URLs (a picked or recorded file before its upload ends). Web Push
 * subscriptions are made by the browser's push service, outside the page's CSP.
 * No framing at all (`frame-ancestors 'none'` and X-Frame-Options DENY), nosniff, and no
 * Referer leaves the app. HSTS only when this process terminates TLS itself; a TLS proxy in
 * front should add its own (docs/operations.md). No `upgrade-insecure-requests`: a server on a
 * LAN address over plain http must keep working.
 *
 * The `helmet` middleware is built once and run on every request (@fastify/helmet built a new
 * one per request, re-parsing the CSP: 6–7 % of the server's CPU on a small API call).
 */
export async function registerSecurityHeaders(app: FastifyInstance, opts: { tls: boolean }): Promise<void> {
  const setHeaders = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        baseUri: ["'self'"],
        scriptSrc: ["'self'"],
        scriptSrcAttr: ["'none'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:', 'blob:', 'https:'],
        // Media in the chat: <video>/<audio> from this origin (signed media URLs) and blob: URLs of
        // files picked or recorded on this device, shown before their upload finishes.
        mediaSrc: ["'self'", 'blob:'],
        fontSrc: ["'self'", 'data:'],
        connectSrc: ["'self'", (req) => sameOriginSockets(req as IncomingMessage)],
        workerSrc: ["'self'"],
        manifestSrc: ["'self'"],
        objectSrc: ["'none'"],
        frameSrc: ["'none'"],
        frameAncestors: ["'none'"],
        formAction: ["'self'"],
      },
    },
    xFrameOptions: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    strictTransportSecurity: opts.tls ? { maxAge: 180 * 24 * 3600, includeSubDomains: false } : false,
    // The API is read by the web client of the same origin; other origins never load its answers as resources.
    crossOriginResourcePolicy: { policy: 'same-origin' },
  });
  app.addHook('onRequest', (request, reply, done) => {
    setHeaders(request.raw, reply.raw, (err) => done(err instanceof Error ? err : undefined));
  });
}
