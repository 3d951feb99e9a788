'use strict'

// A real nginx (Debian's) in front of a test server: a configuration written to a temporary
// prefix, a master process the test owns, `nginx -s reload` on it. It listens on 127.0.0.1 only
// (a port from loopback.js's freePort).

const fs = require('node:fs')
const os = require('node:os')
const net = require('node:net')
const path = require('node:path')
const { execFileSync, spawn } = require('node:child_process')
const { HOST, waitFor } = require('./loopback')

/** The nginx binary, or null when there is none. */
function nginxBinary () {
  for (const candidate of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx']) {
    if (fs.existsSync(candidate)) return candidate
  }
  try {
    return execFileSync('sh', ['-c', 'command -v nginx'], { stdio: 'pipe' }).toString().trim() || null
  } catch {
    return null
  }
}

/**
 * The deployment guide's nginx configuration, taken from docs/DEPLOYMENT.md itself (the first
 * ```nginx block under "Behind a proxy"), so the tests check what users are told to set.
 */
function readmeNginxConfig () {
  const readme = fs.readFileSync(path.join(__dirname, '..', 'docs', 'DEPLOYMENT.md'), 'utf8')
  const section = readme.indexOf('## Behind a proxy')
  if (section < 0) throw new Error('docs/DEPLOYMENT.md has no "## Behind a proxy" section')
  const match = /```nginx\n([\s\S]*?)```/.exec(readme.slice(section))
  if (match === null) throw new Error('the deployment guide\'s proxy section has no nginx block')
  return match[1]
}

/** The smallest nginx.conf that proxies: everything at its default, HTTP/1.0 to the app. */
function stockConfig (upstreamPort, port) {
  return `events {}
http {
    server {
        listen 127.0.0.1:${port};
        location / {
            proxy_pass http://127.0.0.1:${upstreamPort};
        }
    }
}
`
}

/**
 * Starts nginx with `config` (a complete nginx.conf, listening on `port`). The lines a test
 * prefix needs (pid, logs, temp paths) are added in front. Resolves once it accepts
 * connections.
 */
async function startNginx (config, port) {
  const binary = nginxBinary()
  if (binary === null) throw new Error('nginx is not installed (.ci/run installs it)')
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'native-sse-nginx-'))
  fs.chmodSync(prefix, 0o755)
  const confPath = path.join(prefix, 'nginx.conf')
  const errorLog = path.join(prefix, 'error.log')
  const local = [
    // As root, nginx's workers would run as nobody, who cannot use the private temp prefix.
    process.getuid && process.getuid() === 0 ? 'user root;' : '',
    `pid ${path.join(prefix, 'nginx.pid')};`,
    `error_log ${errorLog} info;`,
    ''
  ].join('\n')
  const temps = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((kind) => `${kind}_temp_path ${path.join(prefix, kind)};`).join(' ')
  const full = local + config.replace(/http\s*\{/, (open) => `${open}\n    access_log off; ${temps}\n`)
  fs.writeFileSync(confPath, full)
  const args = ['-p', prefix, '-c', confPath]
  const master = spawn(binary, [...args, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  master.stderr.on('data', (chunk) => { stderr += chunk })
  let exited = false
  master.once('exit', () => { exited = true })
  const stopAtExit = () => master.kill('SIGKILL')
  process.on('exit', stopAtExit)
  const log = () => `${stderr}${fs.existsSync(errorLog) ? fs.readFileSync(errorLog, 'utf8').slice(-4000) : ''}`
  await waitFor(async () => {
    if (exited) throw new Error(`nginx exited at start:\n${log()}\n--- config ---\n${full}`)
    return new Promise((resolve) => {
      const socket = net.connect(port, HOST)
      socket.once('connect', () => { socket.destroy(); resolve(true) })
      socket.once('error', () => resolve(false))
    })
  }, { what: `nginx to listen on ${port}`, timeoutMs: 10_000, intervalMs: 20 })
  return {
    url: `http://${HOST}:${port}`,
    config: full,
    log,
    /** `nginx -s reload`: new workers take new connections, old ones finish theirs. */
    reload: () => execFileSync(binary, [...args, '-s', 'reload'], { stdio: 'pipe', timeout: 10_000 }),
    /** The master's workers, by pid (read from /proc). */
    workers: () => childrenOf(master.pid),
    stop: async () => {
      process.removeListener('exit', stopAtExit)
      if (!exited) {
        master.kill('SIGTERM')
        await waitFor(() => exited, { what: 'nginx to exit', timeoutMs: 10_000 }).catch(() => master.kill('SIGKILL'))
      }
      fs.rmSync(prefix, { recursive: true, force: true })
    }
  }
}

/** Pids whose parent is `pid`. */
function childrenOf (pid) {
  const children = []
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8')
      // The parent pid is the second field after the parenthesised command name.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === pid) children.push(Number(entry))
    } catch {}
  }
  return children
}

module.exports = { nginxBinary, readmeNginxConfig, startNginx, stockConfig }
