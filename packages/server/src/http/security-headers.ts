import type { IncomingMessage, ServerResponse } from 'node:http';
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
 * Security headers on every answer, set with helmet, in two sets:
 *
 * - **Documents** (the web client, the admin console, everything outside /api/ and /metrics):
 *   the policy below.
 * - **API answers** (/api/…, /metrics: JSON, media bytes, text): answers that are never a
 *   page, so no page policy but the strictest one — `default-src 'none'; frame-ancestors
 *   'none'; sandbox` (an answer opened as a document, e.g. an uploaded image in its own tab,
 *   may load nothing, run nothing and be framed by nobody; the pattern of GitHub's raw user
 *   content), nosniff, X-Frame-Options DENY, no Referer, CORP same-origin, HSTS under TLS.
 *   The document-only headers (COOP, Origin-Agent-Cluster, DNS prefetch, IE download options,
 *   Flash cross-domain policies, X-XSS-Protection) are left out: ~450 bytes and 6 headers
 *   fewer to build and write per API call (OWASP REST Security Cheat Sheet, "Security headers").
 *
 * The document policy:
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
 * The headers are helmet's (`helmet` is the one definition of them), computed once per Host
 * header and then copied onto each answer: the only per-request part of the policy is the
 * WebSocket endpoint in `connect-src`, which depends on the Host alone. Running helmet's
 * middleware chain on every request (and building its CSP string each time) was ~5 µs of CPU
 * and ~5 KB of garbage per request (docs/benchmarks.md, "Red packets").
 */
export async function registerSecurityHeaders(app: FastifyInstance, opts: { tls: boolean }): Promise<void> {
  const headersFor = securityHeaders(opts);
  const api = apiSecurityHeaders(opts);
  app.addHook('onRequest', (request, reply, done) => {
    let list: readonly string[];
    try {
      list = isApiAnswer(request.url) ? api : headersFor(request.raw);
    } catch (err) {
      done(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    // On fastify's reply (written with its status line by one writeHead), not on the raw
    // response: Node's setHeader keeps a [name, value] pair and a table entry per header per
    // request. Routes that answer on the raw response copy them over (http/rest.ts RestApi.raw).
    for (let i = 0; i < list.length; i += 2) void reply.header(list[i]!, list[i + 1]!);
    done();
  });
}

/** Answers that are never a page: the REST API (JSON, media bytes) and the metrics. */
function isApiAnswer(url: string): boolean {
  return url.startsWith('/api/') || url === '/metrics' || url.startsWith('/metrics?');
}

/** The headers of an API answer (see registerSecurityHeaders) as a flat [name, value, …] list, computed once with helmet. */
function apiSecurityHeaders(opts: { tls: boolean }): readonly string[] {
  const setHeaders = helmet({
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], sandbox: [] } },
    xFrameOptions: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    strictTransportSecurity: opts.tls ? { maxAge: 180 * 24 * 3600, includeSubDomains: false } : false,
    crossOriginResourcePolicy: { policy: 'same-origin' },
    crossOriginOpenerPolicy: false,
    originAgentCluster: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false,
  });
  return headersOf(setHeaders, '');
}

/** What helmet's middleware `setHeaders` sets for a request with this Host header, as a flat [name, value, …] list. */
function headersOf(setHeaders: ReturnType<typeof helmet>, host: string): string[] {
  const names: string[] = [];
  const values = new Map<string, string>();
  const res = {
    setHeader(name: string, value: string | number | readonly string[]) {
      const key = name.toLowerCase();
      if (!values.has(key)) names.push(name);
      values.set(key, String(value));
    },
    removeHeader(name: string) {
      const key = name.toLowerCase();
      if (!values.delete(key)) return;
      names.splice(names.findIndex((n) => n.toLowerCase() === key), 1);
    },
  };
  let failed: unknown;
  setHeaders({ headers: { host } } as IncomingMessage, res as unknown as ServerResponse, (err?: unknown) => void (failed = err));
  if (failed) throw failed instanceof Error ? failed : new Error(String(failed));
  // Names in lower case: Node's setHeader lower-cases each name for its table, and for a name
  // already in lower case that is the same string, not a new one per header per request.
  return names.flatMap((n) => [n.toLowerCase(), values.get(n.toLowerCase())!]);
}

/** Distinct Host values remembered (any Host an attacker sends beyond these is computed, not cached). */
const MAX_HOSTS = 64;

/**
 * The security headers of an answer to `req` as a flat [name, value, name, value, …] list,
 * exactly what helmet would set: computed by helmet for each distinct usable Host (or none)
 * and remembered for up to MAX_HOSTS of them.
 */
export function securityHeaders(opts: { tls: boolean }): (req: IncomingMessage) => readonly string[] {
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
  /** What helmet sets for a request with this Host header (helmet's middleware calls only setHeader and removeHeader). */
  const compute = (host: string): string[] => headersOf(setHeaders, host);
  // Keyed by what the CSP echoes: the Host when it is fit to be echoed, else '' (left out).
  const byHost = new Map<string, string[]>();
  return (req) => {
    const host = req.headers.host ?? '';
    const key = HOST.test(host) ? host : '';
    let list = byHost.get(key);
    if (!list) {
      list = compute(key);
      if (byHost.size < MAX_HOSTS) byHost.set(key, list);
    }
    return list;
  };
}
