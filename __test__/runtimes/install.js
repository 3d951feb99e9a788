'use strict'

// Installs the runtimes the suite also runs under (Bun, Deno, Next.js) into this folder:
// `node __test__/runtimes/install.js` (.ci/run runs it). npm 11 leaves the 107 MB binary of
// @oven/bun-linux-x64 out of a fresh install (its folder is there, its bin/ is empty), so the
// binary is unpacked here from the same package, as pinned in this folder's lock.

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
execFileSync(npm, ['ci', '--no-audit', '--no-fund'], { cwd: __dirname, stdio: 'inherit' })

const lock = JSON.parse(fs.readFileSync(path.join(__dirname, 'package-lock.json'), 'utf8'))
const name = `@oven/bun-linux-${process.arch}`
const entry = lock.packages[`node_modules/${name}`]
const binary = path.join(__dirname, 'node_modules', name, 'bin', 'bun')
if (entry !== undefined && !fs.existsSync(binary)) {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'bun-package-'))
  try {
    const tarball = execFileSync(npm, ['pack', '--silent', `${name}@${entry.version}`], { cwd: scratch, encoding: 'utf8' }).trim()
    execFileSync('tar', ['xzf', tarball, 'package/bin/bun'], { cwd: scratch })
    fs.mkdirSync(path.dirname(binary), { recursive: true })
    fs.copyFileSync(path.join(scratch, 'package', 'bin', 'bun'), binary)
    fs.chmodSync(binary, 0o755)
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true })
  }
}
