// metaos/dashboard: the live dashboard, for operators and integrators (docs/dashboard.md).
export { serveFrontendDashboard } from './frontend-dashboard.js'
export { serveDashboard, type DashboardOptions, type ServedDashboard } from './dashboard-server.js'
export { PmtHistory } from './pmt-history.js'
