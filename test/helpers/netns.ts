// Runs the calling test file inside a network namespace of its own (`unshare --net`) with only
// loopback up and multicast routed to it: WS-Discovery traffic can then neither leave the machine
// nor meet the multicast of another test file running at the same time.
//
// Call `await isolateNetwork()` at the top of a test file, before anything else: in the parent
// it re-executes the file (same Node flags, so tap's TypeScript loader comes along) in the
// namespace, relays its TAP output and exit code, and never returns; inside, it returns at once.
// No name resolves in the namespace and no registry is reachable: what the file needs from outside
// (a package download, an image build) is done by `prepare`, which runs in the parent before the
// namespace is entered; the environment variables it returns are set in the re-executed file.
import { spawn, spawnSync } from 'node:child_process'

const MARK = 'METAOS_IN_NETNS'

export function netnsAvailable (): boolean {
  if (process.env[MARK] === '1') return true
  return spawnSync('unshare', ['--net', 'true']).status === 0 && spawnSync('ip', ['-V']).status === 0
}

export async function isolateNetwork (prepare?: () => Promise<Record<string, string> | undefined>): Promise<void> {
  if (process.env[MARK] === '1') return
  if (!netnsAvailable()) throw new Error('network namespaces are not available here (needs root, unshare and iproute2)')
  const prepared = prepare === undefined ? undefined : await prepare()
  // `src 127.0.0.1`: senders that do not choose an interface (nmap, Mono) would otherwise send from 0.0.0.0.
  const script = 'ip link set lo up && ip route add 224.0.0.0/4 dev lo src 127.0.0.1 && exec "$@"'
  const child = spawn('unshare', ['--net', '--', 'sh', '-c', script, 'sh', process.execPath, ...process.execArgv, process.argv[1]!, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, ...prepared, [MARK]: '1' },
  })
  const code = await new Promise<number>((resolve) => { child.on('exit', (c, sig) => { resolve(c ?? (sig === null ? 1 : 128)) }) })
  process.exit(code)
}
