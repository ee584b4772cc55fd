// What every domain command does once its domain listens (DESIGN.md §5): announce it on
// WS-Discovery if asked, print exactly one JSON ready line, then wait for SIGTERM or SIGINT — say
// Bye first (clients stop choosing it), drain in-flight calls, close — and return the exit code.
import type { Logger } from 'pino'
import { TargetService } from '../discovery/target-service.js'

export interface RunningDomain {
  readonly epr: string
  readonly endpoints: readonly string[]
  readonly host: { readonly inFlight: number }
  close: (graceMs?: number) => Promise<void>
}

export interface Announcement {
  readonly types: readonly string[]
  readonly scopes: readonly string[]
  readonly interfaces?: readonly string[]
}

export async function serveUntilSignalled (service: string, domain: RunningDomain, announce: Announcement | undefined, logger: Logger, drainFacts: () => object = () => ({})): Promise<number> {
  let target: TargetService | undefined
  if (announce !== undefined) {
    target = new TargetService({
      epr: domain.epr,
      types: announce.types,
      scopes: announce.scopes,
      xaddrs: domain.endpoints,
      ...(announce.interfaces === undefined ? {} : { interfaces: announce.interfaces }),
      logger,
    })
    try {
      await target.start()
    } catch (e) {
      await domain.close(0)
      throw e
    }
  }
  process.stdout.write(JSON.stringify({ event: 'ready', service, endpoints: domain.endpoints, epr: domain.epr }) + '\n')
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ signal, inFlight: domain.host.inFlight, ...drainFacts() }, 'draining')
      // Bye first: clients stop choosing this domain while it drains.
      const bye = target?.stop() ?? Promise.resolve()
      Promise.all([bye, domain.close()]).then(() => { resolve() }, (e: unknown) => { logger.error({ err: e }, 'close failed'); resolve() })
    }
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
  })
  logger.info('stopped')
  logger.flush()
  return 0
}
