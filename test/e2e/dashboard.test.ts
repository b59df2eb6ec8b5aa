// The dashboard in a real headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core): it loads, shows the two registered targets, shows a third within 2 s of it
// registering, and drops one after it stops; and, under load, the last minute's hit ratio with
// bypasses, a target that left greyed with why, the routes, the badge turning Degraded on an
// ejection (and while ZooKeeper is away), and the drain/eject controls behind a confirmation. The proxy runs in-process with
// real backends registered in a real ZooKeeper. Screenshots are kept in test-results/ as
// artifacts; with ZKPROXY_UPDATE_DOCS_SCREENSHOT=1 the second one replaces docs/dashboard.png.
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import { chromium, type Browser, type Dialog, type Page } from 'playwright-core'
import { request } from 'undici'
import { startZooKeeper, type ZkCluster } from '../support/zookeeper.js'
import { ms, until } from '../support/until.js'
import { closeAllSessions, connectSession, uniquePath } from '../support/zk-client.js'
import { closeAllBackends, startBackend } from '../support/backends.js'
import { startTestProxy, stopAllProxies } from '../support/proxy.js'
import { CreateMode, type ZkSession } from '../../src/zk/index.js'

const CHROMIUM = '/usr/bin/chromium'
const ARTIFACTS = new URL('../../test-results/', import.meta.url)

let zk: ZkCluster
let browser: Browser | undefined

beforeAll(async () => {
  zk = await startZooKeeper({ nodes: 1 })
  await mkdir(ARTIFACTS, { recursive: true })
})
afterAll(async () => { await zk?.stop() })
afterEach(async () => {
  await browser?.close()
  browser = undefined
  await stopAllProxies()
  await closeAllBackends()
  await closeAllSessions()
})

async function launch (): Promise<Browser> {
  // A missing browser fails the test with the way out, it never skips it.
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: the dashboard test needs Debian's chromium. Run \`bash scripts/setup.sh\` as root, or \`apt-get install -y chromium\`.`)
  }
  return await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic']
  })
}

/** A replica as the proxy sees it: a backend plus its own session holding its ephemeral znode. */
async function replica (path: string, name: string, revision: string, routes: string[] = []): Promise<{ session: ZkSession, stop: () => Promise<void> }> {
  const b = await startBackend(name, (req: IncomingMessage, res: ServerResponse) => {
    // Static assets are cacheable, so the cache card has something to show.
    if (req.url?.startsWith('/static/') === true) res.setHeader('cache-control', 'public, max-age=60')
    res.end(`${name} ${req.url ?? ''}`)
  })
  const session = await connectSession(zk.connectString)
  await session.mkdirp(path)
  // A new replica starts at the lowest live count, as replicas do (docs/znodes.md), or it would
  // take all the traffic until it caught up.
  const counts = await Promise.all((await session.children(path)).map(async n => (JSON.parse((await session.get(`${path}/${n}`)).data.toString()) as { requests: number }).requests))
  const data = { url: b.url, requests: counts.length === 0 ? 0 : Math.min(...counts), revision, startedAt: new Date().toISOString(), ...(routes.length === 0 ? {} : { routes }) }
  await session.create(`${path}/${name}`, Buffer.from(JSON.stringify(data)), CreateMode.EPHEMERAL)
  // Like a replica's SIGTERM: the znode goes first (closing the session deletes it), then the server.
  return { session, stop: async () => { await session.close(); await b.close() } }
}

const rowNames = async (page: Page): Promise<string[]> =>
  await page.locator('#rows tr[data-target]').evaluateAll(rows => rows.map(r => (r as HTMLElement).dataset['target'] ?? ''))

async function waitForRows (page: Page, n: number, timeoutMs: number): Promise<void> {
  await page.waitForFunction((want) => document.querySelectorAll('#rows tr[data-target]').length === want, n, { timeout: timeoutMs, polling: 20 })
}

/** Keeps a little traffic going (dynamic and cacheable) until stopped, so rates and shares show. */
function traffic (url: string): { stop: () => Promise<void> } {
  const state = { running: true }
  const workers = Array.from({ length: 4 }, async (_, w) => {
    for (let i = 0; state.running; i++) {
      const path = i % 3 === 0 ? `/static/app-${i % 5}.js` : `/api/item/${w}-${i}`
      // Now and then a reload that bypasses the cache, as browsers send.
      const r = await request(`${url}${path}`, { headers: i % 7 === 0 ? { 'cache-control': 'no-cache' } : {} })
      await r.body.dump()
      await new Promise(resolve => setTimeout(resolve, 5))
    }
  })
  return { stop: async () => { state.running = false; await Promise.all(workers) } }
}

