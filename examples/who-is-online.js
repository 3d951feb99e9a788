// Who is online: a page per room listing, live, the users whose pages are open in it. Open
// http://127.0.0.1:3000/?room=lobby&user=ann in a tab or two, and the same with other users: a
// user's tabs are one member, and its last tab closed takes it off every list within a second.
const path = require('node:path')
const express = require('express')
const { createHub } = require('native-sse')

const hub = createHub({ heartbeatMs: 15_000 })
hub.presence('room:{room}')
const app = express()

// The browser client, served as it is, without a bundler (docs/CLIENT.md).
app.use('/native-sse', express.static(path.dirname(require.resolve('native-sse/client'))))
app.get('/', (req, res) => res.sendFile(path.join(__dirname, 'who-is-online.html')))
app.get('/events', (req, res) => {
  // A demo takes the user from the URL; an app takes it from its session (docs/AUTHORIZATION.md).
  const { room = 'lobby', user } = req.query
  hub.attach(req, res, { channels: ['room:' + room], user })
})

const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/`)
})
process.on('SIGTERM', () => hub.close().then(() => server.close()))
