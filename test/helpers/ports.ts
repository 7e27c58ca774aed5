/** Ports for tests whose app must be told its port before the master binds it. */
import net from 'node:net';

/** A port free a moment ago (from listen(0) on 127.0.0.1, then closed). */
export async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
