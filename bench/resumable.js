'use strict'

// Resumable streams side by side on one redis-server: native-sse's hub.publishStream() against
// Vercel's resumable-stream (with the `redis` client it is designed for). Each library runs in
// its own server process (bench/resumable-server.js) on core 0; the readers run here.
//
// - tokens/s per stream: one stream of `tokens` 20 B tokens produced as fast as the source
//   goes, read by its first reader (the one that started it) and by a second one following it
//   (resumable-stream: through Redis; native-sse: the same channel log);
// - reconnect to first resumed token: a reader drops mid-stream and comes back with where it
//   was (native-sse: Last-Event-ID; resumable-stream: characters to skip), median of rounds;
// - memory per live stream: `live` streams producing a token every 50 ms, each read by one
//   client, RSS of the server process after they started minus before, per stream; a first
//   wave in a fresh server, then a second once the first ended (what one more costs a server
//   already serving), and what the server keeps of the first wave's streams once they ended;
//   then two waves in a server whose young generation keeps one size (FIXED_YOUNG_GENERATION),
//   two in one whose young generation is at its largest from the start (LARGEST_YOUNG_GENERATION),
//   and two in one whose malloc keeps two arenas (FEW_ARENAS).

const { spawn } = require('node:child_process')
const path = require('node:path')
const { createParser } = require('eventsource-parser')
const { startRedis } = require('../test-support/redis')

const SMOKE = process.argv.includes('--smoke')
const SIZES = SMOKE ? { tokens: 20_000, rounds: 3, live: 20 } : { tokens: 100_000, rounds: 15, live: 500 }
/** One token's frame as resumable-stream stores it (`data: <20 B>\n\n`): what it resumes by. */
const FRAME_CHARS = 28
const PIN = process.platform === 'linux'
const KINDS = { native: 'native-sse publishStream', resumable: 'resumable-stream (redis)' }

/**
 * The second pair of live waves runs in a server whose young generation keeps a small size, as
 * the compression scenario's servers do: a default one grows once under a burst (to 16 or 32
 * MiB, 32 to 64 KB per stream at 500), in whichever phase of a process's life it comes, so the
 * first pair's RSS partly compares V8's timing (resumable-stream's server grows it in the
 * throughput phase, native-sse's in a wave). A small one promotes short-lived objects sooner,
 * so its RSS counts more of a library's JS garbage until the next full GC.
 */
const FIXED_YOUNG_GENERATION = ['--max-semi-space-size=1']

/**
 * The third pair of live waves runs in a server whose young generation is at V8's default
 * largest (16 MiB a semi-space on 64 bits) from its start: with the defaults, V8 grows it
 * (4 -> 16 -> 32 MiB) once enough objects survived its collections, in whichever wave that
 * happens, and a server that already grew it (resumable-stream's starts with it grown) pays
 * nothing more in that wave. Sized the same in both, a second wave compares what the libraries
 * add per stream once a server is warm.
 */
const LARGEST_YOUNG_GENERATION = ['--min-semi-space-size=16', '--max-semi-space-size=16']

/**
 * The fourth pair of live waves runs with glibc's malloc held to two arenas: by default each
 * thread that allocates gets an arena of its own (up to 8 per core), and memory one arena frees
 * serves no other, so a process whose runtime threads and JS thread take turns growing keeps
 * more than it holds. What docs/OPERATIONS.md's "malloc arenas" measures.
 */
const FEW_ARENAS = { MALLOC_ARENA_MAX: '2' }

function startServer (kind, redisUrl, nodeFlags = [], env = {}) {
  const args = ['--expose-gc', ...nodeFlags, path.join(__dirname, 'resumable-server.js'), kind, redisUrl]
  const options = { stdio: ['ignore', 'pipe', 'inherit', 'ipc'], env: { ...process.env, ...env } }
  const child = PIN ? spawn('taskset', ['-c', '0', process.execPath, ...args], options)
    : spawn(process.execPath, args, options)
  return new Promise((resolve, reject) => {
    child.once('message', ({ port }) => resolve({
      url: `http://127.0.0.1:${port}`,
      memory: (what = 'now') => new Promise((resolve) => { child.once('message', resolve); child.send(what) }),
      stop: () => new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGKILL') })
    }))
    child.once('exit', (code) => reject(new Error(`${kind} server exited (${code})`)))
  })
}

/**
 * Reads `url` as an event stream until `stop(got)` or its end; `got.tokens` counts data events,
 * `got.lastId` is the last id.
 */
async function read (url, { headers = {}, stop = () => false, signal } = {}) {
  const started = performance.now()
  const got = { tokens: 0, lastId: '', firstAt: null, lastAt: null, done: false }
  const response = await fetch(url, { headers, signal })
  const decoder = new TextDecoder()
  let stopped = false
  const parser = createParser({
    onEvent: (event) => {
      if (event.event === 'end' || event.event === 'done') { got.done = true; return }
      if (event.event !== undefined && event.event !== 'message') return
      got.tokens++
      got.lastId = event.id ?? got.lastId
      got.lastAt = performance.now()
      got.firstAt ??= got.lastAt
      if (stop(got)) stopped = true
    }
  })
  const reader = response.body.getReader()
  while (!stopped && !got.done) {
    const { value, done } = await reader.read()
    if (done) break
    parser.feed(decoder.decode(value, { stream: true }))
  }
  await reader.cancel().catch(() => {})
  got.firstMs = got.firstAt === null ? null : got.firstAt - started
  return got
}

