// runtime/serve: HTTP for the gateway (health, metrics) and the dashboard's server, which the
// gateway and the Node-RED runtime both mount (createDashboard). See README.md.
export { createDashboard } from './dashboard';
export type { Dashboard, DashboardOptions, TeachInAccess } from './dashboard';
export type { AlertWrites } from './api';
export { MAX_PAGE_POINTS } from './api';
export { DashboardAuth, LOCAL_USER, SESSION_COOKIE, isLoopback } from './auth';
export type { AuthMode, AuthOptions, DashboardUser } from './auth';
export { modelStaticOf } from './model-views';
export type { ModelStatic } from './model-views';
export { hashPassword, parsePasswordHash, verifyPassword } from './passwords';
export { defaultPageDir } from './static';
export { LiveFeed, LIVE_DEFAULTS } from './live';
export type { LiveAlert, LiveFeedOptions, LivePoint } from './live';
export { LogReader, LOG_READER_DEFAULTS, LOG_QUERIES } from './log-reader';
export type { LogReaderOptions, LogQueryName } from './log-reader';
export type * from './dashboard-contract';
