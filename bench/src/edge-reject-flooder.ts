/**
 * Child of edge-reject-flood: publishes `size` bytes of garbage `rate` times a second (QoS 1, without
 * waiting for PUBACKs) for `ms`, then prints how many were sent and acknowledged.
 * Arguments: url rate size ms.
 */
import mqtt from 'mqtt';

const [url = '', rate = '250', size = '204800', ms = '10000'] = process.argv.slice(2);
const client = await mqtt.connectAsync(url, { clientId: 'flooder' });
const garbage = Buffer.alloc(Number(size), 'z');
let sent = 0;
let acked = 0;
const interval = 1000 / Number(rate);
const start = performance.now();
const timer = setInterval(() => {
  const due = Math.floor((performance.now() - start) / interval);
  while (sent < due) {
    sent++;
    client.publishAsync('s/bad/t', garbage, { qos: 1 }).then(
      () => acked++,
      () => {},
    );
  }
}, 4);
process.once('SIGTERM', () => {
  console.log(`sent ${sent}, acked ${acked}`);
  process.exit(0);
});
await new Promise((r) => setTimeout(r, Number(ms)));
clearInterval(timer);
console.log(`sent ${sent}, acked ${acked}`);
client.end(true);
process.exit(0);
