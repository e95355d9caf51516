// A UDP service for the lab's internet namespace: answers every datagram with the source address it
// arrived from, so a test can see which address a pod's packet carried after the VPC's NAT.
// Usage: node whoami.mjs ADDRESS PORT. Plain JavaScript so that it starts with node alone.
import { createSocket } from 'node:dgram';

const [address, port] = process.argv.slice(2);
const socket = createSocket('udp4');
socket.on('message', (_msg, from) => socket.send(from.address, from.port, from.address));
socket.bind(Number(port), address, () => process.stdout.write('ready\n'));
