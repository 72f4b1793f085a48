// An independent MQTT broker (the npm package aedes) for the WebSocket
// test: MQTT over TCP on one port (the test's publisher) and MQTT over
// WebSocket with TLS (wss://, path /mqtt, subprotocol mqtt) on another,
// with the test's server certificate. Prints "ready" when both listen.
const fs = require('fs');
const net = require('net');
const https = require('https');
const { WebSocketServer, createWebSocketStream } = require('ws');
const aedes = require('aedes')();

const [tcpPort, wssPort, cert, key] = process.argv.slice(2);
const server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) });
const wss = new WebSocketServer({
  server,
  path: '/mqtt',
  handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : false),
});
wss.on('connection', (ws) => aedes.handle(createWebSocketStream(ws)));
let listening = 0;
const ready = () => { if (++listening === 2) console.log('ready'); };
net.createServer(aedes.handle).listen(Number(tcpPort), '127.0.0.1', ready);
server.listen(Number(wssPort), '127.0.0.1', ready);
process.stdin.on('end', () => process.exit(0)); // the test ended
process.stdin.resume();