it('shows the targets live: two, a third within 2 s of registering, then one fewer after it stops', async () => {
  browser = await launch()
  const path = uniquePath('targets')
  await replica(path, 'web-1', '9f2c1e0')
  const two = await replica(path, 'web-2', '9f2c1e0')
  const proxy = await startTestProxy(zk.connectString, ['--targets-path', path, '--admin', '127.0.0.1:0', '--count-flush-ms', '100'])
  if (proxy.admin === undefined) throw new Error('no admin listener')

  const page = await browser.newPage({ viewport: { width: 1360, height: 640 }, reducedMotion: 'reduce' })
  const problems: string[] = []
  page.on('pageerror', err => problems.push(`pageerror: ${err.message}`))
  page.on('console', msg => { if (msg.type() === 'error') problems.push(`console: ${msg.text()}`) })

  await page.goto(`${proxy.admin.url}/`)
  await waitForRows(page, 2, ms(5000))
  expect(await rowNames(page)).toEqual(['web-1', 'web-2'])
  await expect.poll(async () => await page.locator('#health').textContent(), { timeout: ms(5000) }).toBe('Healthy')

  const load = traffic(proxy.url)
  try {
    const registeredAt = Date.now()
    await replica(path, 'web-3', '9f2c1e0', ['Shop.example.com', 'example.com/api/'])
    await waitForRows(page, 3, ms(2000))
    expect(Date.now() - registeredAt).toBeLessThan(ms(2000))
    expect(await rowNames(page)).toEqual(['web-1', 'web-2', 'web-3'])
    // A target's routes show under its URL; a default-pool target shows none.
    await expect.poll(async () => await page.locator('#rows tr[data-target="web-3"] .routes').textContent(), { timeout: ms(5000) }).toBe('routes: shop.example.com, example.com/api')
    expect(await page.locator('#rows tr[data-target="web-1"] .routes').isHidden()).toBe(true)

    // The artifact: three targets under traffic, light and dark.
    await page.waitForFunction(() => Array.from(document.querySelectorAll('#rows .pct')).every(e => /%$/.test(e.textContent ?? '')), undefined, { timeout: ms(8000) })
    await page.screenshot({ path: new URL('dashboard.png', ARTIFACTS).pathname, fullPage: true })
    await page.emulateMedia({ colorScheme: 'dark' })
    await page.screenshot({ path: new URL('dashboard-dark.png', ARTIFACTS).pathname, fullPage: true })
    await page.emulateMedia({ colorScheme: 'light' })
  } finally {
    await load.stop()
  }

  await two.stop()
  await waitForRows(page, 2, ms(5000))
  expect(await rowNames(page)).toEqual(['web-1', 'web-3'])
  expect(problems).toEqual([])
})

