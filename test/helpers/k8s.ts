// Test helper: the Kubernetes manifests of docker/k8s/ as kubectl would read them, and the offline
// checks that stand in for an API server. YAML is parsed as YAML 1.1 (Kubernetes' sigs.k8s.io/yaml
// reads 1.1: `defaultMode: 0440` is octal). Each object is validated with the class kubernetes-models
// has for its apiVersion and kind: its validate() runs the JSON schema of the Kubernetes release's
// OpenAPI document, shipped inside the package. That schema allows properties it does not list (as an
// API server does without strict field validation), so strictFieldErrors adds what `kubectl apply
// --validate=strict` adds: every object is type-checked against the package's TypeScript interface
// of its kind, whose excess-property check refuses a field the release does not know.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { parseAllDocuments } from 'yaml'
import { packageFile, PACKAGE_ROOT } from '../../wsdl/package-root.js'

export type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any
/** One object of a manifest: its file, its place in the file, the object. */
export interface Loaded { readonly file: string, readonly index: number, readonly obj: Obj }

export const K8S_DIR = packageFile('docker', 'k8s')
export const manifestFiles = (): string[] => readdirSync(K8S_DIR).filter((f) => f.endsWith('.yaml')).sort()

/** Every non-empty document of a YAML text (YAML 1.1); throws naming the file on a parse error or warning. */
export function parseManifests (text: string, file: string): Loaded[] {
  const out: Loaded[] = []
  parseAllDocuments(text, { version: '1.1', uniqueKeys: true }).forEach((doc, index) => {
    const problems = [...doc.errors, ...doc.warnings]
    if (problems.length > 0) throw new Error(`${file} document ${index}: ${problems.map((e) => e.message).join('; ')}`)
    const obj = doc.toJS({ maxAliasCount: 100 }) as unknown
    if (obj !== null && obj !== undefined) out.push({ file, index, obj: obj as Obj })
  })
  return out
}

export const loadManifests = (): Loaded[] => manifestFiles().flatMap((f) => parseManifests(readFileSync(join(K8S_DIR, f), 'utf8'), f))
export const where = (l: Loaded): string => `${l.file}#${l.index} ${String(l.obj.kind)} ${String(l.obj.metadata?.name)}`

/** A stable API version (v1, apps/v1…): Kubernetes never removes a GA version within v1; alpha and beta ones go. */
export const GA_API_VERSION = /^(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*\/)?v\d+$/

interface ModelClass { new (data: Obj): { validate: () => void }, is: (v: unknown) => boolean }
export interface Models { readonly version: string, classFor: (apiVersion: string, kind: string) => Promise<ModelClass | undefined> }

/** kubernetes-models, or the error of importing it (the caller says partMissing). */
export async function loadKubernetesModels (): Promise<Models | Error> {
  let version: string
  try {
    await import('kubernetes-models/v1')
    const pkg = fileURLToPath(import.meta.resolve('kubernetes-models/v1')).replace(/[\\/]v1[\\/]index\.js$/, '')
    version = (JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as { version: string }).version
  } catch (e) {
    return e as Error
  }
  return {
    version,
    classFor: async (apiVersion, kind) => {
      let mod: Record<string, unknown>
      try { mod = await import(`kubernetes-models/${apiVersion}`) as Record<string, unknown> } catch { return undefined }
      const c = mod[kind] as ModelClass | undefined
      return typeof c === 'function' ? c : undefined
    },
  }
}

/** The schema problems of one object: no GA version, no class for it in the release, or validate()'s error. */
export async function schemaErrors (models: Models, l: Loaded): Promise<string[]> {
  const { apiVersion, kind } = l.obj as { apiVersion?: unknown, kind?: unknown }
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return [`${where(l)}: no apiVersion and kind`]
  if (!GA_API_VERSION.test(apiVersion)) return [`${where(l)}: ${apiVersion} is not a stable API version (alpha and beta versions are removed from later releases)`]
  const Model = await models.classFor(apiVersion, kind)
  if (Model === undefined || !Model.is(l.obj)) return [`${where(l)}: the release has no ${kind} in ${apiVersion}`]
  try { new Model(l.obj).validate() } catch (e) { return [`${where(l)}: ${(e as Error).message}`] }
  return []
}

/**
 * The fields the release does not know, and the values of a wrong type, in every object: one
 * TypeScript program declaring each object as the kubernetes-models interface of its kind.
 */
