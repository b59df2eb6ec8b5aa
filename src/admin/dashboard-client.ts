// The dashboard's browser code. It is written (and type-checked, and linted) as TypeScript, but
// it never runs in Node: dashboard.ts inlines `dashboardClient.toString()` into the page, so
// the function must stay self-contained (no imports at run time, no outer variables). Both tsc
// and vitest's transform emit it as plain modern JavaScript with the types erased.
import type { DashboardState, DashboardTarget } from './state.js'

export function dashboardClient (): void {
  // Rates and shares come from differences between pushes over this window: the counts are
  // cumulative across all proxies and a new target starts at the others' minimum, so a share
  // of totals would say nothing about the traffic of the last seconds.
  const WINDOW_MS = 5000
  const PALETTE = ['#4c7cf0', '#17a589', '#a25ddc', '#e07b39', '#d6478b', '#3aa3c9', '#8aa634', '#c9a227']
  const nf = new Intl.NumberFormat('en')
  const nf1 = new Intl.NumberFormat('en', { maximumFractionDigits: 1 })

  interface Sample { t: number, requests: number, latSum: number, latCount: number }
  const history = new Map<string, Sample[]>()
  const colours = new Map<string, number>()
  let current: DashboardState | undefined

  const el = (id: string): HTMLElement => {
    const e = document.getElementById(id)
    if (e === null) throw new Error(`#${id} missing`)
    return e
  }
  const setText = (e: Element, text: string): void => { if (e.textContent !== text) e.textContent = text }
  const make = (tag: string, cls = '', text = ''): HTMLElement => {
    const e = document.createElement(tag)
    if (cls !== '') e.className = cls
    if (text !== '') e.textContent = text
    return e
  }

  function bytes (n: number): string {
    const units = ['B', 'KiB', 'MiB', 'GiB']
    let i = 0
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
    return `${i === 0 ? n : nf1.format(n)} ${units[i] ?? ''}`
  }
  function ago (iso: string | null, now: number): string {
    if (iso === null) return '—'
    const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
    if (Number.isNaN(s)) return '—'
    if (s < 60) return `${s}s ago`
    if (s < 3600) return `${Math.floor(s / 60)}m ago`
    if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ago`
    return `${Math.floor(s / 86400)}d ago`
  }
  function duration (sec: number): string {
    if (sec < 60) return `${Math.floor(sec)}s`
    if (sec < 3600) return `${Math.floor(sec / 60)}m ${Math.floor(sec % 60)}s`
    return `${Math.floor(sec / 3600)}h ${Math.floor((sec % 3600) / 60)}m`
  }
  function ms (sec: number): string {
    const v = sec * 1000
    return v < 10 ? `${nf1.format(v)} ms` : `${nf.format(Math.round(v))} ms`
  }
  // A stable colour per target while it is live: the lowest palette slot no live target uses.
  function colourOf (name: string): string {
    let i = colours.get(name)
    if (i === undefined) {
      const used = new Set(colours.values())
      i = 0
      while (used.has(i) && i < PALETTE.length * 4) i++
      colours.set(name, i)
    }
    return PALETTE[i % PALETTE.length] ?? '#888'
  }

  interface Rates { rps: number, latency: number | undefined }
  // Push times in the window, shared by all targets: a target that appeared inside the window
  // had no traffic before, so its rate is over the same span as the others' (a rate over its
  // own short history would swing wildly in its first second).
  const pushes: number[] = []
  function trim<T> (list: T[], time: (x: T) => number, now: number): void {
    while (list.length > 2 && time(list[1]!) <= now - WINDOW_MS) list.shift()
  }
  function rates (t: DashboardTarget, now: number): Rates {
    let h = history.get(t.name)
    if (h === undefined) { h = []; history.set(t.name, h) }
    h.push({ t: now, requests: t.requests, latSum: t.latencySumSeconds, latCount: t.latencyCount })
    trim(h, x => x.t, now)
    const first = h[0]
    const since = pushes[0]
    if (first === undefined || since === undefined || now <= since) return { rps: 0, latency: undefined }
    const n = t.latencyCount - first.latCount
    return { rps: Math.max(0, t.requests - first.requests) / ((now - since) / 1000), latency: n > 0 ? (t.latencySumSeconds - first.latSum) / n : undefined }
  }

  function pill (e: HTMLElement, tone: string, text: string): void {
    e.className = `pill ${tone}`
    setText(e, text)
  }
  const ZK_TONE: Record<string, string> = { connected: 'ok', suspended: 'warn', connecting: 'warn', expired: 'bad', auth_failed: 'bad', closed: 'bad' }
  const HEALTH_TEXT: Record<string, string> = { ok: 'Healthy', degraded: 'Degraded', unavailable: 'Unavailable' }
  const HEALTH_TONE: Record<string, string> = { ok: 'ok', degraded: 'warn', unavailable: 'bad' }

  function render (s: DashboardState): void {
    current = s
    document.title = `zkproxy · ${s.id}`
    setText(el('proxy-id'), s.id)
    setText(el('proxy-url'), s.url)
    setText(el('zk-connect'), s.zookeeper.connect)
    setText(el('uptime'), duration((s.now - Date.parse(s.startedAt)) / 1000))
    // The badge is stricter than /healthz (which load balancers read, and which must not take a
    // proxy out for one bad target): Healthy only with a connected session and nothing ejected.
    const failing = s.targets.filter(t => t.ejected || t.failing).map(t => t.name)
    const reasonList = [...s.health.reasons]
    if (s.zookeeper.state !== 'connected' && !reasonList.some(x => x.includes('ZooKeeper'))) reasonList.push(`ZooKeeper session ${s.zookeeper.state}`)
    if (failing.length > 0) reasonList.push(`${failing.length === 1 ? 'target' : 'targets'} ${failing.join(', ')} ejected on this proxy`)
    const status = s.health.status !== 'ok' ? s.health.status : reasonList.length > 0 ? 'degraded' : 'ok'
    pill(el('health'), HEALTH_TONE[status] ?? 'bad', HEALTH_TEXT[status] ?? status)
    el('health').title = reasonList.join('\n')
    const reasons = el('reasons')
    setText(reasons, reasonList.join(' · '))
    reasons.hidden = reasonList.length === 0
    reasons.className = `notice ${HEALTH_TONE[status] ?? 'bad'}`

    // Targets first: the rates feed the cards.
    const live = new Set(s.targets.map(t => t.name))
    for (const name of [...history.keys()]) if (!live.has(name)) history.delete(name)
    for (const name of [...colours.keys()]) if (!live.has(name)) colours.delete(name)
    pushes.push(s.now)
    trim(pushes, x => x, s.now)
    const r = new Map(s.targets.map(t => [t.name, rates(t, s.now)]))
    let total = 0
    let latSum = 0
    let latN = 0
    for (const t of s.targets) {
      total += r.get(t.name)?.rps ?? 0
      const h = history.get(t.name)
      const first = h?.[0]
      if (first !== undefined) { latSum += t.latencySumSeconds - first.latSum; latN += t.latencyCount - first.latCount }
    }
    const ejected = s.targets.filter(t => t.ejected).length

    setText(el('k-targets'), nf.format(s.targets.length))
    setText(el('k-targets-sub'), s.health.view ? `${s.targets.length - ejected} routable · ${ejected} ejected` : 'waiting for a view')
    setText(el('k-targets-sub2'), s.rejected.length > 0 ? `${nf.format(s.rejected.length)} znode${s.rejected.length === 1 ? '' : 's'} ignored` : `${nf.format(s.targets.reduce((n, t) => n + t.inFlight, 0))} in flight here`)
    setText(el('k-rps'), nf1.format(total))
    setText(el('k-rps-sub'), `avg latency here ${latN > 0 ? ms(latSum / latN) : '—'}`)
    if (s.cache === null) {
      setText(el('k-cache'), 'off')
      setText(el('k-cache-sub'), 'disabled (--cache-ttl 0)')
      setText(el('k-cache-sub2'), '')
      el('k-cache-bar').style.width = '0%'
    } else {
      // Over the last minute, bypassed requests counted: a lifetime ratio would hide today's misses.
      const w = s.cache.lastMinute
      const ratio = w?.ratio ?? 0
      setText(el('k-cache'), w === null || w.ratio === null ? '—' : `${nf1.format(ratio * 100)}%`)
      setText(el('k-cache-sub'), w === null ? '' : `last ${w.seconds >= 59 ? 'minute' : `${w.seconds} s`}: ${nf.format(w.hits)} hits · ${nf.format(w.misses)} misses`)
      const stale = s.cache.stale > 0 ? ` · ${nf.format(s.cache.stale)} stale` : ''
      setText(el('k-cache-sub2'), `${w === null ? 0 : nf.format(w.bypassed)} bypassed · ${nf.format(s.cache.entries)} entries · ${bytes(s.cache.bytes)}${stale}`)
      el('k-cache-bar').style.width = `${ratio * 100}%`
    }
    const zk = s.zookeeper
    setText(el('k-zk'), zk.state.replace('_', ' '))
    el('k-zk').className = `big tone-${ZK_TONE[zk.state] ?? 'bad'}`
    setText(el('k-zk-sub'), `${nf.format(zk.reconnects)} reconnects · ${nf.format(zk.expirations)} expired`)
    setText(el('k-zk-session'), zk.sessionId === null ? 'no session' : `session 0x${zk.sessionId}`)
    setText(el('k-sync'), nf.format(s.counts.writes))
    setText(el('k-sync-sub'), `${nf.format(s.counts.flushes)} flushes · ${nf.format(s.counts.conflicts)} CAS conflicts`)
    setText(el('k-sync-sub2'), `${nf.format(s.counts.failures)} failed · ${nf.format(s.counts.dropped)} dropped (see below)`)

    renderStrip(s, r, total)
    renderRows(s, r, total)
    renderDeparted(s)
    renderRoutes(s)
    renderRejected(s)
    setText(el('updated'), new Date(s.now).toLocaleTimeString())
  }

  function renderStrip (s: DashboardState, r: Map<string, Rates>, total: number): void {
    const strip = el('strip')
    const legend = el('legend')
    strip.replaceChildren()
    legend.replaceChildren()
    strip.classList.toggle('idle', total === 0)
    for (const t of s.targets) {
      const share = total === 0 ? 1 / s.targets.length : (r.get(t.name)?.rps ?? 0) / total
      const seg = make('span', 'seg')
      seg.style.flexGrow = String(share)
      if (share === 0) seg.style.minWidth = '0'
      else seg.style.removeProperty('min-width')
      seg.style.background = colourOf(t.name)
      seg.title = `${t.name}: ${nf1.format(share * 100)}%`
      strip.append(seg)
      const item = make('span', 'item')
      const sw = make('i', 'swatch')
      sw.style.background = colourOf(t.name)
      item.append(sw, make('span', '', t.name), make('span', 'muted', total === 0 ? '' : `${nf1.format(share * 100)}%`))
      legend.append(item)
    }
    setText(el('strip-label'), total === 0 ? 'no traffic in the last 5 s' : `${nf1.format(total)} req/s over the last 5 s`)
  }

  const COLUMNS = ['target', 'status', 'share', 'rps', 'requests', 'inflight', 'responses', 'latency', 'revision', 'started', 'actions'] as const
  function renderRows (s: DashboardState, r: Map<string, Rates>, total: number): void {
    const body = el('rows')
    const rows = new Map<string, HTMLTableRowElement>()
    for (const tr of Array.from(body.querySelectorAll<HTMLTableRowElement>('tr[data-target]'))) {
      const name = tr.dataset['target'] ?? ''
      if (s.targets.some(t => t.name === name)) rows.set(name, tr)
      else tr.remove()
    }
    const empty = el('empty')
    empty.hidden = s.targets.length > 0
    setText(el('empty-text'), s.health.view ? 'No target is registered. Start a replica and it appears here.' : 'Waiting for the first view of the targets from ZooKeeper…')
    let prev: HTMLTableRowElement | undefined
    for (const t of s.targets) {
      let tr = rows.get(t.name)
      if (tr === undefined) {
        tr = document.createElement('tr')
        tr.dataset['target'] = t.name
        tr.className = 'new'
        for (const c of COLUMNS) tr.append(make('td', `c-${c}`))
        const cell = (c: string): HTMLElement => tr!.querySelector(`.c-${c}`) as HTMLElement
        const sw = make('i', 'swatch')
        const name = make('div', 'name')
        name.append(sw, make('span', 'n'))
        // Routes under the URL, only when the target declares some: a single-app fleet looks as before.
        cell('target').append(name, make('div', 'url muted'), make('div', 'routes muted'))
        cell('status').append(make('span', 'pill'))
        const bar = make('div', 'bar')
        bar.append(make('span', 'fill'))
        cell('share').append(bar, make('span', 'pct'))
        cell('revision').append(make('code', 'rev'))
        const drain = make('button', 'drain', 'Drain')
        drain.title = 'Stop sending new requests to it from this proxy (other proxies are not affected)'
        const eject = make('button', 'eject', 'Eject')
        eject.title = 'Set it aside on this proxy for 60 s, as if it had failed'
        const target = t.name
        drain.addEventListener('click', () => { act(target, drain.textContent === 'Undrain' ? 'undrain' : 'drain') })
        eject.addEventListener('click', () => { act(target, 'eject') })
        cell('actions').append(drain, eject)
      }
      // Keep the server's order (by name) without re-creating rows.
      const want = prev === undefined ? body.firstElementChild : prev.nextElementSibling
      if (want !== tr) body.insertBefore(tr, want)
      prev = tr
      fillRow(tr, t, r.get(t.name) ?? { rps: 0, latency: undefined }, total, s.now)
    }
  }

  function fillRow (tr: HTMLTableRowElement, t: DashboardTarget, r: Rates, total: number, now: number): void {
    const q = (sel: string): HTMLElement => tr.querySelector(sel) as HTMLElement
    const colour = colourOf(t.name)
    tr.classList.toggle('ejected', t.ejected)
    q('.swatch').style.background = colour
    setText(q('.n'), t.name)
    setText(q('.url'), t.url)
    const routes = q('.routes')
    setText(routes, t.routes.length === 0 ? '' : `routes: ${t.routes.join(', ')}`)
    routes.hidden = t.routes.length === 0
    const left = t.ejectedUntil === null ? 0 : Math.max(0, Math.ceil((Date.parse(t.ejectedUntil) - now) / 1000))
    const status = t.ejected ? `ejected · ${left}s` : t.failing ? 'failing' : t.drained ? 'drained' : 'up'
    pill(q('.c-status .pill'), status === 'up' ? 'ok' : 'warn', status)
    q('.c-status .pill').title = t.ejected || t.failing ? 'Requests from this proxy to it failed: it gets none (but as a last resort) until one gets through' : t.drained ? 'Drained on this proxy by an operator' : ''
    setText(q('.drain'), t.drained ? 'Undrain' : 'Drain')
    const share = total === 0 ? 0 : r.rps / total
    const fill = q('.fill')
    fill.style.width = `${share * 100}%`
    fill.style.background = colour
    setText(q('.pct'), total === 0 ? '—' : `${nf1.format(share * 100)}%`)
    setText(q('.c-rps'), nf1.format(r.rps))
    setText(q('.c-requests'), nf.format(t.requests))
    setText(q('.c-inflight'), t.tunnels > 0 ? `${nf.format(t.inFlight)} (${nf.format(t.tunnels)} WebSocket)` : nf.format(t.inFlight))
    const resp = q('.c-responses')
    const parts: Array<[string, number, string]> = [['2xx', t.responses['2xx'] + t.responses['1xx'] + t.responses['3xx'], 'ok'], ['4xx', t.responses['4xx'], 'warn'], ['5xx', t.responses['5xx'] + t.responses.other, 'bad']]
    const key = parts.map(p => p[1]).join('/') + `/${t.failovers}`
    if (resp.dataset['key'] !== key) {
      resp.dataset['key'] = key
      resp.replaceChildren(...parts.filter(([, n]) => n > 0).map(([c, n, tone]) => make('span', `rc tone-${tone}`, `${c} ${nf.format(n)}`)))
      if (t.failovers > 0) resp.append(make('span', 'rc tone-warn', `${nf.format(t.failovers)} failed over`))
      if (resp.childElementCount === 0) resp.append(make('span', 'muted', '—'))
    }
    setText(q('.c-latency'), r.latency === undefined ? '—' : ms(r.latency))
    const rev = q('.rev')
    setText(rev, t.revision === null ? '—' : t.revision.slice(0, 12))
    rev.classList.toggle('none', t.revision === null)
    rev.title = t.revision ?? ''
    const started = q('.c-started')
    setText(started, ago(t.startedAt, now))
    started.title = t.startedAt ?? ''
  }

  // ---- controls: this proxy only, each after a confirmation ----
  const CONFIRM: Record<string, string> = {
    drain: 'Drain %s on this proxy? It gets no new requests from it (but as a last resort); requests in flight finish.',
    undrain: 'Undrain %s on this proxy? It gets its share of new requests again.',
    eject: 'Eject %s on this proxy for 60 s? It gets no requests from it (but as a last resort) meanwhile.'
  }
  // A fleet-wide purge: every proxy drops the matching entries (POST /purge, through ZooKeeper).
  // The prompt is the confirmation: cancel does nothing; empty purges everything; `host`,
  // `host/prefix` or `/prefix` narrows it.
  el('purge').addEventListener('click', () => {
    const answer = window.prompt('Purge cached answers on every proxy of the fleet? Leave empty for everything, or give host, host/prefix or /prefix:', '')
    if (answer === null) return
    const text = answer.trim()
    const slash = text.indexOf('/')
    const host = slash === -1 ? text : text.slice(0, slash)
    const prefix = slash === -1 ? '' : text.slice(slash)
    const body = { ...(host === '' ? {} : { host }), ...(prefix === '' ? {} : { prefix }) }
    void fetch('purge', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      .then(async (res) => {
        const reply = (await res.json()) as { sequence?: number, message?: string }
        if (res.ok) window.alert(`Purge ${String(reply.sequence)} published: every proxy applies it within a second.`)
        else window.alert(`purge: ${reply.message ?? res.status}`)
      })
      .catch((err: unknown) => { window.alert(`purge: ${String(err)}`) })
  })

  function act (name: string, action: string): void {
    if (!window.confirm((CONFIRM[action] ?? '%s?').replace('%s', name))) return
    void fetch(`targets/${encodeURIComponent(name)}/${action}`, { method: 'POST', headers: { 'x-zkproxy-action': action } })
      .then(async (res) => { if (!res.ok) window.alert(`${action} ${name}: ${((await res.json()) as { message?: string }).message ?? res.status}`) })
      .catch((err: unknown) => { window.alert(`${action} ${name}: ${String(err)}`) })
  }

  function renderDeparted (s: DashboardState): void {
    const body = el('departed-rows')
    body.replaceChildren(...s.departed.map(d => {
      const tr = document.createElement('tr')
      tr.className = 'departed'
      tr.dataset['departed'] = d.name
      const name = make('div', 'name')
      name.append(make('i', 'swatch'), make('span', 'n', d.name))
      const first = make('td', 'c-target')
      first.append(name, make('div', 'url muted', d.url))
      const status = make('td', 'c-status')
      const p = make('span', 'pill', `left · ${d.reason}`)
      p.title = d.reason === 'session expired' ? 'Requests to it were failing when its znode went: it crashed or was cut off' : d.reason === 'rejected' ? 'Its znode is there but its data no longer decodes' : 'Its znode was deleted: it stopped (SIGTERM) or someone removed it'
      status.append(p)
      const when = make('td', 'c-left muted', ago(d.at, s.now))
      when.setAttribute('colspan', '9')
      when.title = d.at
      tr.append(first, status, when)
      return tr
    }))
  }

  function renderRoutes (s: DashboardState): void {
    // Worth a panel once some target declares a route: otherwise everything is one default pool.
    const box = el('routes')
    box.hidden = !s.pools.some(p => p.route !== '(default)')
    el('route-rows').replaceChildren(...s.pools.map(p => {
      const tr = document.createElement('tr')
      tr.dataset['route'] = p.route
      const n = make('td', 'num', `${p.routable} of ${p.targets.length}`)
      if (p.routable === 0) n.className = 'num tone-bad'
      tr.append(make('td', 'mono', p.route), make('td', '', p.targets.join(', ')), n)
      return tr
    }))
  }

  function renderRejected (s: DashboardState): void {
    const box = el('rejected')
    box.hidden = s.rejected.length === 0
    const list = el('rejected-list')
    list.replaceChildren(...s.rejected.map(x => {
      const li = make('li')
      li.append(make('code', '', x.name), make('span', 'muted', ` ${x.reason}`))
      return li
    }))
  }

  // ---- the feed: SSE, which the browser reconnects by itself ----
  const live = el('live')
  function setLive (ok: boolean): void {
    document.body.classList.toggle('stale', !ok)
    live.className = ok ? 'live on' : 'live off'
    setText(el('live-text'), ok ? 'live' : 'reconnecting…')
  }
  const source = new EventSource('events')
  source.onmessage = (ev: MessageEvent<string>) => {
    setLive(true)
    try { render(JSON.parse(ev.data) as DashboardState) } catch (err) { console.error(err) }
  }
  source.onopen = () => { setLive(true) }
  source.onerror = () => { setLive(false) }
  // Relative times and uptime keep moving between pushes (a proxy with no changes pushes less).
  setInterval(() => { if (current !== undefined) setText(el('uptime'), duration((Date.now() - Date.parse(current.startedAt)) / 1000)) }, 1000)
}
