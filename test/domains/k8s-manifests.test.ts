// docker/k8s/ checked offline as far as no cluster allows (DESIGN.md §9, docs/deploy.md): every
// document of every manifest parses as kubectl reads it (YAML 1.1); its apiVersion is a stable one
// and its kind a class of kubernetes-models, whose validate() checks it against the OpenAPI schema
// of the Kubernetes release shipped in the package; no field is unknown to that release (the
// package's TypeScript interfaces, as `kubectl apply --validate=strict`); and the project's rules
// hold (test/helpers/k8s-rules.ts): metaos/* images only, nothing of the host, the "restricted" Pod
// Security Standard, probes, documented Secrets, a ReadWriteMany claim for the DaemonSet. The
// manifests agree with the images (docker/*.Dockerfile) and with the swarm stack: https with
// client certificates, names others can reach, the discovery proxy. Broken manifests written here
// are refused by each check, which proves that the checks run.
import t from 'tap'
import { loadKubernetesModels, loadManifests, parseManifests, schemaErrors, strictFieldErrors, manifestFiles, podSpecOf, imageFacts, documentedSecrets, where, type Loaded, type Models, type Obj } from '../helpers/k8s.js'
import { allProblems, hostProblems, imageProblems, podSecurityProblems, probeProblems, secretProblems, sharedClaimProblems } from '../helpers/k8s-rules.js'
import { partMissing } from '../helpers/require-part.js'

const models = await loadKubernetesModels()
if (models instanceof Error) t.plan(0, partMissing('kubernetes-models', `cannot import it (${models.message})`, 'npm install (kubernetes-models and yaml are devDependencies)'))
else run(models)

