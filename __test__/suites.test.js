'use strict'
// needs: nothing

// Every suite declares what it needs (scripts/suites.js), and the declaration says what its
// code uses: a service, tool or build it uses and does not declare would make the release
// workflow run it where that is missing; one it declares and no longer uses would keep it
// from running where it could. The check itself must bite, and the selection must honour
// a need limited to one platform.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync, spawnSync } = require('node:child_process')
const path = require('node:path')
const { NEEDS, suiteFiles, parseNeeds, declaredNeeds, needsUsedBy, usedNeeds, selectSuites } = require('../scripts/suites')

const SCRIPT = path.join(__dirname, '..', 'scripts', 'suites.js')

test('every suite declares exactly the needs its code shows', () => {
  const files = suiteFiles()
  assert.ok(files.includes('__test__/suites.test.js') && files.length > 30, `the suites found: ${files.join(', ')}`)
  const wrong = []
  for (const file of files) {
    const declared = declaredNeeds(file).map((need) => need.name)
    const used = usedNeeds(file)
    const undeclared = used.filter((name) => !declared.includes(name))
    const unused = declared.filter((name) => !used.includes(name))
    if (undeclared.length > 0) wrong.push(`${file} uses ${undeclared.join(', ')} and does not declare it`)
    if (unused.length > 0) wrong.push(`${file} declares ${unused.join(', ')} and its code shows no use`)
  }
  assert.deepEqual(wrong, [], `fix the "// needs:" line (scripts/suites.js lists the needs and how each use is recognised):\n${wrong.join('\n')}`)
})

test('the check bites: a suite that starts a service, runs a tool or loads the test-hooks addon without declaring it is caught', () => {
  for (const [name, { example: code }] of Object.entries(NEEDS)) {
    const suite = `'use strict'\n// needs: nothing\n\n${code}\n`
    assert.deepEqual(needsUsedBy(suite), [name], `${code} shows ${name}, and only that`)
    assert.deepEqual(parseNeeds(suite, 'x.test.js'), [], 'and the suite declares nothing')
    // Only code counts: a comment naming the same thing is no use.
    assert.deepEqual(needsUsedBy(`'use strict'\n// ${code}\n/* ${code} */\n`), [], `a comment quoting ${name}'s use`)
  }
})

test('a declaration is required, and names known needs, optionally on one platform', () => {
  assert.throws(() => parseNeeds("'use strict'\n\n// A suite.\n", 'x.test.js'), /x\.test\.js: no "\/\/ needs: \.\.\." line/)
  assert.throws(() => parseNeeds("'use strict'\n// needs: redis\n", 'x.test.js'), /needs 'redis', which scripts\/suites\.js does not know/)
  assert.throws(() => parseNeeds("'use strict'\n// needs: deno in linux\n", 'x.test.js'), /'deno in linux' is neither a need nor/)
  assert.deepEqual(parseNeeds("'use strict'\n// needs: curl, deno on linux\n", 'x.test.js'),
    [{ name: 'curl', platform: null }, { name: 'deno', platform: 'linux' }])
})

test('--without leaves out the suites that need any of it where they run; a need on one platform counts there only', () => {
  const all = suiteFiles()
  assert.deepEqual(selectSuites([]), all)
  const withoutRedis = selectSuites(['redis-server'])
  assert.ok(!withoutRedis.includes('__test__/redis.test.js'))
  assert.ok(withoutRedis.includes('__test__/wire.test.js'))
  for (const file of all) {
    assert.equal(withoutRedis.includes(file), !declaredNeeds(file).some((need) => need.name === 'redis-server'), file)
  }
  // loader.test.js runs Deno on Linux only.
  assert.ok(selectSuites(['deno'], 'darwin').includes('__test__/loader.test.js'))
  assert.ok(!selectSuites(['deno'], 'linux').includes('__test__/loader.test.js'))
  assert.ok(!selectSuites(['deno'], 'darwin').includes('__test__/runtimes.test.js'))
  assert.throws(() => selectSuites(['redis']), /--without names what no suite can need: redis/)
})

test('the command line prints the selection one path a line, and refuses a name it does not know', () => {
  const out = execFileSync(process.execPath, [SCRIPT, '--without', 'redis-server,nginx,chromium,netns,bun,deno,next'], { encoding: 'utf8' })
  assert.deepEqual(out.trim().split('\n'), selectSuites(['redis-server', 'nginx', 'chromium', 'netns', 'bun', 'deno', 'next']))
  const typo = spawnSync(process.execPath, [SCRIPT, '--without', 'chromum'], { encoding: 'utf8' })
  assert.equal(typo.status, 1)
  assert.match(typo.stderr, /--without names what no suite can need: chromum/)
  assert.equal(typo.stdout, '', 'nothing selected, so a workflow runs nothing by mistake')
  const listing = execFileSync(process.execPath, [SCRIPT], { encoding: 'utf8' })
  assert.match(listing, /^__test__\/redis\.test\.js: redis-server, promtool$/m)
  assert.match(listing, /^__test__\/loader\.test\.js: deno on linux$/m)
})
