// Asks a whoami service which source address it saw. Usage: node probe.mjs ADDRESS PORT [TIMEOUT_MS]
// Prints the address, or exits 1 when no answer comes in time.
import { createSocket } from 'node:dgram';

const [address, port, timeout = '2000'] = process.argv.slice(2);
const socket = createSocket('udp4');
const timer = setTimeout(() => {
  process.stderr.write(`no answer from ${address}:${port} within ${timeout} ms\n`);
  process.exit(1);
}, Number(timeout));
socket.on('message', (msg) => {
  clearTimeout(timer);
  process.stdout.write(`${msg.toString()}\n`);
  socket.close();
});
socket.send('who am i', Number(port), address);
