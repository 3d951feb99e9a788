'use strict'

// What each suite in __test__ needs beyond Node, `npm ci` and the addon, and so which suites a
// machine that lacks some of it can run. A suite says so in its first lines:
//
//   // needs: redis-server, chromium
//   // needs: curl, deno on linux         (deno only where the suite runs on Linux)
//   // needs: nothing
//
// each name from NEEDS below. __test__/suites.test.js holds every declaration to what its suite
// uses (a need used and not declared fails, and one declared and not used), so a declaration
// cannot drift from its code.
//
//   node scripts/suites.js                          every suite and what it needs
//   node scripts/suites.js --without nginx,netns    the suites that need neither here, one a line
//
// The release workflow runs the second form with what its runners lack. Plain Node, no
// dependencies.

const fs = require('node:fs')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')
const SUITES = path.join(ROOT, '__test__')
const SUFFIX = '.test.js'
/** A declaration stands in a suite's first lines. */
const DECLARED_WITHIN = 5
const DECLARATION = /^\/\/ needs: (.+)$/

/**
 * What a suite may need: `what` it is, the patterns that show its use in a suite's code
 * (comments left out: a starter from test-support/, a helper of __test__/helpers.js that runs
 * a tool, the tool itself), and an `example` of such a use. A suite that runs
 * scripts/test-prerequisites.js needs every tool that script checks.
 */
