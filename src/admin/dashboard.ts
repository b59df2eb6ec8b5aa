// The live dashboard: one self-contained page (no CDN, no build step, inline CSS and script),
// built once per admin listener. A TS module rather than an .html file because the build is
// tsc only: nothing would copy an .html file into dist/. The script is dashboard-client.ts.
import { createHash } from 'node:crypto'
import { dashboardClient } from './dashboard-client.js'

const STYLE = `
:root {
  --bg: #f5f6f8; --surface: #ffffff; --surface-2: #f0f2f5; --border: #e2e5ea; --text: #1a1e24;
  --muted: #667085; --accent: #2f6fed; --ok: #16a34a; --warn: #d97706; --bad: #dc2626;
  --ok-bg: #dcfce7; --warn-bg: #fef3c7; --bad-bg: #fee2e2; --shadow: 0 1px 2px rgba(16, 24, 40, .06);
  color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0e1116; --surface: #161b22; --surface-2: #1d232c; --border: #29313c; --text: #e6edf3;
    --muted: #8b97a7; --accent: #6e9bff; --ok: #3fb950; --warn: #e3a341; --bad: #f47067;
    --ok-bg: rgba(63, 185, 80, .15); --warn-bg: rgba(227, 163, 65, .16); --bad-bg: rgba(244, 112, 103, .16);
    --shadow: none;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); font: 14px/1.45 ui-sans-serif, system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; -webkit-font-smoothing: antialiased; }
code, .mono { font-family: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "Liberation Mono", monospace; font-size: 12.5px; }
.muted { color: var(--muted); }
.wrap { max-width: 1320px; margin: 0 auto; padding: 0 24px 32px; }
header { border-bottom: 1px solid var(--border); background: var(--surface); margin-bottom: 20px; }
header .wrap { display: flex; align-items: center; gap: 16px; padding-top: 14px; padding-bottom: 14px; flex-wrap: wrap; }
.brand { display: flex; align-items: center; gap: 10px; font-weight: 650; font-size: 16px; letter-spacing: -.01em; }
.logo { width: 26px; height: 26px; border-radius: 7px; background: linear-gradient(135deg, var(--accent), #17a589); position: relative; }
.logo::after { content: ""; position: absolute; inset: 7px; border: 2px solid #fff; border-radius: 50%; opacity: .9; }
.id { font-weight: 500; color: var(--muted); }
.meta { display: flex; gap: 18px; color: var(--muted); font-size: 12.5px; flex-wrap: wrap; }
.meta b { color: var(--text); font-weight: 500; }
.spacer { flex: 1; }
.live { display: inline-flex; align-items: center; gap: 6px; font-size: 12px; color: var(--muted); }
.live::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: var(--muted); }
.live.on::before { background: var(--ok); box-shadow: 0 0 0 0 var(--ok); animation: pulse 2s infinite; }
.live.off::before { background: var(--warn); }
@keyframes pulse { 0% { box-shadow: 0 0 0 0 rgba(22, 163, 74, .5); } 70% { box-shadow: 0 0 0 6px rgba(22, 163, 74, 0); } 100% { box-shadow: 0 0 0 0 rgba(22, 163, 74, 0); } }
.pill { display: inline-flex; align-items: center; gap: 6px; padding: 2px 10px; border-radius: 999px; font-size: 12px; font-weight: 600; white-space: nowrap; }
.pill::before { content: ""; width: 7px; height: 7px; border-radius: 50%; background: currentColor; }
.pill.ok { color: var(--ok); background: var(--ok-bg); }
.pill.warn { color: var(--warn); background: var(--warn-bg); }
.pill.bad { color: var(--bad); background: var(--bad-bg); }
.notice { margin: 0 0 16px; padding: 10px 14px; border-radius: 8px; border: 1px solid var(--border); font-size: 13px; }
.notice.warn { background: var(--warn-bg); color: var(--warn); border-color: transparent; }
.notice.bad { background: var(--bad-bg); color: var(--bad); border-color: transparent; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 14px; margin-bottom: 18px; }
.card { background: var(--surface); border: 1px solid var(--border); border-radius: 10px; padding: 14px 16px; box-shadow: var(--shadow); min-width: 0; }
.card h3 { margin: 0 0 6px; font-size: 11.5px; font-weight: 600; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); }
.big { font-size: 26px; font-weight: 650; letter-spacing: -.02em; font-variant-numeric: tabular-nums; text-transform: capitalize; }
.big small { font-size: 13px; font-weight: 500; color: var(--muted); margin-left: 4px; text-transform: none; }
.sub { font-size: 12.5px; color: var(--muted); margin-top: 2px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.meter { height: 4px; background: var(--surface-2); border-radius: 2px; margin-top: 8px; overflow: hidden; }
.meter span { display: block; width: 0; height: 100%; background: var(--ok); transition: width .4s ease; }
.tone-ok { color: var(--ok); } .tone-warn { color: var(--warn); } .tone-bad { color: var(--bad); }
.panel { background: var(--surface); border: 1px solid var(--border); border-radius: 10px; box-shadow: var(--shadow); overflow: hidden; margin-bottom: 18px; }
.panel-head { display: flex; align-items: baseline; gap: 12px; padding: 14px 16px 10px; }
.panel-head h2 { margin: 0; font-size: 15px; font-weight: 650; }
.distribution { padding: 0 16px 14px; }
.strip { display: flex; height: 10px; border-radius: 5px; overflow: hidden; background: var(--surface-2); gap: 2px; }
.strip .seg { flex-basis: 0; min-width: 3px; transition: flex-grow .5s ease; }
.strip.idle .seg { opacity: .25; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 16px; margin-top: 8px; font-size: 12.5px; }
.legend .item { display: inline-flex; align-items: center; gap: 6px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 3px; flex: none; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th { text-align: left; font-size: 11.5px; font-weight: 600; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); padding: 8px 12px; border-top: 1px solid var(--border); border-bottom: 1px solid var(--border); background: var(--surface-2); white-space: nowrap; }
td { padding: 10px 12px; border-bottom: 1px solid var(--border); vertical-align: middle; }
tbody tr:last-child td { border-bottom: 0; }
tbody tr { transition: background .6s ease; }
tbody tr.new { animation: arrive 1.6s ease; }
@keyframes arrive { from { background: color-mix(in srgb, var(--accent) 18%, transparent); } to { background: transparent; } }
tr.ejected td { background: color-mix(in srgb, var(--warn) 7%, transparent); }
tr.ejected .name .n { color: var(--warn); }
.num, .c-rps, .c-requests, .c-inflight, .c-latency { text-align: right; white-space: nowrap; }
th.num { text-align: right; }
.name { display: flex; align-items: center; gap: 8px; font-weight: 600; white-space: nowrap; }
.scroll { overflow-x: auto; }
.url, .routes { font-size: 12px; margin-top: 1px; margin-left: 18px; }
.c-share { min-width: 170px; }
.c-share .bar { display: inline-block; vertical-align: middle; width: 110px; height: 8px; background: var(--surface-2); border-radius: 4px; overflow: hidden; }
.c-share .fill { display: block; height: 100%; width: 0; border-radius: 4px; transition: width .5s ease; }
.c-share .pct { display: inline-block; width: 48px; text-align: right; margin-left: 6px; font-size: 12.5px; }
.c-responses { white-space: nowrap; }
.rc { font-size: 12px; font-weight: 500; margin-right: 8px; }
.rev { background: var(--surface-2); border: 1px solid var(--border); padding: 1px 6px; border-radius: 5px; }
.rev.none { background: none; border-color: transparent; color: var(--muted); }
.c-started { color: var(--muted); white-space: nowrap; }
.empty td { text-align: center; color: var(--muted); padding: 36px 12px; }
.rejected { padding: 0 16px 14px; font-size: 13px; }
.rejected ul { margin: 0; padding-left: 18px; }
tr.departed td { opacity: .5; filter: grayscale(1); }
tr.departed .name .n { text-decoration: line-through; }
.c-actions, th.actions { white-space: nowrap; text-align: right; }
.c-actions button { font: inherit; font-size: 11.5px; padding: 1px 7px; margin-left: 3px; border-radius: 6px; border: 1px solid var(--border); background: var(--surface-2); color: var(--text); cursor: pointer; }
.c-actions button:hover { border-color: var(--warn); color: var(--warn); }
.card button.purge { font: inherit; font-size: 11.5px; padding: 1px 7px; margin-top: 6px; border-radius: 6px; border: 1px solid var(--border); background: var(--surface-2); color: var(--text); cursor: pointer; }
.card button.purge:hover { border-color: var(--warn); color: var(--warn); }
.help { padding: 0 16px 14px; font-size: 13px; }
.help dl { margin: 0; display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; }
.help dt { font-weight: 600; } .help dd { margin: 0; color: var(--muted); }
[title] { cursor: help; } button[title] { cursor: pointer; }
footer { display: flex; gap: 16px; color: var(--muted); font-size: 12.5px; flex-wrap: wrap; }
footer a { color: var(--accent); text-decoration: none; }
footer a:hover { text-decoration: underline; }
body.stale main { opacity: .55; filter: grayscale(.4); transition: opacity .3s; }
@media (prefers-reduced-motion: reduce) { *, *::before, *::after { animation: none !important; transition: none !important; } }
@media (max-width: 1000px) { .c-revision, .c-started, th.h-revision, th.h-started { display: none; } }
@media (max-width: 760px) { .c-responses, .c-latency, th.h-responses, th.h-latency { display: none; } }
`

