// A lean HTTP/1.1 client for plain http: and unix: endpoints (the bus and loopback calls): a pool
// of keep-alive node:net connections, one request at a time on each, the request's head and small
// body sent in one write, the response read by Content-Length, chunked coding or the connection's
// end. node:http's client (ClientRequest, the agent's queues, IncomingMessage streams, header
// objects) cost a 512 B Write more CPU than the SOAP work; this does only what the SOAP transport
// needs. https: stays on node:https (http-transport.ts). Moves bytes only.
import { connect, type Socket } from 'node:net'
import { MetaosError } from './errors.js'

export type Http1Target = { readonly host: string, readonly port: number } | { readonly socketPath: string }

export interface Http1Response {
  readonly status: number
  readonly contentType: string
  readonly body: Buffer
  readonly requestId: string | undefined
}

/** Header values metaos sends: visible ASCII, Latin-1 and tabs; no CR, LF or other control characters (no header injection). */
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/ // eslint-disable-line no-control-regex
const MAX_HEAD = 64 * 1024
/** A request body up to this size goes out with its head in one write. */
const ONE_WRITE = 256 * 1024
/** An idle connection is closed after this long (before the server's keep-alive timeout, 30 s for metaos; less when it says so). */
const DEFAULT_IDLE_MS = 15_000

function hangUp (why: string): Error {
  return Object.assign(new Error(`socket hang up (${why})`), { code: 'ECONNRESET' })
}

interface Pending {
  readonly resolve: (r: Http1Response) => void
  readonly reject: (e: Error) => void
  readonly maxBytes: number
}

/** One keep-alive connection: a request at a time. */
class Http1Connection {
  readonly socket: Socket
  readonly #pool: Http1Pool
  #pending: Pending | undefined
  #buf: Buffer | undefined
  /** The response being read: its head is parsed when `status` is set. */
  #status = 0
  #contentType = ''
  #requestId: string | undefined
  #close = false
  #length = -1 // Content-Length, -1: none
  #chunked = false
  #body: Buffer[] = []
  #bodySize = 0
  #chunkLeft = -1 // chunked: bytes left in the current chunk (+2 for its CRLF); -1: at a size line
  idleMs = DEFAULT_IDLE_MS
  idleSince = 0
  dead = false
  /** When the request in flight times out (performance.now() ms; 0: none in flight), moved on as its answer arrives. */
  deadline = 0
  timeoutMs = 0
  timedOut: (() => Error) | undefined

