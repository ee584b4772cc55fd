// The commands of `metaos`, each a module loaded when asked for; metaos.ts dispatches to them and
// test/cli/cli-usage.test.ts walks their options.

export interface CommandModule { main: (argv: string[]) => Promise<number> }

// A domain command (`domain: true`) that fails prints an error line on stdout, where its spawner
// waits for the ready line, carrying the failure's code (domains/domain-process.ts).
export const COMMANDS: Record<string, { summary: string, domain?: true, load: () => Promise<CommandModule> }> = {
  storage: { summary: 'run a storage domain in the foreground', domain: true, load: async () => await import('./storage-command.js') },
  network: { summary: 'run a network domain in the foreground', domain: true, load: async () => await import('./network-command.js') },
  discover: { summary: 'find domains with WS-Discovery', load: async () => await import('./discover-command.js') },
  'discovery-proxy': { summary: 'run a WS-Discovery discovery proxy (managed mode)', load: async () => await import('./discovery-proxy-command.js') },
  pmt: { summary: 'measure discovered domains and print the Performance Mapping Table', load: async () => await import('./pmt-command.js') },
  up: { summary: 'start local process domains and show them working (the default demo)', load: async () => await import('./up-command.js') },
  status: { summary: 'show what the running `metaos up` is doing: domains, PMT, supervisor decisions, streams', load: async () => await import('./status-command.js') },
  domain: { summary: 'list, start, stop, pause, resume, restart, clone or resize a domain of the running `metaos up`', load: async () => await import('./domain-command.js') },
  bench: { summary: 'run benchmarks (see docs/benchmarks.md)', load: async () => await import('./bench-command.js') },
  pki: { summary: 'make a private CA, domain and client certificates, revoke them', load: async () => await import('./pki-command.js') },
}
