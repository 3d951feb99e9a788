// A chat whose answer survives a reload and shows in a second tab. The answer is published into
// its own channel with hub.publishStream(); each page follows it with the browser's EventSource,
// resuming from the last token it saw (kept in sessionStorage) or, having seen none, from the
// answer's start. With REDIS_URL set, several processes share the answers: a page can follow
// one from any of them (?events=http://other-process).
const http = require('node:http')
const fs = require('node:fs')
const path = require('node:path')
const { randomUUID } = require('node:crypto')
const { createHub } = require('native-sse')

const hub = createHub({
  heartbeatMs: 15_000,
  redis: process.env.REDIS_URL || undefined,
  // A process keeps what other processes publish only into channels that keep history; this
  // keeps every channel's last 100,000 events for ten minutes (publishStream's own default).
  history: { maxEvents: 100_000, maxAgeMs: 10 * 60_000 }
})
const page = fs.readFileSync(path.join(__dirname, 'resumable-chat.html'))
const TOKEN_MS = Number(process.env.TOKEN_MS ?? 60)

/** A stand-in for a model's streaming API: the answer to `prompt`, a word at a time. */
async function * fakeModel (prompt) {
  const answer = `You asked: "${prompt}". A model would answer here, one token at a time; ` +
    'reload the page or open this URL in a second tab while it writes, and the answer goes on ' +
    'from where that page was, every word once and in order, because the hub keeps the stream ' +
    'in its channel and a page resumes from the id of the last token it saw.'
  for (const [i, word] of answer.split(' ').entries()) {
    await new Promise((resolve) => setTimeout(resolve, TOKEN_MS))
    yield (i === 0 ? '' : ' ') + word
  }
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost')
  const events = url.pathname.match(/^\/answers\/([\w-]{1,64})\/events$/)
  if (req.method === 'POST' && url.pathname === '/answers') {
    const id = randomUUID()
    // Runs to the end whether anyone reads it or not; its channel keeps it for ten minutes.
    hub.publishStream(`answer:${id}`, fakeModel(url.searchParams.get('prompt') ?? ''), { id })
    res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id }))
  } else if (events !== null) {
    const id = events[1]
    // The page may be served by another process of the same hub.
    res.setHeader('access-control-allow-origin', '*')
    // A page that saw nothing yet (a new tab) starts from the answer's first token; one that
    // reloads sends the id of the last token it saw (?lastEventId=), which takes precedence.
    hub.attach(req, res, { channels: [`answer:${id}`], lastEventId: `${id}.0` })
  } else if (url.pathname === '/') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page)
  } else {
    res.writeHead(404).end()
  }
})

hub.ready().then(() => {
  server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
    console.log(`listening on http://127.0.0.1:${server.address().port}/`)
  })
})
process.on('SIGTERM', () => hub.close().then(() => server.close()))