const PREREQUISITES = /\btest-prerequisites\.js\b/
const NEEDS = {
  'redis-server': {
    what: 'redis-server and redis-cli (test-support/redis.js)',
    uses: [/test-support\/redis\b/, PREREQUISITES],
    example: "const { startRedis } = require('../test-support/redis')"
  },
  nginx: {
    what: 'nginx (test-support/nginx.js)',
    uses: [/test-support\/nginx\b/, PREREQUISITES],
    example: "const { startNginx } = require('../test-support/nginx')"
  },
  netns: {
    what: 'root with ip and iptables: a network namespace (test-support/netns.js)',
    uses: [/test-support\/netns\b/],
    example: "const { createNamespace } = require('../test-support/netns')"
  },
  chromium: {
    what: 'headless Chromium (CHROMIUM_PATH or /usr/bin/chromium), driven by playwright-core',
    uses: [/\bplaywright-core\b/, PREREQUISITES],
    example: "const { chromium } = require('playwright-core')"
  },
  bun: {
    what: 'Bun from __test__/runtimes (node __test__/runtimes/install.js)',
    uses: [/'@oven'/, PREREQUISITES],
    example: "const BUN = path.join(RUNTIMES, '@oven', 'bun-linux-x64', 'bin', 'bun')"
  },
  deno: {
    what: 'Deno from __test__/runtimes (node __test__/runtimes/install.js)',
    uses: [/'@deno'/, PREREQUISITES],
    example: "const DENO = path.join(RUNTIMES, '@deno', 'linux-x64-glibc', 'deno')"
  },
  next: {
    what: 'Next.js from __test__/runtimes (node __test__/runtimes/install.js)',
    uses: [/'next', 'dist'/, PREREQUISITES],
    example: "const NEXT = path.join(RUNTIMES, 'node_modules', 'next', 'dist', 'bin', 'next')"
  },
  promtool: {
    what: "Prometheus's promtool (helpers.promtool)",
    uses: [/\bpromtool\(/, PREREQUISITES],
    example: 'const { code } = await promtool(text)'
  },
  curl: {
    what: 'the curl CLI (helpers.curl, or run directly)',
    uses: [/\bcurl\(/, /\b(spawn|execFile)\w*\('curl'/, /\bcurl -/, PREREQUISITES],
    example: "const { stdout } = await curl(['-sN', url])"
  },
  openssl: {
    what: 'the openssl CLI (helpers.selfSignedCert)',
    uses: [/\bselfSignedCert\(/, PREREQUISITES],
    example: 'const tls = selfSignedCert()'
  },
  ss: {
    what: "iproute2's ss (a listening socket's accept queue)",
    uses: [/\b(spawn|execFile)\w*\('ss'/, PREREQUISITES],
    example: "execFileSync('ss', ['-Hltn', `sport = :${port}`])"
  },
  bash: {
    what: 'bash',
    uses: [/\b(spawn|execFile)\w*\('bash'/, PREREQUISITES],
    example: "spawn('bash', ['-c', command])"
  },
  'test-hooks': {
    what: 'the addon built with the test-hooks feature (npm run build:test-hooks; __test__/memory.js loads it)',
    uses: [/'test-hooks'/, /require\('\.\/memory'\)/],
    example: "const { settledMemory } = require('./memory')"
  },
  procfs: {
    what: "Linux's /proc (helpers.openFdCount and the like, nginx's workers())",
    uses: [/\/proc\//, /\b(openFdCount|openFdTargets|fdsOpenedSince)\(/, /\.workers\(\)/],
    example: 'const baseline = openFdCount()'
  }
}
/** Where a need may be limited to (`deno on linux`): process.platform's names. */
const PLATFORMS = ['linux', 'darwin', 'win32']

/** Every suite file, as `__test__/name.test.js`, in name order. */
function suiteFiles () {
  return fs.readdirSync(SUITES).filter((name) => name.endsWith(SUFFIX)).sort().map((name) => `__test__/${name}`)
}

/** A suite's text. */
const read = (file) => fs.readFileSync(path.join(ROOT, file), 'utf8')

/**
 * The needs `source` (the text of `file`) declares: `[{ name, platform }]` (`platform` null:
 * everywhere). Throws when the declaration is missing or names what NEEDS does not know.
 */
function parseNeeds (source, file) {
  const line = source.split('\n').slice(0, DECLARED_WITHIN).map((l) => DECLARATION.exec(l)).find(Boolean)
  if (!line) throw new Error(`${file}: no "// needs: ..." line in its first ${DECLARED_WITHIN} lines (scripts/suites.js says how)`)
  if (line[1].trim() === 'nothing') return []
  return line[1].split(',').map((item) => {
    const [name, on, platform, ...rest] = item.trim().split(/\s+/)
    if (!(name in NEEDS)) throw new Error(`${file}: needs '${name}', which scripts/suites.js does not know (known: ${Object.keys(NEEDS).join(', ')})`)
    if (on === undefined) return { name, platform: null }
    if (on !== 'on' || !PLATFORMS.includes(platform) || rest.length > 0) {
      throw new Error(`${file}: '${item.trim()}' is neither a need nor '<need> on <${PLATFORMS.join('|')}>'`)
    }
    return { name, platform }
  })
}

/** The needs `file` declares (see parseNeeds). */
const declaredNeeds = (file) => parseNeeds(read(file), file)

/** `source` without its comments (whole-line and block), so that only code counts as a use. */
function codeOf (source) {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
}

/** The needs that `source`'s code shows, by NEEDS' patterns, in NEEDS' order. */
function needsUsedBy (source) {
  const code = codeOf(source)
  return Object.keys(NEEDS).filter((name) => NEEDS[name].uses.some((pattern) => pattern.test(code)))
}

/** The needs `file`'s code shows. */
const usedNeeds = (file) => needsUsedBy(read(file))

/** The suites none of whose needs on `platform` is among `without`. */
function selectSuites (without, platform = process.platform) {
  const unknown = without.filter((name) => !(name in NEEDS))
  if (unknown.length > 0) throw new Error(`--without names what no suite can need: ${unknown.join(', ')} (known: ${Object.keys(NEEDS).join(', ')})`)
  return suiteFiles().filter((file) => !declaredNeeds(file).some((need) =>
    without.includes(need.name) && (need.platform === null || need.platform === platform)))
}

function main (argv) {
  try {
    if (argv.length === 0) {
      for (const file of suiteFiles()) {
        const needs = declaredNeeds(file).map(({ name, platform }) => platform ? `${name} on ${platform}` : name)
        console.log(`${file}: ${needs.length > 0 ? needs.join(', ') : 'nothing'}`)
      }
      return 0
    }
    if (argv.length !== 2 || argv[0] !== '--without') {
      console.error('usage: node scripts/suites.js [--without need,need,...]')
      return 2
    }
    const without = argv[1].split(',').map((name) => name.trim()).filter(Boolean)
    for (const file of selectSuites(without)) console.log(file)
    return 0
  } catch (error) {
    console.error(`scripts/suites.js: ${error.message}`)
    return 1
  }
}

if (require.main === module) process.exitCode = main(process.argv.slice(2))

module.exports = { NEEDS, suiteFiles, parseNeeds, declaredNeeds, needsUsedBy, usedNeeds, selectSuites }
