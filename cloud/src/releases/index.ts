export type { ReleaseRouteOptions } from './release-route.js';
export { releaseContentType, releaseEtag, releaseNameProblem, releaseRoutes } from './release-route.js';