  constructor (socket: Socket, pool: Http1Pool) {
    this.socket = socket
    this.#pool = pool
    socket.on('data', (c: Buffer) => { this.#data(c) })
    socket.on('end', () => { this.#ended() })
    socket.on('error', (e) => { this.#fail(e) })
    socket.on('close', () => { this.#fail(hangUp('closed')) })
  }

  send (head: Buffer, chunks: readonly Buffer[], maxBytes: number, resolve: Pending['resolve'], reject: Pending['reject']): void {
    this.#pending = { resolve, reject, maxBytes }
    this.#status = 0
    const s = this.socket
    if (chunks.length === 0) { s.write(head); return }
    s.cork()
    s.write(head)
    for (const c of chunks) s.write(c)
    s.uncork()
  }

  /** The request ended without an answer: the connection cannot be reused. */
  abort (e: Error): void {
    this.#fail(e)
  }

  #fail (e: Error): void {
    if (!this.dead) { this.dead = true; this.socket.destroy(); this.#pool.gone(this) }
    const p = this.#pending
    if (p === undefined) return
    this.#pending = undefined
    p.reject(e)
  }

  #ended (): void {
    // No Content-Length and not chunked: the body is what came before the end.
    if (this.#pending !== undefined && this.#status !== 0 && this.#length < 0 && !this.#chunked) { this.#close = true; this.#finish(); return }
    this.#fail(hangUp('the server ended the connection'))
  }

  #data (c: Buffer): void {
    if (this.#pending === undefined) { this.#fail(hangUp('data with no request')); return }
    this.deadline = performance.now() + this.timeoutMs // a timeout of silence, as node:http's socket timeout
    let b = this.#buf === undefined ? c : Buffer.concat([this.#buf, c])
    this.#buf = undefined
    while (this.#status === 0) {
      const end = b.indexOf('\r\n\r\n')
      if (end < 0) {
        if (b.length > MAX_HEAD) { this.#fail(new MetaosError('PROTOCOL_ERROR', `response head over ${MAX_HEAD} bytes`)); return }
        this.#buf = b
        return
      }
      if (!this.#head(b.toString('latin1', 0, end))) return
      b = b.subarray(end + 4)
    }
    this.#bodyBytes(b)
  }

  /** Reads a response head; false when it failed the connection. An interim (1xx) head is skipped. */
  #head (head: string): boolean {
    const eol0 = head.indexOf('\r\n')
    const first = eol0 < 0 ? head : head.slice(0, eol0)
    const m = /^HTTP\/1\.([01]) ([1-5]\d\d)(?: |$)/.exec(first)
    if (m === null) { this.#fail(new MetaosError('PROTOCOL_ERROR', `not an HTTP/1.1 response: ${JSON.stringify(first.slice(0, 80))}`)); return false }
    const status = Number(m[2])
    if (status === 101) { this.#fail(new MetaosError('PROTOCOL_ERROR', 'the server switched protocols')); return false }
    if (status < 200) return true // 100 Continue and other interim answers: the real one follows
    let length = -1
    let chunked = false
    let close = m[1] === '0'
    let contentType = ''
    let requestId: string | undefined
    // Header lines by position; only the names this client reads are lowered and compared.
    for (let p = eol0 < 0 ? head.length : eol0 + 2; p < head.length;) {
      let eol = head.indexOf('\r\n', p)
      if (eol < 0) eol = head.length
      const colon = head.indexOf(':', p)
      if (colon <= p || colon > eol) { this.#fail(new MetaosError('PROTOCOL_ERROR', `malformed response header ${JSON.stringify(head.slice(p, Math.min(eol, p + 80)))}`)); return false }
      const n = colon - p
      if (n === 10 || n === 12 || n === 14 || n === 17) {
        const name = head.slice(p, colon).toLowerCase()
        const value = head.slice(colon + 1, eol).trim()
        switch (name) {
          case 'content-length':
            if (!/^\d{1,15}$/.test(value) || (length >= 0 && Number(value) !== length)) { this.#fail(new MetaosError('PROTOCOL_ERROR', `bad Content-Length ${JSON.stringify(value.slice(0, 40))}`)); return false }
            length = Number(value)
            break
          case 'transfer-encoding': chunked = /(?:^|,)\s*chunked\s*$/i.test(value); break
          case 'content-type': contentType = value; break
          case 'x-request-id': requestId = value; break
          case 'connection': if (/(?:^|,)\s*close\s*(?:,|$)/i.test(value)) close = true; else if (m[1] === '0' && /keep-alive/i.test(value)) close = false; break
          case 'keep-alive': { const t = /timeout=(\d+)/i.exec(value); if (t !== null) this.idleMs = Math.max(0, Math.min(DEFAULT_IDLE_MS, Number(t[1]) * 1000 - 1000)); break }
        }
      }
      p = eol + 2
    }
    if (chunked) length = -1
    if (status === 204 || status === 304) { length = 0; chunked = false }
    if (length > this.#pending!.maxBytes) { this.#fail(new MetaosError('PROTOCOL_ERROR', `response over ${this.#pending!.maxBytes} bytes`)); return false }
    this.#status = status
    this.#contentType = contentType
    this.#requestId = requestId
    this.#close = close
    this.#length = length
    this.#chunked = chunked
    this.#body = []
    this.#bodySize = 0
    this.#chunkLeft = -1
    return true
  }

  #bodyBytes (b: Buffer): void {
    if (this.#chunked) { this.#chunks(b); return }
    if (this.#length >= 0) {
      const want = this.#length - this.#bodySize
      if (b.length > want) { this.#fail(new MetaosError('PROTOCOL_ERROR', 'bytes after the response')); return }
      if (b.length > 0) this.#take(b)
      if (this.#bodySize === this.#length) this.#finish()
      return
    }
    if (b.length > 0 && this.#take(b)) return // read to the end
  }

  /** Adds body bytes; true when that went over the limit (the connection failed). */
  #take (b: Buffer): boolean {
    this.#bodySize += b.length
    if (this.#bodySize > this.#pending!.maxBytes) { this.#fail(new MetaosError('PROTOCOL_ERROR', `response over ${this.#pending!.maxBytes} bytes`)); return true }
    this.#body.push(b)
    return false
  }

  #chunks (b: Buffer): void {
    let p = 0
    while (p < b.length) {
      if (this.#chunkLeft < 0) {
        const line = p
        const eol = b.indexOf('\r\n', p)
        if (eol < 0) { this.#buf = b.subarray(p); if (this.#buf.length > 1024) this.#fail(new MetaosError('PROTOCOL_ERROR', 'chunk size line too long')); return }
        const size = /^([0-9A-Fa-f]{1,12})(?:[ \t]*;.*)?$/.exec(b.toString('latin1', p, eol))
        if (size === null) { this.#fail(new MetaosError('PROTOCOL_ERROR', 'bad chunk size')); return }
        const n = parseInt(size[1]!, 16)
        p = eol + 2
        if (n === 0) {
          // The last chunk, then trailers (ignored) up to an empty line.
          const rest = b.subarray(p)
          const end = rest.indexOf('\r\n') === 0 ? 2 : rest.indexOf('\r\n\r\n') < 0 ? -1 : rest.indexOf('\r\n\r\n') + 4
          if (end < 0) { this.#buf = b.subarray(line); return }
          if (end !== rest.length) { this.#fail(new MetaosError('PROTOCOL_ERROR', 'bytes after the response')); return }
          this.#finish()
          return
        }
        this.#chunkLeft = n + 2 // the chunk's bytes, then its CRLF
      }
      const take = Math.min(this.#chunkLeft, b.length - p)
      const data = Math.min(take, Math.max(0, this.#chunkLeft - 2))
      if (data > 0 && this.#take(b.subarray(p, p + data))) return
      this.#chunkLeft -= take
      p += take
      if (this.#chunkLeft === 0) this.#chunkLeft = -1
    }
  }

  #finish (): void {
    const p = this.#pending!
    this.#pending = undefined
    const body = this.#body.length === 1 ? this.#body[0]! : Buffer.concat(this.#body, this.#bodySize)
    const r: Http1Response = { status: this.#status, contentType: this.#contentType, body, requestId: this.#requestId }
    this.#status = 0
    this.#body = []
    if (this.#close) { this.dead = true; this.socket.destroy(); this.#pool.gone(this) } else this.#pool.idle(this)
    p.resolve(r)
  }
}

/** Keep-alive connections to one endpoint, at most `max`; requests beyond wait for one. */
export class Http1Pool {
  readonly #target: Http1Target
  readonly #max: number
  readonly #idle: Http1Connection[] = []
  readonly #waiting: Array<{ resolve: (c: Http1Connection) => void, reject: (e: Error) => void }> = []
  #open = 0
  #closed = false
  readonly #conns = new Set<Http1Connection>()
  #sweep: NodeJS.Timeout | undefined
  #sweepMs = 0
  readonly #prefix: string

  constructor (target: Http1Target, path: string, max: number) {
    this.#target = target
    this.#max = max
    const host = 'socketPath' in target ? 'localhost' : target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`
    this.#prefix = `POST ${path} HTTP/1.1\r\nHost: ${host}\r\n`
  }

  /** One POST: the request's headers and body; the response, or a rejection with the socket's error (TIMED_OUT after timeoutMs). */
  async post (headers: Readonly<Record<string, string>>, chunks: readonly Buffer[], length: number, timeoutMs: number, maxBytes: number, timedOut: () => Error): Promise<Http1Response> {
    let head = this.#prefix
    let text = ''
    for (const k in headers) {
      const v = headers[k]!
      if (k.includes(':')) throw new MetaosError('INVALID_ARGUMENT', `header name ${JSON.stringify(k.slice(0, 40))} has a colon`)
      head += `${k}: ${v}\r\n`
      text += k + v
    }
    if (BAD_VALUE.test(text)) throw new MetaosError('INVALID_ARGUMENT', 'a request header has a character HTTP cannot carry (CR, LF or another control character)')
    head += `Content-Length: ${length}\r\n\r\n`
    let first: Buffer
    let rest: readonly Buffer[]
    if (length <= ONE_WRITE) {
      const hl = head.length
      first = Buffer.allocUnsafe(hl + length)
      first.write(head, 0, hl, 'latin1')
      let o = hl
      for (const c of chunks) { first.set(c, o); o += c.length }
      rest = []
    } else { first = Buffer.from(head, 'latin1'); rest = chunks }
    const conn = await this.#acquire()
    return await new Promise<Http1Response>((resolve, reject) => {
      conn.timeoutMs = timeoutMs
      conn.timedOut = timedOut
      conn.deadline = performance.now() + timeoutMs
      this.#watch(timeoutMs)
      conn.socket.ref()
      conn.send(first, rest, maxBytes, (r) => { conn.deadline = 0; resolve(r) }, (e) => { conn.deadline = 0; reject(e) })
    })
  }

  /**
   * Timeouts: one timer per pool that looks at the connections in flight every timeoutMs/8 (5 ms to
   * 1 s) while any is, instead of a timer set and cleared per request.
   */
  #watch (timeoutMs: number): void {
    const every = Math.min(1000, Math.max(5, timeoutMs / 8))
    if (this.#sweep !== undefined && every >= this.#sweepMs) return
    if (this.#sweep !== undefined) clearTimeout(this.#sweep)
    this.#sweepMs = every
    this.#sweep = setTimeout(() => { this.#check() }, every).unref()
  }

  #check (): void {
    this.#sweep = undefined
    const now = performance.now()
    let busy = false
    for (const c of this.#conns) {
      if (c.deadline === 0) continue
      if (now >= c.deadline) c.abort(c.timedOut!())
      else busy = true
    }
    if (busy) this.#sweep = setTimeout(() => { this.#check() }, this.#sweepMs).unref()
  }

  async #acquire (): Promise<Http1Connection> {
    if (this.#closed) throw new MetaosError('TRANSPORT_ERROR', 'the transport is closed')
    const now = Date.now()
    while (this.#idle.length > 0) {
      const c = this.#idle.pop()!
      if (!c.dead && now - c.idleSince < c.idleMs) return c
      c.abort(hangUp('idle too long'))
    }
    if (this.#open < this.#max) {
      this.#open++
      try {
        const s = await this.#connect()
        const c = new Http1Connection(s, this)
        this.#conns.add(c)
        return c
      } catch (e) {
        this.#open--
        this.#next()
        throw e
      }
    }
    return await new Promise((resolve, reject) => { this.#waiting.push({ resolve, reject }) })
  }

  async #connect (): Promise<Socket> {
    return await new Promise<Socket>((resolve, reject) => {
      const t = this.#target
      const s = 'socketPath' in t ? connect(t.socketPath) : connect({ host: t.host, port: t.port, noDelay: true })
      const failed = (e: Error): void => { reject(e) }
      s.once('error', failed)
      s.once('connect', () => { s.off('error', failed); resolve(s) })
    })
  }

  /** A connection free for the next request. */
  idle (c: Http1Connection): void {
    const w = this.#waiting.shift()
    if (w !== undefined) { w.resolve(c); return }
    if (this.#closed) { c.abort(hangUp('the transport closed')); return }
    c.idleSince = Date.now()
    c.socket.unref() // an idle connection does not keep the process alive
    this.#idle.push(c)
  }

  /** A connection closed: a waiting request opens a new one. */
  gone (c: Http1Connection): void {
    this.#open--
    this.#conns.delete(c)
    const i = this.#idle.indexOf(c)
    if (i >= 0) this.#idle.splice(i, 1)
    this.#next()
  }

  #next (): void {
    if (this.#waiting.length === 0 || this.#open >= this.#max) return
    const w = this.#waiting.shift()!
    this.#acquire().then(w.resolve, w.reject)
  }

  /** Closes every connection (a request in flight fails with ECONNRESET, as node:http's agent.destroy() does). */
  close (): void {
    this.#closed = true
    for (const c of [...this.#conns]) c.abort(hangUp('the transport closed'))
    for (const w of this.#waiting.splice(0)) w.reject(new MetaosError('TRANSPORT_ERROR', 'the transport is closed'))
  }
}
