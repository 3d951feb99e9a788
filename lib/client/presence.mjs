// Who is in each channel, as the hub's presence events tell it (native-sse/client).

/** [user, data] entries as the members they are. */
const asMembers = (entries) => entries.map(([user, data]) => ({ user, data }))

/** channel -> Map(user -> data), kept from the hub's snapshots and changes. */
export class PresenceLists {
  #lists = new Map()

  /** Who is in `channel` now, as `{ user, data }`. */
  members (channel) {
    return asMembers([...this.#lists.get(channel) ?? []])
  }

  /** The channel's grant ended: its presence events stop, and a list kept would go stale. */
  forget (channel) {
    this.#lists.delete(channel)
  }

  /**
   * A presence event applied to its channel's list: a snapshot (each new connection gets one)
   * replaces it, a change edits it. Returns what onPresence is told; `joins` and `leaves` are
   * the difference from the list before, so a snapshot after a reconnect says who came and went
   * meanwhile, and a leave carries the member's data.
   */
  apply ({ channel, members, joins, leaves, snapshot = false }) {
    const before = this.#lists.get(channel) ?? new Map()
    const after = new Map(snapshot ? [] : before)
    for (const user of leaves ?? []) after.delete(user)
    for (const { user, data } of members ?? joins) after.set(user, data)
    this.#lists.set(channel, after)
    const missing = (from, to) => asMembers([...from].filter(([user]) => !to.has(user)))
    return { channel, members: this.members(channel), joins: missing(after, before), leaves: missing(before, after), snapshot }
  }
}