const BODY = `
<header><div class="wrap">
  <div class="brand"><span class="logo" aria-hidden="true"></span>zkproxy <span class="id" id="proxy-id">…</span></div>
  <div class="meta">
    <span>proxy <b class="mono" id="proxy-url">…</b></span>
    <span>ZooKeeper <b class="mono" id="zk-connect">…</b></span>
    <span>up <b id="uptime">…</b></span>
  </div>
  <div class="spacer"></div>
  <span class="live off" id="live"><span id="live-text">connecting…</span></span>
  <span class="pill warn" id="health">…</span>
</div></header>
<main class="wrap">
  <p class="notice" id="reasons" hidden></p>
  <section class="cards">
    <div class="card" title="Targets registered in ZooKeeper as this proxy sees them. Ejected: requests to it failed, so this proxy sends it nothing (but as a last resort) until it answers again or its back-off ends. Ignored znodes: data under the targets path no proxy can route to."><h3>Targets</h3><div class="big" id="k-targets">–</div><div class="sub" id="k-targets-sub"></div><div class="sub" id="k-targets-sub2"></div></div>
    <div class="card" title="Requests per second routed to the targets by all proxies, from the counts in ZooKeeper over the last 5 s; cache hits are not in it."><h3>Traffic</h3><div class="big"><span id="k-rps">–</span><small>req/s</small></div><div class="sub">all proxies, last 5 s</div><div class="sub" id="k-rps-sub"></div></div>
    <div class="card" title="Share of this proxy's requests over the last minute answered from its cache: hits ÷ (hits + misses + bypassed). Bypassed requests did not consult the cache (POST and other unsafe methods, Cache-Control: no-cache/no-store, preconditions). Stale: cached answers served because every target failed."><h3>Cache hit ratio</h3><div class="big" id="k-cache">–</div><div class="sub" id="k-cache-sub"></div><div class="sub" id="k-cache-sub2"></div><div class="meter"><span id="k-cache-bar"></span></div><button id="purge" class="purge" title="Drop cached answers on every proxy of the fleet (through ZooKeeper): all of them, or those of one host and/or path prefix. Asks first.">Purge…</button></div>
    <div class="card" title="This proxy's ZooKeeper session. Suspended: disconnected, still serving the last known targets. Expired: a new session is being opened; every watch and this proxy's node are re-created."><h3>ZooKeeper</h3><div class="big" id="k-zk">–</div><div class="sub" id="k-zk-sub"></div><div class="sub mono" id="k-zk-session"></div></div>
    <div class="card" title="This proxy adds its request counts to the targets' znodes in batches. CAS conflicts: another proxy wrote first; re-read and retried, nothing lost. Failed: kept for the next flush. Dropped: requests counted for a target that left or was re-created before they were written; they are not added to its new registration, which is expected whenever replicas stop or restart under traffic."><h3>Count writes</h3><div class="big" id="k-sync">–</div><div class="sub" id="k-sync-sub"></div><div class="sub" id="k-sync-sub2"></div></div>
  </section>
  <section class="panel">
    <div class="panel-head"><h2>Targets</h2><span class="muted" id="strip-label"></span></div>
    <div class="distribution"><div class="strip" id="strip"></div><div class="legend" id="legend"></div></div>
    <div class="scroll"><table id="targets">
      <thead><tr>
        <th>Target</th><th>Status</th><th>Share of traffic</th><th class="num">Req/s</th><th class="num" title="All proxies' requests, as counted in ZooKeeper">Requests</th>
        <th class="num" title="Requests this proxy has in flight, its open WebSocket tunnels included">In flight</th><th class="h-responses" title="Answers this proxy received">Responses</th><th class="num h-latency" title="Average over the last 5 s, this proxy">Latency</th><th class="h-revision">Revision</th><th class="h-started">Started</th><th class="actions" title="For this proxy only, not the fleet">Controls</th>
      </tr></thead>
      <tbody id="rows"></tbody>
      <tbody id="departed-rows"></tbody>
      <tbody><tr class="empty" id="empty"><td colspan="11" id="empty-text">Connecting…</td></tr></tbody>
    </table></div>
  </section>
  <section class="panel" id="routes" hidden>
    <div class="panel-head"><h2>Routes</h2><span class="muted">pools this proxy balances within, from the targets' routes</span></div>
    <div class="scroll"><table>
      <thead><tr><th>Route</th><th>Targets</th><th class="num" title="Targets not ejected or drained on this proxy; 0: requests are tried on the others as a last resort, or answered 503">Routable</th></tr></thead>
      <tbody id="route-rows"></tbody>
    </table></div>
  </section>
  <section class="panel" id="rejected" hidden>
    <div class="panel-head"><h2>Ignored znodes</h2><span class="muted" title="Every proxy ignores a znode whose data does not decode or that its policy refuses, and warns once per version of it. Fix or delete the znode; nothing else is affected.">present under the targets path but not routable</span></div>
    <div class="rejected"><ul id="rejected-list"></ul></div>
  </section>
  <section class="panel" id="help">
    <div class="panel-head"><h2>What the figures mean</h2></div>
    <div class="help"><dl>
      <dt>ejected</dt><dd>requests from this proxy to the target failed (or an operator ejected it here); it gets none (but as a last resort) until its back-off ends and a request gets through, or its znode is re-created. Other proxies decide for themselves.</dd>
      <dt>drained</dt><dd>an operator drained it on this proxy (Controls): no new requests but as a last resort; requests in flight finish.</dd>
      <dt>left</dt><dd>greyed rows: targets whose znode went in the last 5 minutes. deregistered: it deleted its znode (SIGTERM) or someone did; session expired: requests to it were failing when it went (a crash, a cut-off host); rejected: its znode is there but its data no longer decodes.</dd>
      <dt>dropped</dt><dd>counted requests not written to ZooKeeper because their target left or was re-created first; routing is not affected.</dd>
      <dt>stale</dt><dd>cached answers served although expired, because every target failed (stale-if-error).</dd>
      <dt>hit ratio</dt><dd>over the last minute, bypassed requests included: hits ÷ (hits + misses + bypassed).</dd>
      <dt>Healthy</dt><dd>the session is connected, the proxy has a view, at least one target is registered and none is ejected.</dd>
    </dl></div>
  </section>
  <footer>
    <span>updated <span id="updated">—</span></span>
    <span class="spacer"></span>
    <a href="targets">/targets</a><a href="healthz">/healthz</a><a href="metrics">/metrics</a><a href="state">/state</a>
  </footer>
</main>
`

const FAVICON = 'data:image/svg+xml,' + encodeURIComponent(
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="8" fill="#2f6fed"/>' +
  '<circle cx="16" cy="16" r="7" fill="none" stroke="#fff" stroke-width="3"/></svg>')

export interface DashboardPage {
  readonly html: string
  /** A Content-Security-Policy that allows exactly this page's inline style and script. */
  readonly csp: string
}

function sha256 (text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`
}

export function dashboardPage (): DashboardPage {
  const script = `(${dashboardClient.toString()})()`
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>zkproxy</title>
<link rel="icon" href="${FAVICON}">
<style>${STYLE}</style>
</head>
<body>${BODY}<script>${script}</script>
</body>
</html>
`
  // Widths and colours are set by the script through the CSSOM, which CSP does not restrict.
  const csp = [
    "default-src 'none'",
    `script-src ${sha256(script)}`,
    `style-src ${sha256(STYLE)}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'"
  ].join('; ')
  return { html, csp }
}
