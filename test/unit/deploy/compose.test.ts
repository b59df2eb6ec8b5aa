// docker-compose.yml and the Dockerfile cannot be run here (no Docker engine), so their
// structure is checked instead: the services exist, every ZooKeeper node lists the same
// 3-server ensemble with ids that match, ports agree between flags, mappings and health
// checks, every proxy and replica points at the ensemble, and the image runs package.json's bin.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'

const root = new URL('../../../', import.meta.url)
const read = (file: string): string => readFileSync(new URL(file, root), 'utf8')

interface Service {
  image?: string
  build?: unknown
  hostname?: string
  command?: string[]
  environment?: Record<string, string | number>
  ports?: string[]
  networks?: string[]
  healthcheck?: { test?: string[] }
  profiles?: string[]
}
interface Compose { services: Record<string, Service>, networks?: Record<string, unknown> }

// `merge: true`: the file shares settings through YAML merge keys (<<: *anchor), as Compose does.
const compose = parse(read('docker-compose.yml'), { merge: true }) as Compose
const services = compose.services

function svc (name: string): Service {
  const s = services[name]
  if (s === undefined) throw new Error(`docker-compose.yml has no service ${name}`)
  return s
}

/** The value of `--flag` in a command list, or undefined. */
function flag (s: Service, name: string): string | undefined {
  const cmd = s.command ?? []
  const i = cmd.indexOf(name)
  return i === -1 ? undefined : cmd[i + 1]
}

/** The container port published by a "host:container" or "ip:host:container" mapping. */
function mappings (s: Service): Array<{ host: number, container: number }> {
  return (s.ports ?? []).map((p) => {
    const parts = p.split(':')
    return { host: Number(parts.at(-2)), container: Number(parts.at(-1)) }
  })
}

const zkNodes = Object.keys(services).filter((n) => svc(n).image?.startsWith('zookeeper:') === true)
const byRole = (role: string): string[] => Object.keys(services).filter((n) => svc(n).command?.[0] === role)

interface EnsembleServer { id: number, host: string, peer: number, election: number, client: number }

function ensembleOf (s: Service): EnsembleServer[] {
  const text = String(s.environment?.['ZOO_SERVERS'] ?? '')
  return text.split(/\s+/).filter(Boolean).map((entry) => {
    const m = /^server\.(\d+)=([^:]+):(\d+):(\d+)(?::\w+)?;(?:[^:;]+:)?(\d+)$/.exec(entry)
    if (m === null) throw new Error(`unparseable ZOO_SERVERS entry ${entry}`)
    return { id: Number(m[1]), host: m[2]!, peer: Number(m[3]), election: Number(m[4]), client: Number(m[5]) }
  })
}