export function strictFieldErrors (objects: readonly Loaded[]): string[] {
  const imports = objects.map((l, i) => {
    const file = fileURLToPath(import.meta.resolve(`kubernetes-models/${String(l.obj.apiVersion)}/${String(l.obj.kind)}`))
    return `import type { I${String(l.obj.kind)} as T${i} } from ${JSON.stringify(file)}`
  })
  // One line per object, so a diagnostic's line names the object.
  const source = [...imports, ...objects.map((l, i) => `export const o${i}: T${i} = ${JSON.stringify(l.obj)}`)].join('\n')
  const name = join(PACKAGE_ROOT, 'test', 'k8s-strict-fields.ts')
  const options: ts.CompilerOptions = {
    strict: true, noEmit: true, skipLibCheck: true, types: [],
    target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
  }
  const host = ts.createCompilerHost(options)
  const { getSourceFile, fileExists, readFile } = host
  host.getSourceFile = (f, v, ...rest) => f === name ? ts.createSourceFile(f, source, v) : getSourceFile.call(host, f, v, ...rest)
  host.fileExists = (f) => f === name || fileExists.call(host, f)
  host.readFile = (f) => f === name ? source : readFile.call(host, f)
  const program = ts.createProgram([name], options, host)
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, ' ')
    if (d.file?.fileName !== name || d.start === undefined) return `${d.file?.fileName ?? ''}: ${text}`
    const line = d.file.getLineAndCharacterOfPosition(d.start).line - imports.length
    return `${line >= 0 ? where(objects[line]!) : 'import'}: ${text}`
  })
}

/** The pod template of a workload (Deployment, DaemonSet, StatefulSet, Job, CronJob, Pod), or undefined. */
export function podSpecOf (o: Obj): Obj | undefined {
  switch (o.kind) {
    case 'Pod': return o.spec
    case 'CronJob': return o.spec?.jobTemplate?.spec?.template?.spec
    case 'Deployment': case 'DaemonSet': case 'StatefulSet': case 'ReplicaSet': case 'Job': return o.spec?.template?.spec
    default: return undefined
  }
}
export const containersOf = (pod: Obj): Obj[] => [...(pod.initContainers ?? []), ...(pod.containers ?? [])] as Obj[]

/** Every (Secret, key) a pod uses: secret and projected volumes, env and envFrom; key '*' = every key. */
export function secretRefs (pod: Obj): Array<{ name: string, key: string }> {
  const out: Array<{ name: string, key: string }> = []
  const add = (name: string, items: Obj[] | undefined): void => {
    if (items === undefined) out.push({ name, key: '*' })
    else for (const i of items) out.push({ name, key: i.key as string })
  }
  for (const v of (pod.volumes ?? []) as Obj[]) {
    if (v.secret !== undefined) add(v.secret.secretName as string, v.secret.items as Obj[] | undefined)
    for (const s of (v.projected?.sources ?? []) as Obj[]) if (s.secret !== undefined) add(s.secret.name as string, s.secret.items as Obj[] | undefined)
  }
  for (const c of containersOf(pod)) {
    for (const e of (c.env ?? []) as Obj[]) if (e.valueFrom?.secretKeyRef !== undefined) out.push({ name: e.valueFrom.secretKeyRef.name as string, key: e.valueFrom.secretKeyRef.key as string })
    for (const e of (c.envFrom ?? []) as Obj[]) if (e.secretRef !== undefined) out.push({ name: e.secretRef.name as string, key: '*' })
  }
  return out
}

/** Kubernetes' expansion of $(VAR) in command and args: a defined variable's value; $$ is a $. */
export function expandVars (s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m: string, v?: string) => m === '$$' ? '$' : v !== undefined && v in env ? env[v]! : m)
}

/** What a domain image says of itself (docker/<kind>.Dockerfile). */
export interface ImageFacts { entrypoint: string[], cmd: string[], user: string, port: number, health: string[] }
export function imageFacts (kind: string): ImageFacts {
  const text = readFileSync(packageFile('docker', `${kind}.Dockerfile`), 'utf8')
  const line = (k: string): string => new RegExp(`^${k}\\s+(.*)$`, 'm').exec(text)?.[1] ?? ''
  return {
    entrypoint: JSON.parse(line('ENTRYPOINT')) as string[],
    cmd: JSON.parse(line('CMD')) as string[],
    user: line('USER'),
    port: Number(line('EXPOSE')),
    health: JSON.parse(/CMD (\[.*\])/.exec(line('HEALTHCHECK'))![1]!) as string[],
  }
}

/** The Secrets docs/deploy.md documents: its table rows "| `name` | `key`, `key` | …". */
export function documentedSecrets (): Map<string, string[]> {
  const doc = readFileSync(packageFile('docs', 'deploy.md'), 'utf8')
  const out = new Map<string, string[]>()
  for (const m of doc.matchAll(/^\| `(metaos-[a-z0-9-]+)` \| ((?:`[^`]+`(?:, )?)+) \|/gm)) out.set(m[1]!, [...m[2]!.matchAll(/`([^`]+)`/g)].map((k) => k[1]!))
  return out
}
