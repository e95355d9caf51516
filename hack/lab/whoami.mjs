// The lab internet's whoami services: UDP on PORT answers every datagram with the source address it came
// from, and HTTP on port 80 answers every request with the caller's address, so a test (or `wget -qO-`
// from a pod) sees which address a pod's packets carried after the VPC's NAT.
// Usage: node whoami.mjs ADDRESS PORT. Plain JavaScript so that it starts with node alone.
import { createSocket } from 'node:dgram';
import { createServer } from 'node:http';

const [address, port] = process.argv.slice(2);
const socket = createSocket('udp4');
socket.on('message', (_msg, from) => socket.send(from.address, from.port, from.address));
const http = createServer((req, res) => {
  res.setHeader('Content-Type', 'text/plain');
  res.setHeader('Connection', 'close');
  res.end(`${req.socket.remoteAddress}\n`);
});
let ready = 0;
const up = () => ++ready === 2 && process.stdout.write('ready\n');
socket.bind(Number(port), address, up);
http.listen(80, address, up);
