/** Baseline for bench/e2e.ts: a bare Node forwarder — HTTP in, HTTP out, no storage, no mapping. */
import http from 'node:http';

const target = new URL(process.argv[2] ?? 'http://127.0.0.1:9/');
const port = Number(process.argv[3] ?? 0);
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const out = http.request(
      target,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': req.headers['content-type'] ?? 'application/json',
          'content-length': body.length,
        },
      },
      (upstream) => {
        upstream.resume();
        upstream.on('end', () => {
          res.writeHead(202, { 'content-type': 'application/json' });
          res.end('{"status":"forwarded"}');
        });
      },
    );
    out.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    out.end(body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : port}\n`);
});
