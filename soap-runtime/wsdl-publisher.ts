// `?wsdl`: the contract with its addresses rewritten to the one a request came in on, so importers
// call back the same way. The document is split around its two addresses once; a request only
// concatenates.
import { escapeXml } from './xml.js'

export class WsdlPublisher {
  readonly #wsdl: string
  readonly #parts: [string, string, string] | undefined

  constructor (wsdl: string) {
    this.#wsdl = wsdl
    const m = /^([\s\S]*?location=")[^"]*("[\s\S]*?location=")[^"]*("[\s\S]*)$/.exec(wsdl)
    this.#parts = m === null ? undefined : [m[1]!, m[2]!, m[3]!]
  }

  /** The WSDL whose service addresses say `address`. */
  at (address: string): string {
    if (this.#parts === undefined) return this.#wsdl
    const a = escapeXml(address)
    return this.#parts[0] + a + this.#parts[1] + a + this.#parts[2]
  }
}
