// The one way metaos makes a logger: pino JSON on stderr (stdout is reserved for machine-readable
// lines such as the domain's "ready" event). Level from the option, else METAOS_LOG_LEVEL, else info;
// tests set METAOS_LOG_LEVEL=silent.
import { pino, type Logger } from 'pino'

export function createLogger (name: string, level?: string): Logger {
  return pino({ name, level: level ?? process.env.METAOS_LOG_LEVEL ?? 'info' }, pino.destination({ fd: 2, sync: false }))
}

export const silentLogger: Logger = pino({ level: 'silent' })