describe('docker-compose.yml', () => {
  it('has a 3-node ZooKeeper ensemble from the official 3.8 image, two proxies and three replicas', () => {
    expect(zkNodes.sort()).toEqual(['zoo1', 'zoo2', 'zoo3'])
    for (const n of zkNodes) expect(svc(n).image).toBe('zookeeper:3.8')
    expect(byRole('proxy').sort()).toEqual(['proxy1', 'proxy2'])
    expect(byRole('replica').sort()).toEqual(['replica1', 'replica2', 'replica3'])
  })

  it('gives every ZooKeeper node the same ensemble, in which its own id names itself', () => {
    const ensembles = zkNodes.map((n) => ensembleOf(svc(n)))
    for (const e of ensembles) expect(e).toEqual(ensembles[0])
    const ensemble = ensembles[0] ?? []
    expect(ensemble.map((s) => s.id)).toEqual([1, 2, 3])
    const ids = zkNodes.map((n) => Number(svc(n).environment?.['ZOO_MY_ID']))
    expect(ids.sort()).toEqual([1, 2, 3])
    for (const n of zkNodes) {
      const id = Number(svc(n).environment?.['ZOO_MY_ID'])
      const self = ensemble.find((s) => s.id === id)
      // server.N must resolve to the container whose ZOO_MY_ID is N, or the quorum never forms.
      expect([n, svc(n).hostname]).toContain(self?.host)
    }
    // One port scheme across the ensemble: peers and clients reach every node alike.
    expect(new Set(ensemble.map((s) => `${s.peer}/${s.election}/${s.client}`)).size).toBe(1)
  })

  it('points every proxy and replica at exactly the ensemble\'s client ports', () => {
    const ensemble = ensembleOf(svc('zoo1'))
    const expected = ensemble.map((s) => `${s.host}:${s.client}`).sort()
    for (const n of [...byRole('proxy'), ...byRole('replica'), 'status']) {
      const s = svc(n)
      const connect = flag(s, '--zk') ?? s.environment?.['ZK_CONNECT']
      expect(connect, `${n} has --zk or ZK_CONNECT`).toBeTypeOf('string')
      const hosts = String(connect).split('/')[0]!.split(',').sort()
      expect(hosts, n).toEqual(expected)
    }
  })

  it('publishes each proxy\'s --listen and --admin ports and health-checks the admin port', () => {
    for (const n of byRole('proxy')) {
      const s = svc(n)
      const listen = Number(flag(s, '--listen')?.split(':').at(-1))
      const admin = Number(flag(s, '--admin')?.split(':').at(-1))
      const published = mappings(s).map((m) => m.container).sort()
      expect(published, n).toEqual([listen, admin].sort())
      expect(s.healthcheck?.test?.join(' '), n).toContain(`127.0.0.1:${admin}/healthz`)
      // An admin listener bound to loopback inside the container would be unreachable.
      expect(flag(s, '--admin')?.startsWith('0.0.0.0:'), n).toBe(true)
    }
  })

  it('health-checks each replica on its --port and gives it a distinct --name', () => {
    const names = byRole('replica').map((n) => flag(svc(n), '--name'))
    expect(new Set(names).size).toBe(3)
    for (const n of byRole('replica')) {
      const s = svc(n)
      expect(s.healthcheck?.test?.join(' '), n).toContain(`127.0.0.1:${flag(s, '--port')}/`)
    }
  })

  it('uses no host port twice, and runs everything on the declared network with a health check', () => {
    const hostPorts = Object.values(services).flatMap((s) => mappings(s).map((m) => m.host))
    expect(new Set(hostPorts).size).toBe(hostPorts.length)
    expect(Object.keys(compose.networks ?? {})).toEqual(['zkproxy'])
    for (const [n, s] of Object.entries(services)) {
      expect(s.networks, n).toEqual(['zkproxy'])
      if (s.profiles === undefined) expect(s.healthcheck?.test?.[0], `${n} health check`).toBe('CMD')
    }
  })

  it('builds every zkproxy service from the Dockerfile in this folder', () => {
    for (const n of [...byRole('proxy'), ...byRole('replica')]) expect(svc(n).build, n).toBe('.')
  })
})

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile')
  const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string>, engines: { node: string } }

  it('runs the file package.json names as the zkproxy bin', () => {
    const m = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile)
    expect(m).not.toBeNull()
    const entrypoint = JSON.parse(m![1]!) as string[]
    expect(entrypoint).toEqual(['node', pkg.bin['zkproxy']])
  })

  it('builds on node:20-bookworm with a compiler (the native client once) and ships a slim runtime with production dependencies', () => {
    const stages = [...dockerfile.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)].map((m) => m[1])
    expect(stages[0]).toBe('node:20-bookworm')
    expect(stages.at(-1)).toBe('node:20-bookworm-slim')
    expect(dockerfile).toMatch(/apt-get install[^\n]*python3 make g\+\+/)
    // The native client is compiled by the one `npm ci`; dev dependencies are pruned after the build.
    expect([...dockerfile.matchAll(/npm ci\b/g)]).toHaveLength(1)
    expect(dockerfile).toMatch(/npm run build[^\n]*\n?[^\n]*npm prune --omit=dev/)
    expect(dockerfile).toMatch(/COPY --from=build \/app\/node_modules/)
  })

  it('keeps node_modules and dist out of the build context', () => {
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim())
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.git']))
  })
})
