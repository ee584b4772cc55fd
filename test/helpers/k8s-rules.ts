// Test helper: the project's own rules for the Kubernetes manifests (docs/deploy.md), beyond the
// schemas: each returns the problems it finds in a set of objects, so that a test can show it both
// passes on docker/k8s/ and refuses a manifest that breaks it.
import { existsSync } from 'node:fs'
import { packageFile } from '../../wsdl/package-root.js'
import { containersOf, podSpecOf, secretRefs, where, type Loaded, type Obj } from './k8s.js'

const workloads = (objects: readonly Loaded[]): Array<{ l: Loaded, pod: Obj }> =>
  objects.flatMap((l) => { const pod = podSpecOf(l.obj); return pod === undefined ? [] : [{ l, pod }] })

/** Every container runs one of this repository's images: metaos/<kind>:<tag> built from docker/<kind>.Dockerfile. */
export function imageProblems (objects: readonly Loaded[]): string[] {
  return workloads(objects).flatMap(({ l, pod }) => containersOf(pod).flatMap((c) => {
    const m = /^metaos\/([a-z0-9-]+):[\w.-]+$/.exec(String(c.image))
    if (m === null) return [`${where(l)}: container ${String(c.name)} runs ${String(c.image)}, not a metaos/* image`]
    return existsSync(packageFile('docker', `${m[1]!}.Dockerfile`)) ? [] : [`${where(l)}: no docker/${m[1]!}.Dockerfile builds ${String(c.image)}`]
  }))
}

/** Nothing of the node: no host network, PID or IPC namespace, no hostPath volume, no hostPort, nothing privileged. */
export function hostProblems (objects: readonly Loaded[]): string[] {
  return workloads(objects).flatMap(({ l, pod }) => [
    ...(['hostNetwork', 'hostPID', 'hostIPC'] as const).filter((k) => pod[k] === true).map((k) => `${where(l)}: ${k}`),
    ...((pod.volumes ?? []) as Obj[]).filter((v) => v.hostPath !== undefined).map((v) => `${where(l)}: hostPath volume ${String(v.name)}`),
    ...containersOf(pod).flatMap((c) => [
      ...((c.ports ?? []) as Obj[]).filter((p) => p.hostPort !== undefined).map((p) => `${where(l)}: container ${String(c.name)} hostPort ${String(p.hostPort)}`),
      ...(c.securityContext?.privileged === true ? [`${where(l)}: container ${String(c.name)} privileged`] : []),
    ]),
  ])
}

/** The "restricted" Pod Security Standard's rules, and no service account token nobody uses. */
export function podSecurityProblems (objects: readonly Loaded[]): string[] {
  return workloads(objects).flatMap(({ l, pod }) => {
    const s = (pod.securityContext ?? {}) as Obj
    const out: string[] = []
    if (s.runAsNonRoot !== true) out.push(`${where(l)}: runAsNonRoot is not true`)
    if (typeof s.runAsUser !== 'number' || s.runAsUser === 0) out.push(`${where(l)}: runAsUser is not a non-zero uid`)
    if (!['RuntimeDefault', 'Localhost'].includes(s.seccompProfile?.type as string)) out.push(`${where(l)}: no RuntimeDefault seccomp profile`)
    if (pod.automountServiceAccountToken !== false) out.push(`${where(l)}: a service account token is mounted`)
    for (const c of containersOf(pod)) {
      const cs = (c.securityContext ?? {}) as Obj
      if (cs.allowPrivilegeEscalation !== false) out.push(`${where(l)}: container ${String(c.name)} may escalate privileges`)
      if (!((cs.capabilities?.drop ?? []) as string[]).includes('ALL')) out.push(`${where(l)}: container ${String(c.name)} keeps capabilities (drop ALL)`)
      if (cs.readOnlyRootFilesystem !== true) out.push(`${where(l)}: container ${String(c.name)} has a writable root filesystem`)
      if (cs.runAsUser === 0 || cs.runAsNonRoot === false) out.push(`${where(l)}: container ${String(c.name)} runs as root`)
    }
    return out
  })
}

/** Every container that serves (not the init containers) has a readiness and a liveness probe. */
export function probeProblems (objects: readonly Loaded[]): string[] {
  return workloads(objects).flatMap(({ l, pod }) => ((pod.containers ?? []) as Obj[]).flatMap((c) =>
    (['readinessProbe', 'livenessProbe'] as const).filter((p) => c[p] === undefined).map((p) => `${where(l)}: container ${String(c.name)} has no ${p}`)))
}

/** Every Secret and key a pod uses is one docs/deploy.md documents (and so one make-secrets.sh makes). */
export function secretProblems (objects: readonly Loaded[], documented: ReadonlyMap<string, readonly string[]>): string[] {
  return workloads(objects).flatMap(({ l, pod }) => secretRefs(pod).flatMap(({ name, key }) => {
    const keys = documented.get(name)
    if (keys === undefined) return [`${where(l)}: Secret ${name} is not documented in docs/deploy.md`]
    return key === '*' || keys.includes(key) ? [] : [`${where(l)}: Secret ${name} has no documented key ${key}`]
  }))
}

/**
 * A claim that several pods mount at once — a DaemonSet's (one pod per node) or a workload's of more
 * than one replica — exists among the objects and is ReadWriteMany.
 */
export function sharedClaimProblems (objects: readonly Loaded[]): string[] {
  const claims = new Map(objects.filter((l) => l.obj.kind === 'PersistentVolumeClaim').map((l) => [l.obj.metadata.name as string, l.obj]))
  return workloads(objects).flatMap(({ l, pod }) => {
    const many = l.obj.kind === 'DaemonSet' || (typeof l.obj.spec?.replicas === 'number' ? l.obj.spec.replicas > 1 : l.obj.kind !== 'Pod' && l.obj.kind !== 'Job')
    if (!many) return []
    return ((pod.volumes ?? []) as Obj[]).filter((v) => v.persistentVolumeClaim !== undefined).flatMap((v) => {
      const name = v.persistentVolumeClaim.claimName as string
      const claim = claims.get(name)
      if (claim === undefined) return [`${where(l)}: claim ${name} is not among the manifests`]
      return ((claim.spec?.accessModes ?? []) as string[]).includes('ReadWriteMany') ? [] : [`${where(l)}: claim ${name} is mounted by several pods but not ReadWriteMany`]
    })
  })
}

/** Every namespaced object is in a Namespace of the manifests, and that namespace enforces "restricted". */
export function namespaceProblems (objects: readonly Loaded[]): string[] {
  const namespaces = new Map(objects.filter((l) => l.obj.kind === 'Namespace').map((l) => [l.obj.metadata.name as string, l.obj]))
  const out: string[] = []
  for (const [name, ns] of namespaces) if (ns.metadata.labels?.['pod-security.kubernetes.io/enforce'] !== 'restricted') out.push(`Namespace ${name}: does not enforce the restricted Pod Security Standard`)
  for (const l of objects) {
    if (l.obj.kind === 'Namespace') continue
    const ns = l.obj.metadata?.namespace as string | undefined
    if (ns === undefined || !namespaces.has(ns)) out.push(`${where(l)}: namespace ${String(ns)} is not among the manifests`)
  }
  return out
}

export const allProblems = (objects: readonly Loaded[], documented: ReadonlyMap<string, readonly string[]>): string[] => [
  ...imageProblems(objects), ...hostProblems(objects), ...podSecurityProblems(objects), ...probeProblems(objects),
  ...secretProblems(objects, documented), ...sharedClaimProblems(objects), ...namespaceProblems(objects),
]