const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1]

/**
 * What a process holds after a full GC: its JS heap in use and what it has outside the JS heap
 * (RSS less the heap's pages), without the room V8 keeps for new objects, which a burst grows
 * once (16 or 32 MiB of young generation) and which swamps 500 streams' RSS growth in one run
 * and not the next.
 */
function held ({ rss, heapTotal, heapUsed }) {
  return heapUsed + (rss - heapTotal)
}

/**
 * `SIZES.live` streams producing a token every 50 ms, each read by one client, for 3 s: the
 * server's RSS then minus before, and what it holds after a full GC then minus before, per
 * stream. Then their readers leave and their sources end (a stream outlives its reader: it
 * would go on filling its history), and, a second later, what the server still holds for
 * them, per stream (native-sse: each answer kept for resuming for the history's age, 10
 * minutes by default; resumable-stream keeps an ended stream in Redis only).
 */
async function liveWave (server, kind, wave) {
  // Both from a collected heap: RSS then grows by what the streams bring, garbage included.
  const before = await server.memory('gc')
  const heldBefore = held(before)
  const controllers = []
  const readers = []
  for (let i = 0; i < SIZES.live; i++) {
    const controller = new AbortController()
    controllers.push(controller)
    readers.push(read(`${server.url}/start/live-${kind}-${wave}${i}?tokens=100000&paceMs=50`, { signal: controller.signal, stop: () => false }).catch(() => null))
  }
  await new Promise((resolve) => setTimeout(resolve, 3000))
  const live = await server.memory()
  const heldLive = held(await server.memory('gc'))
  for (const controller of controllers) controller.abort()
  await Promise.all(readers)
  await (await fetch(`${server.url}/stop`)).text()
  // The server sees the aborts as closes a moment later; a second is ample on this machine.
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const heldEnded = held(await server.memory('gc'))
  const perStream = (bytes) => bytes / 1024 / SIZES.live
  const mib = (bytes) => Math.round(bytes / 1048576)
  return {
    live: perStream(live.rss - before.rss),
    held: perStream(heldLive - heldBefore),
    ended: perStream(heldEnded - heldBefore),
    young: `${mib(before.young)} -> ${mib(live.young)}`
  }
}

