// The fixed clients of the peers suite, the same for every server they are pointed at, so that only
// the server differs between two rows:
// - FixedHttpClient: one keep-alive HTTP/1.1 connection over node:net, each request's bytes made once
//   (head and body), the response read by its Content-Length (the `(server only)` rows: metaos's
//   HTTP server beside bare node:http's, issue 21's "server-only" ratio).
// - RawFrameClient: the floor of a transport itself, a length-prefixed frame per call
//   (raw-frame-server.ts: u32 length, u64 offset, the payload; a one-byte reply).
import { connect, type Socket } from 'node:net'

export type Target = { readonly host: string, readonly port: number } | { readonly path: string }

async function open (target: Target): Promise<Socket> {
  return await new Promise<Socket>((resolve, reject) => {
    const s = 'path' in target ? connect(target.path) : connect({ host: target.host, port: target.port, noDelay: true })
    s.once('connect', () => { s.off('error', reject); resolve(s) })
    s.once('error', reject)
  })
}

/** An HTTP/1.1 request made once: `POST path`, its headers and its body, as one buffer. */
export function httpRequestBytes (path: string, headers: Readonly<Record<string, string>>, body: Buffer): Buffer {
  let head = `POST ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n`
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`
  head += `Content-Length: ${body.length}\r\n\r\n`
  return Buffer.concat([Buffer.from(head, 'latin1'), body])
}

export interface FixedResponse { readonly status: number, readonly body: Buffer }

export class FixedHttpClient {
  readonly #s: Socket
  #buf: Buffer | undefined
  #pending: { resolve: (r: FixedResponse) => void, reject: (e: Error) => void } | undefined

  private constructor (s: Socket) {
    this.#s = s
    s.on('data', (c: Buffer) => { this.#data(c) })
    s.on('error', (e) => { this.#fail(e) })
    s.on('close', () => { this.#fail(new Error('the server closed the connection')) })
  }

  static async connect (target: Target): Promise<FixedHttpClient> { return new FixedHttpClient(await open(target)) }

  /** Sends the prepared request; resolves with the response (read by its Content-Length). */
  async roundTrip (request: Buffer): Promise<FixedResponse> {
    return await new Promise<FixedResponse>((resolve, reject) => {
      this.#pending = { resolve, reject }
      this.#s.write(request)
    })
  }

  close (): void { this.#s.destroy() }

  #fail (e: Error): void {
    const p = this.#pending
    this.#pending = undefined
    p?.reject(e)
  }

  #data (c: Buffer): void {
    const b = this.#buf === undefined ? c : Buffer.concat([this.#buf, c])
    const end = b.indexOf('\r\n\r\n')
    if (end < 0) { this.#buf = b; return }
    const head = b.toString('latin1', 0, end)
    const m = /\r\ncontent-length: *(\d+)/i.exec(head)
    if (m === null) { this.#fail(new Error(`a response without Content-Length: ${head.slice(0, 200)}`)); return }
    const total = end + 4 + Number(m[1])
    if (b.length < total) { this.#buf = b; return }
    this.#buf = b.length > total ? b.subarray(total) : undefined
    const p = this.#pending
    this.#pending = undefined
    p?.resolve({ status: Number(head.slice(9, 12)), body: b.subarray(end + 4, total) })
  }
}

export class RawFrameClient {
  readonly #s: Socket
  readonly #head = Buffer.alloc(12)
  #pending: { resolve: () => void, reject: (e: Error) => void } | undefined

  private constructor (s: Socket) {
    this.#s = s
    s.on('data', (c: Buffer) => {
      const p = this.#pending
      this.#pending = undefined
      if (p === undefined) return
      if (c.length === 1 && c[0] === 0) p.resolve()
      else p.reject(new Error(`the raw-frame server answered ${c.toString('hex', 0, 8)}`))
    })
    s.on('error', (e) => { this.#pending?.reject(e); this.#pending = undefined })
  }

  static async connect (target: Target): Promise<RawFrameClient> { return new RawFrameClient(await open(target)) }

  /** One frame: the payload to write at `offset`; resolves on the server's one-byte answer. */
  async write (payload: Buffer, offset: number): Promise<void> {
    return await new Promise<void>((resolve, reject) => {
      this.#pending = { resolve, reject }
      const head = this.#head
      head.writeUInt32BE(payload.length, 0)
      head.writeBigUInt64BE(BigInt(offset), 4)
      if (payload.length <= 64 * 1024) { this.#s.write(Buffer.concat([head, payload], 12 + payload.length)); return }
      this.#s.cork()
      this.#s.write(Buffer.from(head))
      this.#s.write(payload)
      this.#s.uncork()
    })
  }

  close (): void { this.#s.destroy() }
}
