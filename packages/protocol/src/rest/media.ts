import { z } from 'zod';
import { restRoute } from './route.ts';

/**
 * What a client needs to know of the server's media settings (server: media/index.ts). The
 * tus upload and media read routes themselves are documented in docs/protocol.md.
 */
export const ClientConfigSchema = z.strictObject({
  media: z.strictObject({
    /** Largest upload per message kind, in bytes: a client refuses bigger files before uploading. */
    maxBytes: z.strictObject({ image: z.number().int(), video: z.number().int(), voice: z.number().int(), file: z.number().int() }),
    /** "Open in map" link of a location message: `{lat}`, `{lng}`, `{label}` replaced (URL-encoded); '' for none. */
    mapUrlTemplate: z.string(),
  }),
});
export type ClientConfig = z.infer<typeof ClientConfigSchema>;

export const mediaRoutes = {
  clientConfig: restRoute({
    method: 'GET',
    url: '/api/client-config',
    summary: 'Media settings a client needs (upload limits, map link template)',
    auth: 'user',
    reply: { 200: ClientConfigSchema },
  }),
};

/** The map link of a location from the operator's template ('' → null). */
export function mapUrl(template: string, loc: { lat: number; lng: number; label?: string | undefined }): string | null {
  if (!template) return null;
  return template
    .replaceAll('{lat}', encodeURIComponent(String(loc.lat)))
    .replaceAll('{lng}', encodeURIComponent(String(loc.lng)))
    .replaceAll('{label}', encodeURIComponent(loc.label ?? ''));
}
