// A TCP port on 127.0.0.1 that nothing listens on: taken from the kernel (port 0) and released at
// once, so a connection to it is refused. Tests use it for "the endpoint is down".
import { createServer } from 'node:net';

export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}
