// The event stream interpretation of the WHATWG HTML standard (9.2.6), for the fetch transport:
// text in any chunking in, the events a browser's EventSource would dispatch out.

/**
 * @param {(event: string, data: string | null, id: string) => void} onDispatch called at each
 *   blank line: `data` null dispatches no event but still sets the source's last event ID.
 * @param {(ms: number) => void} onRetry
 * @param {string} lastEventId the source's last event ID so far: only an `id:` field changes
 *   it, so it carries over from the previous connection.
 * @returns {(text: string) => void} feeds decoded text; a new parser per connection, since an
 *   incomplete event at the end of a stream is discarded.
 */
export function createParser (onDispatch, onRetry, lastEventId = '') {
  let pending = ''
  // A line that ended in CR at the end of a chunk: an LF starting the next one belongs to it.
  let afterCR = false
  let data = null
  let type = ''
  // The last event ID buffer outlives each event and each connection: an event without `id:`
  // carries the previous one, and a blank line (the hub's opening `:` frame) leaves it as is.
  let id = lastEventId

  const line = (text) => {
    if (text === '') {
      onDispatch(type || 'message', data, id)
      data = null
      type = ''
      return
    }
    const colon = text.indexOf(':')
    if (colon === 0) return
    const field = colon < 0 ? text : text.slice(0, colon)
    const value = colon < 0 ? '' : text.slice(text.charCodeAt(colon + 1) === 32 ? colon + 2 : colon + 1)
    if (field === 'data') data = data === null ? value : `${data}\n${value}`
    else if (field === 'event') type = value
    else if (field === 'id') { if (!value.includes('\0')) id = value } else if (field === 'retry' && /^\d+$/.test(value)) onRetry(Number(value))
  }

  return (chunk) => {
    const text = pending + chunk
    let start = afterCR && pending === '' && text.charCodeAt(0) === 10 ? 1 : 0
    afterCR = false
    const breaks = /[\r\n]/g
    breaks.lastIndex = start
    for (let match; (match = breaks.exec(text)) !== null;) {
      const end = match.index
      line(text.slice(start, end))
      start = end + 1
      if (text.charCodeAt(end) === 13) {
        if (start === text.length) afterCR = true
        else if (text.charCodeAt(start) === 10) start++
        breaks.lastIndex = start
      }
    }
    pending = text.slice(start)
  }
}