async function measure (kind, redisUrl) {
  let server = await startServer(kind, redisUrl)
  try {
    // Throughput: the starting reader and a follower.
    const id = `tp-${kind}`
    const first = read(`${server.url}/start/${id}?tokens=${SIZES.tokens}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
    const follower = read(`${server.url}/follow/${id}`)
    const [a, b] = await Promise.all([first, follower])
    const rate = (g) => g.tokens > 1 ? (g.tokens - 1) / ((g.lastAt - g.firstAt) / 1000) : 0

    // Reconnect to the first resumed token, over rounds of paced streams.
    const reconnects = []
    let resumedWhole = 0
    for (let round = 0; round < SIZES.rounds; round++) {
      const rid = `rc-${kind}-${round}`
      const controller = new AbortController()
      const before = await read(`${server.url}/start/${rid}?tokens=200&paceMs=2`, { stop: (g) => g.tokens === 50, signal: controller.signal })
      controller.abort()
      const headers = kind === 'native' ? { 'last-event-id': before.lastId } : {}
      const query = kind === 'native' ? '' : `?skip=${before.tokens * FRAME_CHARS}`
      const after = await read(`${server.url}/follow/${rid}${query}`, { headers })
      reconnects.push(after.firstMs)
      if (before.tokens + after.tokens === 200) resumedWhole++
    }

    // Memory per live stream, in two waves of the same streams, in a server of their own: the
    // first also grows what a process grows once (V8's young generation, allocator pools), the
    // second comes once the first has ended: what each more live stream costs a server that
    // has been serving them. A fresh server, because the phases above leave each library's
    // process in a different state: resumable-stream's grew its young generation there and
    // collects that phase's garbage during the wave (its RSS then fell by 10 KB per stream),
    // native-sse's did neither. Then the same in a server whose young generation keeps one
    // size (see FIXED_YOUNG_GENERATION).
    await server.stop()
    server = await startServer(kind, redisUrl)
    const firstWave = await liveWave(server, kind, 'a')
    const secondWave = await liveWave(server, kind, 'b')
    await server.stop()
    server = await startServer(kind, redisUrl, FIXED_YOUNG_GENERATION)
    const fixedFirst = await liveWave(server, kind, 'c')
    const fixedSecond = await liveWave(server, kind, 'd')
    await server.stop()
    server = await startServer(kind, redisUrl, LARGEST_YOUNG_GENERATION)
    const largestFirst = await liveWave(server, kind, 'g')
    const largestSecond = await liveWave(server, kind, 'h')
    await server.stop()
    server = await startServer(kind, redisUrl, [], FEW_ARENAS)
    const fewFirst = await liveWave(server, kind, 'e')
    const fewSecond = await liveWave(server, kind, 'f')
    return {
      firstReaderTokensPerS: rate(a),
      followerTokensPerS: rate(b),
      followerGotAll: b.tokens === SIZES.tokens,
      reconnectToFirstTokenMs: median(reconnects),
      resumedWhole: `${resumedWhole}/${SIZES.rounds}`,
      kbPerLiveStream: firstWave.live,
      kbPerLiveStreamWarm: secondWave.live,
      kbHeldPerLiveStream: firstWave.held,
      kbHeldPerLiveStreamWarm: secondWave.held,
      kbPerLiveStreamFixedYoung: fixedFirst.live,
      kbPerLiveStreamFixedYoungWarm: fixedSecond.live,
      kbPerLiveStreamLargestYoung: largestFirst.live,
      kbPerLiveStreamLargestYoungWarm: largestSecond.live,
      youngFirstWave: firstWave.young,
      youngSecondWave: secondWave.young,
      kbPerLiveStreamFewArenas: fewFirst.live,
      kbPerLiveStreamFewArenasWarm: fewSecond.live,
      kbHeldPerLiveStreamFewArenas: fewFirst.held,
      kbPerEndedStream: firstWave.ended
    }
  } finally {
    await server.stop()
  }
}

async function main () {
  const redis = await startRedis({ durable: false, core: PIN ? 0 : null })
  const results = {}
  try {
    for (const kind of Object.keys(KINDS)) {
      await redis.cli('FLUSHALL')
      results[kind] = await measure(kind, redis.url)
      console.log(`${KINDS[kind].padEnd(28)} ${JSON.stringify(results[kind])}`)
    }
  } finally {
    await redis.close()
  }
  const rows = [
    ['tokens/s, the reader that started it', 'firstReaderTokensPerS', (v) => `${(v / 1000).toFixed(1)} k`],
    ['tokens/s, a second reader following it', 'followerTokensPerS', (v) => `${(v / 1000).toFixed(1)} k`],
    ['reconnect to first resumed token (ms, median)', 'reconnectToFirstTokenMs', (v) => v.toFixed(2)],
    ['resumed with every token once', 'resumedWhole', (v) => v],
    ['server memory per live stream, first wave, fresh server (KB)', 'kbPerLiveStream', (v) => v.toFixed(1)],
    ['server memory per live stream, second wave (KB)', 'kbPerLiveStreamWarm', (v) => v.toFixed(1)],
    ['V8 young generation before -> during the first / second wave, default (MiB)', 'youngFirstWave', (v, r) => `${v} / ${r.youngSecondWave}`],
    [`server memory per live stream, young generation fixed (${FIXED_YOUNG_GENERATION.join(' ')}), first / second wave (KB)`, 'kbPerLiveStreamFixedYoung', (v, r) => `${v.toFixed(1)} / ${r.kbPerLiveStreamFixedYoungWarm.toFixed(1)}`],
    [`server memory per live stream, young generation at its largest from the start (${LARGEST_YOUNG_GENERATION.join(' ')}), first / second wave (KB)`, 'kbPerLiveStreamLargestYoung', (v, r) => `${v.toFixed(1)} / ${r.kbPerLiveStreamLargestYoungWarm.toFixed(1)}`],
    ['server memory per live stream, MALLOC_ARENA_MAX=2, first / second wave (KB)', 'kbPerLiveStreamFewArenas', (v, r) => `${v.toFixed(1)} / ${r.kbPerLiveStreamFewArenasWarm.toFixed(1)}`],
    ['held per live stream after a full GC, first wave (KB)', 'kbHeldPerLiveStream', (v) => v.toFixed(1)],
    ['held per live stream after a full GC, first wave, MALLOC_ARENA_MAX=2 (KB)', 'kbHeldPerLiveStreamFewArenas', (v) => v.toFixed(1)],
    ['held per live stream after a full GC, second wave (KB)', 'kbHeldPerLiveStreamWarm', (v) => v.toFixed(1)],
    ['held per ended stream after a full GC, 1 s after (KB)', 'kbPerEndedStream', (v) => v.toFixed(1)]
  ]
  console.log(`\nResumable streams, ${SIZES.tokens.toLocaleString('en')} x 20 B tokens; ${SIZES.rounds} reconnects; ${SIZES.live} live streams (server on core 0, one redis-server)\n`)
  console.log(`| figure | ${Object.values(KINDS).join(' | ')} |`)
  console.log(`| --- | ${Object.keys(KINDS).map(() => '---').join(' | ')} |`)
  for (const [label, key, format] of rows) console.log(`| ${label} | ${Object.keys(KINDS).map((k) => results[k] ? format(results[k][key], results[k]) : 'failed').join(' | ')} |`)
}

main().catch((error) => { console.error(error); process.exitCode = 1 })
