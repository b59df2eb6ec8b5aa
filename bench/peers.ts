// The peers the benchmark compares zkproxy with, as data: each one's configuration rendered
// from the two origins' ports (pure functions, unit-tested), and how to start it. Every peer
// listens on 127.0.0.1 only, keeps its files in the directory it is given, and logs no
// requests (zkproxy's default case logs none either). Balanced peers use least-connections
// over the same two origins, the nearest thing they have to zkproxy's least-used choice.

/** What every renderer needs: the peer's own directory, its port, the origins' ports. */
export interface PeerSite {
  readonly dir: string
  readonly port: number
  readonly upstreams: readonly number[]
}

export interface NginxOptions extends PeerSite {
  /** `worker_processes`: 1 holds nginx to one core, as zkproxy; 'auto' is one per core. */
  readonly workers: 1 | 'auto'
  /** proxy_cache on: every request after the first is answered from nginx's cache. */
  readonly cache: boolean
}

export function nginxConf (o: NginxOptions): string {
  const d = o.dir
  // proxy_cache honours the origin's `Cache-Control: public, max-age=120`, as zkproxy does;
  // X-Cache lets the bench check that the case really measures hits (zkproxy sends one too).
  const cachePath = o.cache ? `\n  proxy_cache_path ${d}/cache levels=1:2 keys_zone=bench:10m max_size=64m inactive=10m use_temp_path=off;` : ''
  const cache = o.cache ? ' proxy_cache bench; add_header X-Cache $upstream_cache_status;' : ''
  return `worker_processes ${o.workers};
pid ${d}/nginx.pid;
error_log ${d}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${d}/body; proxy_temp_path ${d}/proxy;
  fastcgi_temp_path ${d}/fcgi; uwsgi_temp_path ${d}/uwsgi; scgi_temp_path ${d}/scgi;${cachePath}
  upstream origins { least_conn; ${o.upstreams.map(p => `server 127.0.0.1:${p};`).join(' ')} keepalive 64; }
  server {
    listen 127.0.0.1:${o.port};
    location / { proxy_pass http://origins; proxy_http_version 1.1; proxy_set_header Connection "";${cache} }
  }
}
`
}

export interface HaproxyOptions extends PeerSite {
  readonly threads: number
}

export function haproxyConf (o: HaproxyOptions): string {
  // Keep-alive on both sides is HAProxy's default in HTTP mode; the timeouts only silence
  // its warning about missing ones and are far longer than any bench run needs.
  return `global
  nbthread ${o.threads}
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 60s
frontend bench
  bind 127.0.0.1:${o.port}
  default_backend origins
backend origins
  balance leastconn
${o.upstreams.map((p, i) => `  server origin-${i} 127.0.0.1:${p}\n`).join('')}`
}

export function caddyfile (o: PeerSite): string {
  // No admin endpoint (it would be one more listener), no automatic HTTPS, storage in the
  // peer's directory. 64 idle upstream connections per origin, as nginx's `keepalive 64`.
  return `{
\tadmin off
\tauto_https off
\tstorage file_system ${o.dir}/data
}
http://127.0.0.1:${o.port} {
\tbind 127.0.0.1
\treverse_proxy ${o.upstreams.map(p => `127.0.0.1:${p}`).join(' ')} {
\t\tlb_policy least_conn
\t\ttransport http {
\t\t\tkeepalive_idle_conns_per_host 64
\t\t}
\t}
}
`
}

export function varnishVcl (o: Pick<PeerSite, 'upstreams'>): string {
  // Varnish caches the origin's `public, max-age=120` responses with its built-in rules;
  // round-robin is its simplest director (every request the case measures is a hit, so the
  // choice of origin does not show). X-Cache as for nginx.
  return `vcl 4.1;
import directors;
${o.upstreams.map((p, i) => `backend origin${i} { .host = "127.0.0.1"; .port = "${p}"; }\n`).join('')}sub vcl_init {
  new origins = directors.round_robin();
${o.upstreams.map((_p, i) => `  origins.add_backend(origin${i});\n`).join('')}}
sub vcl_recv { set req.backend_hint = origins.backend(); }
sub vcl_deliver { if (obj.hits > 0) { set resp.http.X-Cache = "HIT"; } else { set resp.http.X-Cache = "MISS"; } }
`
}

/** How to start one peer: files to write into its directory, then one command. */
export interface PeerLaunch {
  readonly files: Readonly<Record<string, string>>
  readonly args: readonly string[]
  /** Variables set (a string) or removed (null) in the environment the peer inherits. */
  readonly env: Readonly<Record<string, string | null>>
}

