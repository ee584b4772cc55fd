// The contracts' own facts, beside the WSDL they come from: where each service is served and the
// WSDL text itself (read once, on first use). Domains serve these; proxies and discovery use the paths.
import { readFileSync } from 'node:fs'
import { packageFile } from './package-root.js'

export const STORAGE_PATH = '/storage'
export const NETWORK_PATH = '/network'
export const PERFORMANCE_PATH = '/performance'

const texts = new Map<string, string>()
function wsdl (file: string): string {
  let text = texts.get(file)
  if (text === undefined) texts.set(file, text = readFileSync(packageFile('wsdl', file), 'utf8'))
  return text
}
export const storageWsdl = (): string => wsdl('StorageService.wsdl')
export const networkWsdl = (): string => wsdl('NetworkService.wsdl')
export const performanceWsdl = (): string => wsdl('PerformanceService.wsdl')
