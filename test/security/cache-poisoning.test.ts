// Cache poisoning through unkeyed forwarding and identity headers (docs/cache.md "Header
// policy"): for each family, an attacker's request goes first and is stored; the next client,
// who sent nothing, must get exactly what it would have got had the attacker never come, and
// the origin must never have seen the attacker's value. The origin here reflects every request
// header into a publicly cacheable body, as a framework building absolute URLs from them does.
import { connect } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { request } from 'undici'
import { closeAllBackends, startBackend, type Backend } from '../support/backends.js'
import { registerTarget, startTestProxy, stopAllProxies } from '../support/proxy.js'
import { until } from '../support/until.js'
import { closeAllSessions, connectSession, uniquePath } from '../support/zk-client.js'
import { startZooKeeper, type ZkCluster } from '../support/zookeeper.js'
import type { ProxyRuntime } from '../../src/cli/proxy-runtime.js'

let zk: ZkCluster

beforeAll(async () => { zk = await startZooKeeper({ nodes: 1 }) })
afterEach(async () => {
  await stopAllProxies()
  await closeAllBackends()
  await closeAllSessions()
})
afterAll(async () => { await zk?.stop() })

async function setup (): Promise<{ proxy: ProxyRuntime, backend: Backend }> {
  const s = await connectSession(zk.connectString)
  const targets = uniquePath('targets')
  const backend = await startBackend('b', (req, res) => {
    res.setHeader('cache-control', 'public, max-age=600')
    // Every header as the origin saw it, the way a page embeds a URL built from them.
    res.end(JSON.stringify(req.headers))
  })
  await registerTarget(s, targets, 'b', backend.url)
  const proxy = await startTestProxy(zk.connectString, ['--targets-path', targets])
  await until(() => proxy.router.targets.length === 1)
  return { proxy, backend }
}

/** One request written by hand, so header names reach the proxy exactly as spelled. */
async function rawGet (proxyUrl: string, path: string, extra: string): Promise<{ cache: string, body: string }> {
  const { port } = new URL(proxyUrl)
  const text = await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = []
    const socket = connect({ host: '127.0.0.1', port: Number(port) }, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: site.test\r\n${extra}Connection: close\r\n\r\n`)
    })
    socket.on('data', (c: Buffer) => { chunks.push(c) })
    socket.on('error', reject)
    socket.on('close', () => { resolve(Buffer.concat(chunks).toString('utf8')) })
  })
  const [head = '', body = ''] = text.split('\r\n\r\n')
  return { cache: /\r\nx-cache: (\w+)/i.exec(head)?.[1] ?? '', body }
}

// Each family with one spelling an attacker would use; the value must never reach the origin.
const FAMILIES: Array<[string, string]> = [
  ['X-Forwarded-Scheme', 'X-Forwarded-Scheme: nothttp'],
  ['X-Forwarded-Ssl / Front-End-Https', 'X-Forwarded-Ssl: on\r\nFront-End-Https: on\r\nX-Url-Scheme: nothttp'],
  ['X-Forwarded-Port', 'X-Forwarded-Port: 6666'],
  ['X-Forwarded-Prefix', 'X-Forwarded-Prefix: /evil-prefix'],
  ['X-Forwarded-Server', 'X-Forwarded-Server: evil.example'],
  ['Forwarded (RFC 7239)', 'Forwarded: for=6.6.6.6;host=evil.example;proto=https'],
  ['X-Real-IP and the client-IP family', 'X-Real-IP: 6.6.6.6\r\nTrue-Client-IP: 6.6.6.6\r\nX-Client-IP: 6.6.6.6\r\nX-Cluster-Client-IP: 6.6.6.6'],
  ['X-Original-Host / X-Host', 'X-Original-Host: evil.example\r\nX-Host: evil.example'],
  ['X-Forwarded-Host (replaced by the Host)', 'X-Forwarded-Host: evil.example'],
  ['X-Forwarded-Proto (replaced)', 'X-Forwarded-Proto: nothttp'],
  ['X-Forwarded-For (appended to, never the address)', 'X-Forwarded-For: 6.6.6.6'],
  ['underscore spellings (CGI/WSGI/PHP map them to the dash form)', 'X_Forwarded_Host: evil.example\r\nX_Forwarded_Proto: nothttp\r\nX_Real_IP: 6.6.6.6\r\nX_Forwarded_Prefix: /evil-prefix']
]
const EVIL = /evil|6666|nothttp|6\.6\.6\.6|"on"/

describe('no poisoning through forwarding headers', () => {
  for (const [family, header] of FAMILIES) {
    it(family, async () => {
      const { proxy, backend } = await setup()
      const path = '/page'
      const attack = await rawGet(proxy.url, path, `${header}\r\n`)
      expect(attack.cache).toBe('MISS')
      const victim = await rawGet(proxy.url, path, '')
      expect(victim.cache).toBe('HIT')
      expect(victim.body).toBe(attack.body)
      // What a clean client gets without any attacker: the same, apart from the appended XFF
      // chain (the attacker's claim in it is a claim, never taken as its address).
      const seen = backend.seen[0]!.headers
      const forwardedFor = seen['x-forwarded-for']
      const withoutChain = { ...seen, 'x-forwarded-for': undefined }
      expect(JSON.stringify(withoutChain)).not.toMatch(EVIL)
      expect(Object.keys(seen).some((name) => name.includes('_'))).toBe(false)
      expect(String(forwardedFor).endsWith('127.0.0.1')).toBe(true)
      expect(backend.hits(path)).toBe(1)
    })
  }

  it('a clean client first, then an attacker: the attacker is served the clean entry, and nothing changes it', async () => {
    const { proxy } = await setup()
    const clean = await request(`${proxy.url}/p`, { headers: { host: 'site.test' } })
    const cleanBody = await clean.body.text()
    for (const [, header] of FAMILIES) {
      const r = await rawGet(proxy.url, '/p', `${header}\r\n`)
      expect(r).toEqual({ cache: 'HIT', body: cleanBody })
    }
  })
})