export interface Peer {
  /** The case name (BENCH_CASES, the report, the JSON output). */
  readonly name: string
  /** The command looked up in PATH (and the sbin directories). */
  readonly binary: string
  /** The Debian package that provides it. */
  readonly pkg: string
  /** Arguments that print its version. */
  readonly versionArgs: readonly string[]
  readonly describe: string
  /** The peer answers from its cache: the bench checks for `X-Cache: HIT` before measuring. */
  readonly hits: boolean
  /** Graceful stop (SIGKILL follows after a grace period). */
  readonly stopSignal: NodeJS.Signals
  launch: (site: PeerSite) => PeerLaunch
}

function nginx (name: string, describe: string, workers: 1 | 'auto', cache: boolean): Peer {
  return {
    name,
    binary: 'nginx',
    pkg: 'nginx',
    versionArgs: ['-v'],
    describe,
    hits: cache,
    // SIGQUIT: graceful stop of the master and its workers.
    stopSignal: 'SIGQUIT',
    launch: (site) => ({
      files: { 'nginx.conf': nginxConf({ ...site, workers, cache }) },
      // -e: nginx opens its error log before reading the config; keep it out of /var/log.
      args: ['-c', `${site.dir}/nginx.conf`, '-p', site.dir, '-e', `${site.dir}/error.log`, '-g', 'daemon off;'],
      env: {}
    })
  }
}

function caddy (name: string, describe: string, oneCore: boolean): Peer {
  return {
    name,
    binary: 'caddy',
    pkg: 'caddy',
    versionArgs: ['version'],
    describe,
    hits: false,
    stopSignal: 'SIGTERM',
    launch: (site) => ({
      files: { Caddyfile: caddyfile(site) },
      args: ['run', '--config', `${site.dir}/Caddyfile`, '--adapter', 'caddyfile'],
      // Caddy autosaves its config under XDG_CONFIG_HOME: keep that in the peer's directory.
      // GOMAXPROCS=1 holds the Go runtime to one core; unset, it uses every core.
      env: { HOME: site.dir, XDG_CONFIG_HOME: `${site.dir}/config`, XDG_DATA_HOME: `${site.dir}/data`, GOMAXPROCS: oneCore ? '1' : null }
    })
  }
}

/** Every peer, in the order the report lists them. */
export const PEERS: readonly Peer[] = [
  nginx('nginx', 'nginx, 1 worker, least_conn over both origins, upstream keepalive', 1, false),
  nginx('nginx-auto', 'nginx, worker_processes auto (one per core), least_conn', 'auto', false),
  {
    name: 'haproxy',
    binary: 'haproxy',
    pkg: 'haproxy',
    versionArgs: ['-v'],
    describe: 'HAProxy, nbthread 1, balance leastconn',
    hits: false,
    stopSignal: 'SIGTERM',
    launch: (site) => ({
      files: { 'haproxy.cfg': haproxyConf({ ...site, threads: 1 }) },
      args: ['-db', '-f', `${site.dir}/haproxy.cfg`], // -db: stay in the foreground, one process
      env: {}
    })
  },
  caddy('caddy', 'Caddy, GOMAXPROCS=1, reverse_proxy lb_policy least_conn', true),
  caddy('caddy-auto', 'Caddy, all cores, reverse_proxy lb_policy least_conn', false),
  nginx('nginx-cache', 'nginx proxy_cache, 1 worker, every request a hit', 1, true),
  {
    name: 'varnish',
    binary: 'varnishd',
    pkg: 'varnish',
    versionArgs: ['-V'],
    describe: 'Varnish, default threads, malloc storage, every request a hit',
    hits: true,
    stopSignal: 'SIGTERM',
    launch: (site) => ({
      files: { 'default.vcl': varnishVcl(site) },
      // -F: foreground; -n: its working directory (shared memory log) in the peer's own;
      // -T none: no management listener.
      args: ['-F', '-f', `${site.dir}/default.vcl`, '-a', `127.0.0.1:${site.port}`, '-n', `${site.dir}/work`, '-s', 'malloc,64m', '-T', 'none'],
      env: {}
    })
  }
]

/** The one line printed for a peer whose binary is missing. */
export function skipLine (peer: Pick<Peer, 'name' | 'binary' | 'pkg'>): string {
  return `skip ${peer.name}: ${peer.binary} not found (apt-get install -y ${peer.pkg})`
}
