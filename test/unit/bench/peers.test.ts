// The peers' configurations, rendered from the origins' ports: each listens on loopback only,
// balances over both origins with least-connections (or caches), keeps every file in its own
// directory, and the launch arguments point at the files the launch writes.
import { describe, expect, it } from 'vitest'
import { caddyfile, haproxyConf, nginxConf, PEERS, skipLine, varnishVcl } from '../../../bench/peers.js'

const site = { dir: '/tmp/zkproxy-bench-x/peer', port: 41000, upstreams: [41001, 41002] }

/** Absolute paths in a config (not the `//` of a URL). */
function paths (text: string): string[] {
  return [...text.matchAll(/(?<![:\w/])\/[\w.\-/]+/g)].map(m => m[0])
}

function balanced (text: string): boolean {
  let depth = 0
  for (const ch of text) {
    depth += ch === '{' ? 1 : ch === '}' ? -1 : 0
    if (depth < 0) return false
  }
  return depth === 0
}

describe('nginxConf', () => {
  it('holds nginx to one worker, least_conn over both origins with keepalive, on loopback', () => {
    const conf = nginxConf({ ...site, workers: 1, cache: false })
    expect(conf).toMatch(/^worker_processes 1;$/m)
    expect(conf).toContain('upstream origins { least_conn; server 127.0.0.1:41001; server 127.0.0.1:41002; keepalive 64; }')
    expect(conf).toContain('listen 127.0.0.1:41000;')
    expect([...conf.matchAll(/listen ([^;]+);/g)].map(m => m[1])).toEqual(['127.0.0.1:41000'])
    expect(conf).not.toContain('proxy_cache')
    expect(balanced(conf)).toBe(true)
  })

  it('uses one worker per core with workers auto', () => {
    expect(nginxConf({ ...site, workers: 'auto', cache: false })).toMatch(/^worker_processes auto;$/m)
  })

  it('caches in its directory and says HIT or MISS with cache on', () => {
    const conf = nginxConf({ ...site, workers: 1, cache: true })
    expect(conf).toContain(`proxy_cache_path ${site.dir}/cache `)
    expect(conf).toContain('proxy_cache bench;')
    expect(conf).toContain('add_header X-Cache $upstream_cache_status;')
    expect(balanced(conf)).toBe(true)
  })

  it('keeps every file (pid, logs, temp and cache paths) in its directory', () => {
    const found = paths(nginxConf({ ...site, workers: 1, cache: true }))
    expect(found.length).toBeGreaterThanOrEqual(8)
    expect(found.filter(p => !p.startsWith(`${site.dir}/`))).toEqual([])
  })
})

describe('haproxyConf', () => {
  const conf = haproxyConf({ ...site, threads: 1 })

  it('runs one thread, leastconn over both origins, bound to loopback', () => {
    expect(conf).toMatch(/^ {2}nbthread 1$/m)
    expect(conf).toMatch(/^ {2}balance leastconn$/m)
    expect(conf).toMatch(/^ {2}bind 127\.0\.0\.1:41000$/m)
    expect([...conf.matchAll(/^ {2}server (\S+) (\S+)$/gm)].map(m => [m[1], m[2]])).toEqual([
      ['origin-0', '127.0.0.1:41001'], ['origin-1', '127.0.0.1:41002']
    ])
  })

  it('sets every timeout HAProxy warns about', () => {
    for (const t of ['connect', 'client', 'server']) expect(conf).toMatch(new RegExp(`^ {2}timeout ${t} \\d+s$`, 'm'))
  })
})

describe('caddyfile', () => {
  const conf = caddyfile(site)

  it('serves plain HTTP on loopback with no admin listener', () => {
    expect(conf).toContain('http://127.0.0.1:41000 {')
    expect(conf).toMatch(/^\tbind 127\.0\.0\.1$/m)
    expect(conf).toMatch(/^\tadmin off$/m)
    expect(conf).toMatch(/^\tauto_https off$/m)
    expect(balanced(conf)).toBe(true)
  })

  it('reverse-proxies to both origins with least_conn and keeps its storage in its directory', () => {
    expect(conf).toContain('reverse_proxy 127.0.0.1:41001 127.0.0.1:41002 {')
    expect(conf).toMatch(/^\t\tlb_policy least_conn$/m)
    expect(paths(conf).filter(p => !p.startsWith(`${site.dir}/`))).toEqual([])
  })
})

describe('varnishVcl', () => {
  const vcl = varnishVcl(site)

  it('declares both origins on loopback and balances over them', () => {
    expect(vcl.startsWith('vcl 4.1;\n')).toBe(true)
    expect(vcl).toContain('backend origin0 { .host = "127.0.0.1"; .port = "41001"; }')
    expect(vcl).toContain('backend origin1 { .host = "127.0.0.1"; .port = "41002"; }')
    expect(vcl).toContain('origins.add_backend(origin0);')
    expect(vcl).toContain('origins.add_backend(origin1);')
    expect(balanced(vcl)).toBe(true)
  })

  it('says HIT or MISS', () => {
    expect(vcl).toContain('set resp.http.X-Cache = "HIT";')
  })
})

describe('PEERS', () => {
  it('has one peer per case name', () => {
    const names = PEERS.map(p => p.name)
    expect(new Set(names).size).toBe(names.length)
    expect(names).toEqual(['nginx', 'nginx-auto', 'haproxy', 'caddy', 'caddy-auto', 'nginx-cache', 'varnish'])
  })

  it.each(PEERS.map(p => [p.name, p] as const))('%s: arguments name only files it writes into its directory, and loopback', (_name, peer) => {
    const launch = peer.launch(site)
    const written = Object.keys(launch.files).map(f => `${site.dir}/${f}`)
    const fileArgs = launch.args.filter(a => a.startsWith('/'))
    expect(fileArgs.filter(a => a !== site.dir && !a.startsWith(`${site.dir}/`))).toEqual([])
    // The config the peer reads is one of the files written.
    expect(fileArgs.some(a => written.includes(a))).toBe(true)
    for (const a of launch.args) if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(a)) expect(a).toBe('127.0.0.1:41000')
    // Its own port and both origins' appear, in its files or its arguments.
    const all = [...Object.values(launch.files), ...launch.args].join('\n')
    for (const port of ['41000', '41001', '41002']) expect(all).toContain(port)
  })

  it('holds Caddy to one core with GOMAXPROCS=1 and lets caddy-auto use all', () => {
    const env = (name: string): Readonly<Record<string, string | null>> => PEERS.find(p => p.name === name)!.launch(site).env
    expect(env('caddy')['GOMAXPROCS']).toBe('1')
    expect(env('caddy-auto')['GOMAXPROCS']).toBeNull()
    expect(env('caddy')['XDG_CONFIG_HOME']).toBe(`${site.dir}/config`)
  })

  it('checks for hits only where the peer caches', () => {
    expect(PEERS.filter(p => p.hits).map(p => p.name)).toEqual(['nginx-cache', 'varnish'])
  })
})

describe('skipLine', () => {
  it('names the case, the missing binary and the install command', () => {
    expect(skipLine({ name: 'varnish', binary: 'varnishd', pkg: 'varnish' }))
      .toBe('skip varnish: varnishd not found (apt-get install -y varnish)')
  })
})