it('under load: hit ratio with bypasses, a departed target, routes, and the controls behind a confirmation', async () => {
  browser = await launch()
  const path = uniquePath('targets')
  await replica(path, 'web-1', '9f2c1e0')
  await replica(path, 'web-2', '9f2c1e0')
  await replica(path, 'shop-1', '9f2c1e0', ['shop.example.com'])
  const leaving = await replica(path, 'web-3', '9f2c1e0')
  const proxy = await startTestProxy(zk.connectString, ['--targets-path', path, '--admin', '127.0.0.1:0', '--count-flush-ms', '100'])
  if (proxy.admin === undefined) throw new Error('no admin listener')
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 }, reducedMotion: 'reduce' })
  const problems: string[] = []
  page.on('pageerror', err => problems.push(`pageerror: ${err.message}`))
  await page.goto(`${proxy.admin.url}/`)
  await waitForRows(page, 4, ms(5000))
  const text = async (sel: string): Promise<string> => (await page.locator(sel).textContent()) ?? ''
  const pillOf = (name: string): string => `#rows tr[data-target="${name}"] .c-status .pill`

  const load = traffic(proxy.url)
  try {
    // One reading of both lines (an update may land between two reads).
    const cacheText = async (): Promise<string> => await page.evaluate(() => `${document.querySelector('#k-cache-sub')?.textContent ?? ''} | ${document.querySelector('#k-cache-sub2')?.textContent ?? ''}`)
    await expect.poll(cacheText, { timeout: ms(8000) }).toMatch(/^last \d+ s: [1-9][\d,]* hits · [1-9][\d,]* misses \| [1-9][\d,]* bypassed · /)
    expect(await text('#k-cache')).toMatch(/^\d+(\.\d)?%$/)
    expect(await page.locator('#routes').isVisible()).toBe(true)
    expect(await page.locator('#route-rows tr[data-route="shop.example.com"]').textContent()).toContain('shop-1')

    await leaving.stop()
    await page.waitForSelector('#departed-rows tr[data-departed="web-3"]', { timeout: ms(5000) })
    expect(await text('#departed-rows tr[data-departed="web-3"] .pill')).toBe('left · deregistered')

    // A dismissed confirmation does nothing; an accepted one drains, then undrains.
    const web1 = proxy.router.byName('web-1')!
    page.once('dialog', d => { void d.dismiss() })
    await page.click('#rows tr[data-target="web-1"] .drain')
    page.once('dialog', d => { expect(d.message()).toContain('Drain web-1'); void d.accept() })
    await page.click('#rows tr[data-target="web-1"] .drain')
    await expect.poll(async () => await text(pillOf('web-1')), { timeout: ms(5000) }).toBe('drained')
    expect(proxy.router.ejections.isDrained('web-1', web1.generation)).toBe(true)
    page.once('dialog', d => { void d.accept() })
    await page.click('#rows tr[data-target="web-1"] .drain')
    await until(() => !proxy.router.ejections.isDrained('web-1', web1.generation), { timeoutMs: ms(5000), message: 'web-1 undrained' })

    expect(await text('#health')).toBe('Healthy')
    page.once('dialog', d => { void d.accept() })
    await page.click('#rows tr[data-target="web-2"] .eject')
    await expect.poll(async () => await text(pillOf('web-2')), { timeout: ms(5000) }).toMatch(/^ejected · \d+s$/)
    await expect.poll(async () => await text('#health'), { timeout: ms(5000) }).toBe('Degraded')
    expect(await text('#reasons')).toContain('web-2 ejected')

    // A fleet-wide purge from the page: cancel does nothing, an answer publishes it.
    page.once('dialog', d => { expect(d.type()).toBe('prompt'); void d.dismiss() })
    await page.click('#purge')
    const published = page.waitForResponse(r => r.url().endsWith('/purge') && r.request().method() === 'POST')
    // The prompt, answered; then the alert saying the purge was published.
    const dialogs: string[] = []
    const answer = (d: Dialog): void => {
      dialogs.push(`${d.type()}: ${d.message()}`)
      void (d.type() === 'prompt' ? d.accept('shop.example.com/cart') : d.accept())
    }
    page.on('dialog', answer)
    await page.click('#purge')
    const purged = await published
    expect(purged.status()).toBe(202)
    expect(await purged.json()).toMatchObject({ host: 'shop.example.com', prefix: '/cart' })
    await expect.poll(() => dialogs.length, { timeout: ms(5000) }).toBe(2)
    expect(dialogs[1]).toMatch(/^alert: Purge \d+ published/)
    page.off('dialog', answer)

    // The picture for the docs: under load, one target ejected, one gone, a route.
    await page.waitForFunction(() => /%$/.test(document.querySelector('#rows tr[data-target="web-1"] .pct')?.textContent ?? ''), undefined, { timeout: ms(8000) })
    // Clicking scrolled the table sideways to its buttons: back to its start for the picture.
    await page.evaluate(() => { for (const e of Array.from(document.querySelectorAll('.scroll'))) e.scrollLeft = 0 })
    // Into docs/ only when asked, so that running the tests leaves the checkout clean.
    const docs = process.env['ZKPROXY_UPDATE_DOCS_SCREENSHOT'] === '1'
    await page.screenshot({ path: new URL(docs ? '../../docs/dashboard.png' : 'dashboard-load.png', docs ? import.meta.url : ARTIFACTS).pathname, fullPage: true })
  } finally {
    await load.stop()
  }
  expect(problems).toEqual([])
})

it('the badge says Degraded while the ZooKeeper session is not connected, and Healthy again after', async () => {
  browser = await launch()
  const path = uniquePath('targets')
  await replica(path, 'web-1', '9f2c1e0')
  const proxy = await startTestProxy(zk.connectString, ['--targets-path', path, '--admin', '127.0.0.1:0'])
  if (proxy.admin === undefined) throw new Error('no admin listener')
  const page = await browser.newPage({ reducedMotion: 'reduce' })
  await page.goto(`${proxy.admin.url}/`)
  const badge = async (): Promise<string> => (await page.locator('#health').textContent()) ?? ''
  await expect.poll(badge, { timeout: ms(5000) }).toBe('Healthy')
  await zk.stopNode(0)
  try {
    await expect.poll(badge, { timeout: ms(10_000) }).toBe('Degraded')
    expect(await page.locator('#reasons').textContent()).toMatch(/ZooKeeper session (suspended|connecting|expired)/)
  } finally {
    await zk.startNode(0)
  }
  await expect.poll(badge, { timeout: ms(20_000) }).toBe('Healthy')
})
