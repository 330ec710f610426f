import { searchRoutes as R } from '@magpie/protocol';
import type { RestApi } from '../http/rest.ts';
import type { SearchService } from './search-service.ts';
import type { SubjectService } from './subjects.ts';

/** Search and subject routes (schemas: @magpie/protocol rest/search.ts). */
export function registerSearchRoutes(api: RestApi, search: SearchService, subjects: SubjectService): void {
  api.route(R.search, async ({ principal, query }) => {
    const { q, ...rest } = query;
    return search.search(principal.userId, { query: q, ...rest });
  });
  api.route(R.subject, async ({ principal, params }) => ({ subject: await subjects.get(principal.userId, params.conv) }));
  api.route(R.attachSubject, async ({ body }) => subjects.attach(body));
}
