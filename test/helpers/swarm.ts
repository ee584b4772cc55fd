// What the swarm tests share (test/scenarios/swarm-runs-the-stack.test.ts, test/scenarios/a-host-lost-mid-write.test.ts): the driver of
// docker/swarm/local-swarm.sh (benchmarks/local-swarm.ts, which the swarm benchmark uses too; with
// it, waiting for another swarm to end), a swarm name of the test's own, a swarm brought up with
// the stack deployed and healthy and taken down by a teardown that runs on failure too, and
// timings for `t.comment`.
import { join } from 'node:path'
import { tempDir } from './temp-dir.js'
import { dockerMissing } from './docker.js'
import { LocalSwarm, waitForOtherSwarms, type SwarmReady } from '../../benchmarks/local-swarm.js'

export * from '../../benchmarks/local-swarm.js'

/** How .ci/run installs what the local swarm needs (partMissing's third argument). */
export const SWARM_INSTALL = 'apt-get install -y iproute2 util-linux docker.io'

/** A swarm name of this run: `prefix` and five random characters (namespaces PREFIXxxxxx-node1…). */
export const swarmName = (prefix: string): string => `${prefix}${Math.random().toString(36).slice(2, 7)}`

/**
 * `local-swarm.sh up`'s arguments that take the images from the tests' Docker engine
 * (test/helpers/docker.ts: built there once, kept between runs) instead of building them anew in
 * node1's dockerd; none when that engine cannot run here (without CI: the swarm then builds them).
 */
export function imagesFromTestEngine (log?: (line: string) => void): string[] {
  const missing = dockerMissing(log === undefined ? {} : { log })
  if (missing !== false) { log?.(`images built in node1's dockerd: ${missing}`); return [] }
  return ['--images-from', process.env.DOCKER_HOST!]
}

/** Seconds taken per step, printed by `line()`. */
export class Timings {
  readonly took: Record<string, number> = {}
  async time<T> (k: string, f: () => T | Promise<T>): Promise<T> {
    const t0 = performance.now()
    try { return await f() } finally { this.took[k] = (performance.now() - t0) / 1000 }
  }

  line (): string { return `seconds: ${Object.entries(this.took).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}` }
}

interface T { teardown: (fn: () => void) => void }

/**
 * A local swarm of `nodes` nodes in a new temporary directory, `down` registered as a teardown
 * before anything can fail (after the directory's removal is: teardowns run last-registered
 * first). Not up yet: call `up`.
 */
export function swarmFor (t: T, prefix: string): { swarm: LocalSwarm, tmp: string } {
  const tmp = tempDir(t, 'metaos-swarm-')
  const swarm = new LocalSwarm(swarmName(prefix), tmp)
  t.teardown(() => { swarm.down() })
  return { swarm, tmp }
}

/** `swarmFor`, up, the stack's secrets in TMP/pki, deployed, every task healthy. */
export async function deployedSwarm (t: T, prefix: string, timings: Timings, nodes = 3): Promise<{ swarm: LocalSwarm, tmp: string, pki: string, ready: SwarmReady }> {
  await waitForOtherSwarms()
  const { swarm, tmp } = swarmFor(t, prefix)
  const images = imagesFromTestEngine()
  const ready = await timings.time('up', () => swarm.up(nodes, images))
  const pki = join(tmp, 'pki')
  swarm.secrets(pki)
  await timings.time('deploy', () => { swarm.deploy(pki) })
  await timings.time('healthy', async () => await swarm.waitHealthy())
  return { swarm, tmp, pki, ready }
}
