/** The warm-path probe against small servers on a temp socket: a real answer, garbage, silence, no socket. */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkServe, gatherServe } from '../../../src/doctor/serve.js';
import { formatAnswer, parseRequest } from '../../../src/serve/protocol.js';

let dir: string;
let server: Server | undefined;
const open = new Set<Socket>();
const stop = async (): Promise<void> => {
  for (const s of open) s.destroy();
  open.clear();
  if (server) await new Promise<void>((ok) => server!.close(() => ok()));
  server = undefined;
};
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nvr-doctor-serve-'));
  chmodSync(dir, 0o755);
});
afterEach(async () => {
  await stop();
  rmSync(dir, { recursive: true, force: true });
});

async function listen(onRequest: (s: Socket, request: Buffer) => void): Promise<string> {
  const path = join(dir, 'serve.sock');
  server = createServer({ allowHalfOpen: true }, (s) => {
    open.add(s);
    const chunks: Buffer[] = [];
    s.on('data', (c) => chunks.push(c));
    s.on('end', () => onRequest(s, Buffer.concat(chunks)));
  });
  await new Promise<void>((ok) => server!.listen(path, ok));
  chmodSync(path, 0o600);
  return path;
}

test('no socket: INFO, the cold path is used', async () => {
  const f = await gatherServe(join(dir, 'serve.sock'));
  expect(checkServe(f)).toMatchObject({ status: 'INFO', message: expect.stringContaining('cold path') });
});

test('a service answering in the protocol: PASS; the probe is a verb it never plans', async () => {
  let asked: string[] = [];
  const path = await listen((s, req) => {
    const parsed = parseRequest(req);
    if (parsed.ok) asked = parsed.value.args;
    s.end(formatAnswer({ kind: 'cold', reason: 'not a create/run the runtime intercepts' }));
  });
  const c = checkServe(await gatherServe(path));
  expect(c.status).toBe('PASS');
  expect(asked[0]).toBe('state');
});

test('garbage, or silence past the deadline: WARN', async () => {
  const path = await listen((s) => s.end('hello'));
  expect(checkServe(await gatherServe(path))).toMatchObject({ status: 'WARN', message: expect.stringContaining('malformed answer') });
  await stop();
  const quiet = await listen(() => undefined);
  expect(checkServe(await gatherServe(quiet, 200))).toMatchObject({ status: 'WARN', message: expect.stringContaining('no answer within 200 ms') });
});

test('a socket others may write to is one the launcher ignores: WARN; a file in its place: FAIL', async () => {
  const path = await listen((s) => s.end(formatAnswer({ kind: 'cold', reason: 'x' })));
  chmodSync(path, 0o666);
  expect(checkServe(await gatherServe(path))).toMatchObject({ status: 'WARN', message: expect.stringContaining('does not use it') });
  const file = join(dir, 'file.sock');
  writeFileSync(file, '');
  expect(checkServe(await gatherServe(file)).status).toBe('FAIL');
});