function run (models: Models): void {
  const objects = loadManifests()
  const named = (kind: string, name: string): Obj => objects.find((l) => l.obj.kind === kind && l.obj.metadata.name === name)!.obj
  const documented = documentedSecrets()

  t.test('every document of docker/k8s parses, the namespace first', async (t) => {
    const files = manifestFiles()
    t.same(files, ['00-namespace.yaml', 'discovery-proxy.yaml', 'network.yaml', 'shared-volume.yaml', 'storage.yaml'], 'the manifest files, in the order `kubectl apply -f docker/k8s/` applies them')
    t.same(objects.filter((l) => l.file === files[0]).map((l) => l.obj.kind), ['Namespace'], 'the first file makes the namespace, before the objects in it')
    t.same(objects.map((l) => `${String(l.obj.kind)}/${String(l.obj.metadata.name)}`).sort(), [
      'DaemonSet/metaos-storage', 'Deployment/metaos-discovery-proxy', 'Deployment/metaos-network',
      'Namespace/metaos', 'PersistentVolumeClaim/metaos-shared', 'Service/metaos-discovery',
    ], `${objects.length} objects: storage domains as a DaemonSet, the network domain, the discovery proxy and its Service, the shared claim`)
  })

  t.test(`every object validates against the Kubernetes schemas of kubernetes-models ${models.version}`, async (t) => {
    for (const l of objects) t.same(await schemaErrors(models, l), [], `${where(l)}: ${String(l.obj.apiVersion)} ${String(l.obj.kind)} valid`)
    // The release the package's schemas are: PodSpec.schedulingGroup names a PodGroup
    // (scheduling.k8s.io/v1alpha2, Kubernetes 1.36); 1.35's PodSpec.workloadRef is gone.
    const pod = (spec: Obj): Loaded => ({ file: 'release', index: 0, obj: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'metaos/storage:dev' }], ...spec } } })
    t.same(strictFieldErrors([pod({ schedulingGroup: { podGroupName: 'g' } })]), [], 'the schemas know PodSpec.schedulingGroup (Kubernetes 1.36)')
    t.match(strictFieldErrors([pod({ workloadRef: { name: 'w', podGroup: 'g' } })]).join('\n'), /'?"?workloadRef"?'? does not exist/, 'and not 1.35\'s PodSpec.workloadRef')
  })

  t.test('no field the release does not know, no value of a wrong type (strict)', async (t) => {
    t.same(strictFieldErrors(objects), [], `${objects.length} objects type-check against their kind's interface`)
  })

  t.test('the project\'s rules', async (t) => {
    t.same(imageProblems(objects), [], 'every container runs a metaos/* image of docker/')
    t.same(hostProblems(objects), [], 'no hostNetwork, hostPID, hostIPC, hostPath, hostPort, privileged')
    t.same(podSecurityProblems(objects), [], 'runAsNonRoot, non-zero uid, RuntimeDefault seccomp, no escalation, ALL capabilities dropped, read-only root, no service account token')
    t.same(probeProblems(objects), [], 'every serving container has readiness and liveness probes')
    t.same([...documented.keys()].sort(), ['metaos-ca', 'metaos-client-tls', 'metaos-network-tls', 'metaos-policy', 'metaos-storage-tls'], 'docs/deploy.md documents the Secrets')
    t.same(secretProblems(objects, documented), [], 'every Secret and key the pods use is one of them')
    t.same(sharedClaimProblems(objects), [], 'the claim the DaemonSet mounts is among the manifests and ReadWriteMany')
    t.same(allProblems(objects, documented), [], 'and the namespace enforces the restricted Pod Security Standard')
    const storage = podSpecOf(named('DaemonSet', 'metaos-storage'))!
    const data = (storage.containers[0].volumeMounts as Obj[]).find((m) => m.mountPath === '/data')
    const claim = (storage.volumes as Obj[]).find((v) => v.name === data?.name)?.persistentVolumeClaim?.claimName as string
    t.same(named('PersistentVolumeClaim', claim).spec.accessModes, ['ReadWriteMany'], `the storage DaemonSet serves /data from ${claim}, ReadWriteMany`)
  })

  t.test('the domains, as their images and the swarm stack run them', async (t) => {
    for (const [kind, name] of [['DaemonSet', 'metaos-storage'], ['Deployment', 'metaos-network']] as const) {
      const w = named(kind, name)
      const service = name.replace('metaos-', '')
      const img = imageFacts(service)
      const pod = podSpecOf(w)!
      const c = (pod.containers as Obj[])[0]!
      const args = c.args as string[]
      const after = (flag: string): string | undefined => args[args.indexOf(flag) + 1]
      t.same(w.spec.selector.matchLabels, Object.fromEntries(Object.keys(w.spec.selector.matchLabels as Obj).map((k) => [k, w.spec.template.metadata.labels[k]])), `${name}: the selector matches its pods`)
      t.equal(c.image, `metaos/${service}:dev`, `${name}: image metaos/${service}:dev`)
      t.equal(`${String(pod.securityContext.runAsUser)}:${String(pod.securityContext.runAsGroup)}`, img.user, `${name}: the image's user (USER ${img.user})`)
      t.ok(pod.terminationGracePeriodSeconds >= 15, `${name}: 15 s to say Bye and drain`)
      t.same([c.command[0], ...c.command.slice(2)], img.entrypoint, `${name}: the image's ENTRYPOINT, \`metaos ${service}\``)
      t.match(c.command[1], /^--import=data:text\/javascript,/, `${name}: with a --import that rewrites {pod-ip-dashed}`)
      t.ok((c.env as Obj[]).some((e) => e.name === 'POD_IP' && e.valueFrom?.fieldRef?.fieldPath === 'status.podIP'), `${name}: POD_IP from the downward API`)
      const listen = args.filter((_, i) => args[i - 1] === '--listen')
      t.same(listen, ['https://{pod-ip-dashed}.metaos.pod.cluster.local:8443', `net.uds:/run/metaos/${service}.sock`, `unix:/run/metaos/${service}.http.sock`], `${name}: https on its pod record (a name others reach), the bus socket (net.uds) and HTTP beside it`)
      t.notOk(args.includes('--allow-insecure'), `${name}: never --allow-insecure`)
      t.same(['--announce', '--interface'].map((f) => args.includes(f)), [true, true], `${name}: announced`)
      t.equal(after('--interface'), 'eth0', `${name}: on the pod's eth0`)
      t.equal(after('--hosting'), img.cmd[img.cmd.indexOf('--hosting') + 1], `${name}: --hosting as the image's CMD`)
      t.same((c.ports as Obj[]).filter((p) => p.protocol === 'TCP').map((p) => [p.name, p.containerPort]), [['https', 8443]], `${name}: serves https on 8443`)
      t.same(c.readinessProbe.exec.command, img.health, `${name}: readiness runs the image's HEALTHCHECK (over the bus socket)`)
      t.same(c.livenessProbe.exec.command, img.health, `${name}: liveness too`)
      // The files of --tls-cert, --tls-key, --client-ca, --crl: keys of a Secret mounted read-only where the flag says.
      const mounts = new Map((c.volumeMounts as Obj[]).map((m) => [m.mountPath as string, m]))
      const volumes = new Map((pod.volumes as Obj[]).map((v) => [v.name as string, v]))
      const expected: Record<string, string> = { '--tls-cert': `metaos-${service}-tls/tls.crt`, '--tls-key': `metaos-${service}-tls/tls.key`, '--client-ca': 'metaos-ca/ca.crt', '--crl': 'metaos-ca/crl.pem' }
      for (const [flag, secret] of Object.entries(expected)) {
        const file = after(flag)!
        const mount = mounts.get(file.slice(0, file.lastIndexOf('/')))
        const sources = (volumes.get(mount?.name as string)?.projected?.sources ?? []) as Obj[]
        const from = sources.flatMap((s) => ((s.secret?.items ?? []) as Obj[]).filter((i) => i.path === file.slice(file.lastIndexOf('/') + 1)).map((i) => `${String(s.secret.name)}/${String(i.key)}`))
        t.same(from, [secret], `${name}: ${flag} ${file} is the Secret key ${secret}`)
        t.equal(mount?.readOnly, true, `${name}: mounted read-only`)
      }
      // --auth: the init container copies the Secret's auth.json to a memory emptyDir, mode 0600 (the domain refuses a file others may read).
      const auth = after('--auth')!
      const init = (pod.initContainers as Obj[]).find((i) => (i.command as string[]).at(-1) === auth)
      t.ok(init !== undefined, `${name}: an init container writes ${auth}`)
      const emptyDir = volumes.get(mounts.get(auth.slice(0, auth.lastIndexOf('/')))?.name as string)?.emptyDir
      t.same(emptyDir, { medium: 'Memory', sizeLimit: '1Mi' }, `${name}: into a memory emptyDir`)
      t.equal(init?.image, c.image, `${name}: the init container runs the domain's image`)
    }
    const storageArgs = named('DaemonSet', 'metaos-storage').spec.template.spec.containers[0].args as string[]
    t.equal(storageArgs[storageArgs.indexOf('--root') + 1], '/data', 'storage: --root /data, as the image')
    t.equal(storageArgs[storageArgs.indexOf('--volume') + 1], 'shared', 'storage: volume "shared", as on the swarm')
    t.same(named('Deployment', 'metaos-network').spec.template.spec.affinity?.podAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.[0]?.labelSelector?.matchLabels, { 'app.kubernetes.io/name': 'metaos-discovery-proxy' }, 'network: on the discovery proxy\'s node, where its Hello is heard')
  })

  t.test('the discovery proxy and its Service', async (t) => {
    const proxy = named('Deployment', 'metaos-discovery-proxy')
    const c = proxy.spec.template.spec.containers[0] as Obj
    const img = imageFacts('network')
    t.same(c.command, [...img.entrypoint.slice(0, -1), 'discovery-proxy'], 'the network image\'s node and metaos.js, running discovery-proxy')
    t.equal(c.args[c.args.indexOf('--listen') + 1], 'http://$(POD_IP):8080', 'listening on its pod address (plain HTTP: its command takes http only, as on the swarm)')
    t.equal(proxy.spec.replicas, 1, 'one replica: proxies do not share their registries')
    t.match(c.readinessProbe.exec.command.join(' '), /fetch\('http:\/\/'\+process\.env\.POD_IP\+':8080\/discovery'\).*405/, 'probed by a GET of its endpoint (405 when it serves), as the swarm stack')
    const service = named('Service', 'metaos-discovery')
    t.ok(Object.entries(service.spec.selector as Obj).every(([k, v]) => proxy.spec.template.metadata.labels[k] === v), 'the Service selects the proxy\'s pods')
    t.equal((c.ports as Obj[]).find((p) => p.name === service.spec.ports[0].targetPort)?.containerPort, 8080, 'and forwards to its port')
  })

  t.test('refused: broken manifests (the checks run)', async (t) => {
    const [broken] = parseManifests(`
apiVersion: apps/v1
kind: DaemonSet
metadata: { name: broken, namespace: metaos }
spec:
  template:
    spec:
      containers:
        - name: storage
          image: metaos/storage:dev
          ports: [{ containerPort: "8443", protocol: TCPX }]
`, 'broken.yaml')
    const errors = (await schemaErrors(models, broken!)).join('\n')
    t.match(errors, /must have required property selector/, 'validate(): the DaemonSet has no selector')
    t.match(errors, /containerPort must be integer/, 'validate(): a port is a string')
    t.match(errors, /protocol must be equal to one of the allowed values/, 'validate(): TCPX is no protocol')
    const typo = structuredClone(objects.find((l) => l.obj.kind === 'DaemonSet')!)
    const c = typo.obj.spec.template.spec.containers[0] as Obj
    c.readinesProbe = c.readinessProbe
    delete c.readinessProbe
    t.same(await schemaErrors(models, typo), [], 'a misspelt field passes validate() (the schemas allow unknown fields)')
    t.match(strictFieldErrors([typo]).join('\n'), /readinesProbe.*does not exist in type/, 'and is refused by the strict check')
    t.match((await schemaErrors(models, { ...typo, obj: { ...typo.obj, apiVersion: 'extensions/v1beta1' } })).join('\n'), /not a stable API version/, 'a beta apiVersion is refused')
    t.match((await schemaErrors(models, { ...typo, obj: { ...typo.obj, kind: 'DaemonSets' } })).join('\n'), /has no DaemonSets in apps\/v1/, 'an unknown kind is refused')

    const bad = structuredClone(objects)
    const pod = bad.find((l) => l.obj.kind === 'DaemonSet')!.obj.spec.template.spec as Obj
    Object.assign(pod, { hostNetwork: true, automountServiceAccountToken: true })
    pod.securityContext.runAsNonRoot = false
    pod.containers[0].image = 'busybox:1.36'
    pod.containers[0].securityContext = { ...pod.containers[0].securityContext, allowPrivilegeEscalation: true }
    delete pod.containers[0].livenessProbe
    pod.volumes.find((v: Obj) => v.name === 'policy-secret').secret.secretName = 'metaos-undocumented'
    bad.find((l) => l.obj.kind === 'PersistentVolumeClaim')!.obj.spec.accessModes = ['ReadWriteOnce']
    const problems = allProblems(bad, documented).join('\n')
    for (const [what, re] of [
      ['an image not of docker/', /runs busybox:1\.36, not a metaos\/\* image/], ['hostNetwork', /: hostNetwork/],
      ['runAsNonRoot false', /runAsNonRoot is not true/], ['a service account token', /service account token is mounted/],
      ['privilege escalation', /may escalate privileges/], ['no liveness probe', /has no livenessProbe/],
      ['an undocumented Secret', /Secret metaos-undocumented is not documented/], ['a ReadWriteOnce claim', /mounted by several pods but not ReadWriteMany/],
    ] as const) t.match(problems, re, `refused: ${what}`)
  })
}
