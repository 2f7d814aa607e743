export type { DashboardOptions } from './options.js';
export { type Dashboard, startDashboard } from './server.js';
