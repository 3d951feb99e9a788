'use strict'

// Which clients get a gzip stream (`createHub({ compression })`). The bytes are the core's
// (crates/core/src/gzip.rs): each channel's events are compressed once, for every client of
// the channel, so a compressed client costs no compressor. Here only the head is decided:
// `Content-Encoding: gzip` for a client that accepts it, and `Vary: Accept-Encoding` on every
// stream of a compressing hub, so a cache never gives one client's encoding to another.

/**
 * Whether an `Accept-Encoding` header allows gzip: `gzip` (or `x-gzip`) with a weight above 0,
 * or `*` above 0 where gzip is not refused by name (RFC 9110, 12.5.3).
 */
function acceptsGzip (header) {
  if (typeof header !== 'string' || header === '') return false
  let named = null
  let any = null
  for (const part of header.split(',')) {
    const [coding, ...params] = part.split(';')
    const name = coding.trim().toLowerCase()
    let weight = 1
    for (const param of params) {
      const [key, value] = param.split('=')
      if (key.trim().toLowerCase() === 'q') weight = Number(value)
    }
    const accepted = Number.isFinite(weight) && weight > 0
    if (name === 'gzip' || name === 'x-gzip') named = accepted
    else if (name === '*') any = accepted
  }
  return named ?? any ?? false
}

/** `vary` with Accept-Encoding added (once), for a head whose encoding depends on it. */
function varyOnEncoding (vary) {
  const given = Array.isArray(vary) ? vary.join(', ') : vary == null ? '' : String(vary)
  if (given.split(',').some((name) => name.trim().toLowerCase() === 'accept-encoding' || name.trim() === '*')) return given
  return given === '' ? 'Accept-Encoding' : `${given}, Accept-Encoding`
}

module.exports = { acceptsGzip, varyOnEncoding }
