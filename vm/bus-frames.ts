// The hypervisor bus's frame protocol: the frame types, the encoder and the incremental parser
// (vm/hypervisor-bus.ts has both ends of the bus, vm/bus-link.ts the channels over one link).
//
// Frame protocol (both directions): a 9-byte header — type u8, channel u32 BE, length u32 BE — then
// `length` bytes of payload.
//   1 HELLO  channel 0, payload: version u8 (= 1) + 4-byte nonce. The host sends it on each new link
//            connection (and again every helloIntervalMs until answered: a booting guest may not
//            read the port yet, and QEMU drops what the guest does not read). The guest echoes it.
//            Until the echo of *this* connection's nonce arrives the host discards every byte
//            (bytes the guest wrote for an old connection can still be queued in the port). A guest
//            that sees a nonce it has not answered yet destroys all its channels (fresh start); a
//            repeated nonce is only answered again. The guest sends HELLO with nonce 0 when it
//            starts and after a protocol error: "I lost sync, handshake again" (the host never
//            picks nonce 0); the host then resets its channels and sends a new HELLO.
//   2 OPEN   host → guest: a new channel. The host picks the id: never 0, never reused while alive
//            (a u32 counter that only wraps after 4 billion channels, skipping live ids).
//   3 DATA   bytes of a channel, at most 64 KiB per frame (larger chunks are split).
//   4 END    the sender sends no more on this channel (half-close, like shutdown(SHUT_WR)).
//   5 CLOSE  destroy the channel; payload: an optional UTF-8 reason (the guest's ECONNREFUSED when
//            the domain's socket is not there). A channel both of whose directions ended cleanly is
//            forgotten by each side without a CLOSE.
// DATA or END for an unknown channel is answered with CLOSE and dropped; CLOSE for an unknown one is
// ignored (never answered, so the two sides cannot ping-pong). An unknown type, a header that breaks
// the rules above or a length over 64 KiB + 1 KiB is a protocol error: the host drops the link and
// reconnects; the guest destroys its channels, asks for a new HELLO and discards bytes until one.
import { MetaosError } from '../soap-runtime/errors.js'

export const FrameType = { HELLO: 1, OPEN: 2, DATA: 3, END: 4, CLOSE: 5 } as const
export type FrameType = (typeof FrameType)[keyof typeof FrameType]
export const HEADER_BYTES = 9
export const MAX_DATA = 64 * 1024
/** Payloads above this are a protocol error: DATA's limit plus slack for a lenient sender. */
export const MAX_PAYLOAD = MAX_DATA + 1024
export const PROTOCOL_VERSION = 1

export interface Frame { type: FrameType, channel: number, payload: Buffer }

export function encodeFrame (type: FrameType, channel: number, payload?: Uint8Array): Buffer {
  const len = payload?.length ?? 0
  const b = Buffer.allocUnsafe(HEADER_BYTES + len)
  b[0] = type
  b.writeUInt32BE(channel, 1)
  b.writeUInt32BE(len, 5)
  if (payload !== undefined) b.set(payload, HEADER_BYTES)
  return b
}

/** A HELLO frame carrying `nonce`. */
export const helloFrame = (nonce: Uint8Array): Buffer => encodeFrame(FrameType.HELLO, 0, Buffer.concat([Buffer.of(PROTOCOL_VERSION), nonce]))
/** What every HELLO starts with: the guest resynchronises on it after a protocol error. */
export const HELLO_PREFIX = helloFrame(Buffer.alloc(4)).subarray(0, HEADER_BYTES + 1)
export const ZERO_NONCE = Buffer.alloc(4)

/** Incremental frame parser: push chunks as they come, take frames with next() until undefined. */
export class FrameParser {
  #buf: Buffer = Buffer.alloc(0)
  #off = 0
  #resync: Buffer | undefined
  #broken = false

  push (chunk: Buffer): void {
    if (this.#off >= this.#buf.length) this.#buf = chunk
    else this.#buf = Buffer.concat([this.#buf.subarray(this.#off), chunk])
    this.#off = 0
  }

  /** Discards bytes until `pattern` (the start of a frame) is seen; parsing resumes there. */
  resync (pattern: Buffer): void {
    if (this.#broken) this.#off += 1 // never find the bad header itself again
    this.#broken = false
    this.#resync = pattern
  }

  /** True after a protocol error until resync() or reset(). */
  get broken (): boolean { return this.#broken }

  /** Forgets buffered bytes and any resync pattern. */
  reset (): void { this.#buf = Buffer.alloc(0); this.#off = 0; this.#resync = undefined; this.#broken = false }

  /** The next complete frame, or undefined when more bytes are needed. Throws PROTOCOL_ERROR. */
  next (): Frame | undefined {
    if (this.#broken) throw new MetaosError('PROTOCOL_ERROR', 'hypervisor bus: stream out of sync')
    if (this.#resync !== undefined) {
      const at = this.#buf.indexOf(this.#resync, this.#off)
      if (at < 0) {
        this.#off = Math.max(this.#off, this.#buf.length - this.#resync.length + 1)
        return undefined
      }
      this.#off = at
      this.#resync = undefined
    }
    const b = this.#buf
    const o = this.#off
    if (b.length - o < HEADER_BYTES) return undefined
    const type = b[o]!
    const channel = b.readUInt32BE(o + 1)
    const len = b.readUInt32BE(o + 5)
    const bad = type < FrameType.HELLO || type > FrameType.CLOSE ? `unknown frame type ${type}`
      : len > MAX_PAYLOAD ? `frame length ${len} over ${MAX_PAYLOAD}`
        : type === FrameType.HELLO ? (channel !== 0 || len !== 5 ? 'HELLO must be on channel 0 with 5 bytes' : undefined)
          : channel === 0 ? 'channel 0 is reserved for HELLO'
            : (type === FrameType.OPEN || type === FrameType.END) && len !== 0 ? 'OPEN and END carry no payload' : undefined
    if (bad !== undefined) {
      this.#broken = true
      throw new MetaosError('PROTOCOL_ERROR', `hypervisor bus: ${bad}`)
    }
    if (b.length - o - HEADER_BYTES < len) return undefined
    this.#off = o + HEADER_BYTES + len
    return { type: type as FrameType, channel, payload: b.subarray(o + HEADER_BYTES, this.#off) }
  }
}
