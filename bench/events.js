'use strict'

// Event data as applications send it, for the compression scenario: ticker prices, chat
// messages and an LLM's token deltas. Each starts with `<sequence> <publish time µs>`, which
// the load client checks and times; what follows is the JSON such apps put in `data:`. Values
// vary the way real ones do (prices drift, users and words repeat, timestamps count up), so a
// compressor sees no more repetition than it would in production.

const SYMBOLS = ['ACME', 'GLOBX', 'INITECH', 'UMBRL', 'HOOLI', 'STARK', 'WAYNE', 'TYRELL', 'CYBRD', 'MSSYS']
const USERS = [['u_1842', 'Ada Lovelace'], ['u_77', 'Grace Hopper'], ['u_3021', 'Linus T'], ['u_915', 'Margaret H'], ['u_4410', 'Ken Thompson'], ['u_12', 'Barbara Liskov']]
const WORDS = ('the a to of and in that is for it with as was on be at by this had not are but from or have an they which one you were her all she there would their we him been has when who will more no if out so said what up its about into than them can only other new some could time these two may then do first any my now such like our over man me even most made after also did many before must through back years where much your way well down should because each just those people how too little state good very make world still own see men work long get here between both life being under never day same another know while last might us great old year off come since against go came right used take three').split(' ')

/** A small deterministic generator: the same events in every run and every server. */
function random (seed) {
  let state = seed >>> 0
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0
    return state / 2 ** 32
  }
}

const nowMicros = () => Math.round((performance.timeOrigin + performance.now()) * 1000)
const pick = (list, r) => list[Math.floor(r() * list.length)]

/**
 * `next(seq)` of each kind: `{ event, id, data }`; frame sizes as written. Prices (~157 B): a quote per symbol with
 * drifting bid/ask, volume and an ISO time. Chat (~274 B): a message with its room, author and
 * a sentence. Tokens (~159 B): Anthropic-style `content_block_delta`s, a word or two each.
 */
const EVENTS = {
  prices () {
    const r = random(1)
    const last = Object.fromEntries(SYMBOLS.map((s, i) => [s, 50 + i * 37.5]))
    return (seq) => {
      const symbol = pick(SYMBOLS, r)
      last[symbol] = Math.max(1, last[symbol] * (1 + (r() - 0.5) / 500))
      const price = last[symbol]
      const data = JSON.stringify({ symbol, price: +price.toFixed(2), bid: +(price - 0.01).toFixed(2), ask: +(price + 0.01).toFixed(2), volume: Math.floor(r() * 100_000), time: new Date(Date.UTC(2026, 11, 5, 14) + seq * 37).toISOString() })
      return { event: 'price', id: String(seq), data: `${seq} ${nowMicros()} ${data}` }
    }
  },
  chat () {
    const r = random(2)
    return (seq) => {
      const [id, name] = pick(USERS, r)
      const text = Array.from({ length: 6 + Math.floor(r() * 14) }, () => pick(WORDS, r)).join(' ')
      const data = JSON.stringify({ type: 'message', room: 'engineering', message: { id: `msg_${(1_000_000 + seq).toString(36)}`, user: { id, name }, text, sentAt: 1_780_000_000_000 + seq * 1500, reactions: [] } })
      return { event: 'message', id: `msg_${(1_000_000 + seq).toString(36)}`, data: `${seq} ${nowMicros()} ${data}` }
    }
  },
  tokens () {
    const r = random(3)
    return (seq) => {
      const text = r() < 0.3 ? ` ${pick(WORDS, r)} ${pick(WORDS, r)}` : ` ${pick(WORDS, r)}`
      const data = JSON.stringify({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } })
      return { event: 'content_block_delta', id: `run_8f2c:${seq}`, data: `${seq} ${nowMicros()} ${data}` }
    }
  }
}

/** The frame a server writes for `message` (what native-sse writes for it, byte for byte). */
const frame = ({ event, id, data }) => `event: ${event}\nid: ${id}\ndata: ${data}\n\n`

module.exports = { EVENTS, frame }
