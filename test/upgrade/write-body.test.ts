/**
 * writeBody (src/upgrade/write-body.ts): a release body written from its 'data' events in
 * gathered writes. Every byte once and in order, whatever the chunking; the body paused while
 * a write is out; every failure (the body's, a check's, the file's, an abort) rejects only once
 * no write is under way, with the body destroyed.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { BodyWriteError, unwritten, writeBody } from '../../src/upgrade/write-body.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'overseer-write-body-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A FIFO in the test's dir standing in for a slow disk: the test drains `reader` as it likes. */
function slowDisk(): { reader: number; writer: number } {
  const fifo = path.join(dir, 'slow-disk');
  execFileSync('mkfifo', [fifo]);
  const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  return { reader, writer: fs.openSync(fifo, 'w') };
}

/** Deterministic bytes that differ at every offset, so a dropped or repeated chunk shows. */
function content(size: number): Buffer {
  const data = Buffer.alloc(size);
  for (let offset = 0; offset < size; offset += 4) data.writeUInt32LE(offset >>> 0, offset);
  return data;
}

/** A body pushing `data` in `size`-byte chunks as fast as it is read. */
/** Counts the body's pause() calls from now on. */
function countPauses(body: Readable): () => number {
  let paused = 0;
  const pause = body.pause.bind(body);
  body.pause = () => {
    paused++;
    return pause();
  };
  return () => paused;
}

function bodyOf(data: Buffer, size: number): Readable {
  let offset = 0;
  return new Readable({
    highWaterMark: 4 * size,
    read() {
      if (offset >= data.length) return void this.push(null);
      this.push(data.subarray(offset, offset + size));
      offset += size;
    },
  });
}

async function withFile<T>(work: (fd: number, file: string) => Promise<T>): Promise<T> {
  const file = path.join(dir, 'staged.bin');
  const fd = fs.openSync(file, 'w');
  try {
    return await work(fd, file);
  } finally {
    fs.closeSync(fd);
  }
}

describe('writeBody', () => {
  test('writes every byte once and in order, in batches of `gather`, with odd chunk sizes', async () => {
    const data = content(3 * 1024 * 1024 + 4);
    for (const chunkSize of [1, 7, 65_536, 100_003]) {
      const slice = chunkSize === 1 ? data.subarray(0, 200_000) : data;
      const seen = createHash('sha256');
      let chunks = 0;
      const written = await withFile(async (fd, file) => {
        await writeBody(bodyOf(slice, chunkSize), fd, {
          gather: 512 * 1024,
          onChunk: (chunk) => {
            chunks++;
            seen.update(chunk);
          },
        });
        return readFile(file);
      });
      assert.equal(written.length, slice.length, `chunks of ${chunkSize}`);
      assert.ok(written.equals(slice), `chunks of ${chunkSize}: the file is the body`);
      assert.equal(seen.digest('hex'), createHash('sha256').update(slice).digest('hex'));
      assert.equal(chunks, Math.ceil(slice.length / chunkSize));
    }
  });

  test('pauses the body while a write is out: what it holds stays near two batches', async () => {
    const gather = 64 * 1024;
    const data = content(8 * 1024 * 1024);
    const body = bodyOf(data, 16 * 1024);
    const paused = countPauses(body);
    let seenBytes = 0;
    let heldMost = 0;
    const written = await withFile(async (fd, file) => {
      const size = () => fs.fstatSync(fd).size;
      await writeBody(body, fd, {
        gather,
        onChunk: (chunk) => {
          seenBytes += chunk.length;
          heldMost = Math.max(heldMost, seenBytes - size());
        },
      });
      return readFile(file);
    });
    assert.ok(written.equals(data));
    assert.ok(paused() > 0, 'the body was paused at least once');
    // One batch out, one gathering, one chunk over: anything near the body's size means no backpressure.
    assert.ok(heldMost <= 2 * (gather + 16 * 1024), `held at most ${heldMost} bytes unwritten`);
  });

  test('a slow disk (a pipe drained 16 KiB a turn): held bytes stay near two batches, not the body; onWait marks each pause', { skip: process.platform === 'win32' }, async () => {
    const { reader, writer } = slowDisk();
    try {
      const gather = 64 * 1024;
      const chunkSize = 16 * 1024;
      const data = content(8 * 1024 * 1024);
      // The body offers everything at once: only writeBody's pausing keeps it out of memory.
      const body = bodyOf(data, chunkSize);
      const paused = countPauses(body);
      let seen = 0;
      let drained = 0;
      let heldMost = 0;
      let waits = 0;
      let done = false;
      const received = createHash('sha256');
      const writing = writeBody(body, writer, {
        gather,
        onChunk: (chunk) => {
          seen += chunk.length;
          heldMost = Math.max(heldMost, seen - drained);
        },
        onWait: () => waits++,
      }).finally(() => (done = true));
      // The slow disk: one 16 KiB read per event-loop turn, until every byte came through.
      const scratch = Buffer.alloc(16 * 1024);
      const deadline = Date.now() + 120_000;
      while (drained < data.length) {
        if (Date.now() > deadline) assert.fail(`drained ${drained} of ${data.length} bytes (writeBody ${done ? 'settled' : 'pending'})`);
        try {
          const read = fs.readSync(reader, scratch);
          received.update(scratch.subarray(0, read));
          drained += read;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
      await writing;
      assert.equal(received.digest('hex'), createHash('sha256').update(data).digest('hex'), 'the pipe carried the body, in order');
      // One batch out, one gathering, one chunk over each, and what the pipe holds (64 KiB on
      // Linux, already written): anything near 8 MiB means no backpressure.
      const pipeCapacity = 64 * 1024;
      assert.ok(heldMost <= 2 * (gather + chunkSize) + pipeCapacity, `held at most ${heldMost} bytes not yet read from the pipe`);
      assert.ok(paused() > 0 && waits === paused(), `paused ${paused()} times, onWait called ${waits} times`);
    } finally {
      fs.closeSync(writer);
      fs.closeSync(reader);
    }
  });

  test('a write that fails (ENOSPC on /dev/full): BodyWriteError with the errno, body destroyed', { skip: !fs.existsSync('/dev/full') }, async () => {
    const body = bodyOf(content(2 * 1024 * 1024), 65_536);
    const fd = fs.openSync('/dev/full', 'w');
    try {
      const error = await writeBody(body, fd, { gather: 128 * 1024, onChunk: () => undefined }).then(
        () => assert.fail('writing to /dev/full succeeded'),
        (caught: unknown) => caught,
      );
      assert.ok(error instanceof BodyWriteError, String(error));
      assert.equal(error.cause.code, 'ENOSPC');
      assert.equal(body.destroyed, true);
    } finally {
      fs.closeSync(fd);
    }
  });

  test('a short write into a non-blocking pipe, then EAGAIN on the rest: a BodyWriteError with the errno, the body destroyed, the pipe holding only the first bytes of the body', { skip: process.platform === 'win32' }, async () => {
    const fifo = path.join(dir, 'full-pipe');
    execFileSync('mkfifo', [fifo]);
    const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    // Nobody reads while it writes: the first writev takes what the pipe holds (a short write),
    // the rest, sent again, finds it full (EAGAIN).
    const writer = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    try {
      const data = content(4 * 1024 * 1024);
      const body = bodyOf(data, 64 * 1024);
      const error = await writeBody(body, writer, { gather: 2 * 1024 * 1024, onChunk: () => undefined }).then(
        () => assert.fail('a full pipe took 4 MiB'),
        (caught: unknown) => caught,
      );
      assert.ok(error instanceof BodyWriteError, String(error));
      assert.equal(error.cause.code, 'EAGAIN');
      assert.equal(body.destroyed, true);
      // What the short write took is the body's first bytes, in order, and nothing else.
      const accepted: Buffer[] = [];
      const scratch = Buffer.alloc(64 * 1024);
      for (;;) {
        let read = 0;
        try {
          read = fs.readSync(reader, scratch);
        } catch (caught) {
          if ((caught as NodeJS.ErrnoException).code !== 'EAGAIN') throw caught;
        }
        if (read === 0) break;
        accepted.push(Buffer.from(scratch.subarray(0, read)));
      }
      const taken = Buffer.concat(accepted);
      assert.ok(taken.length > 0 && taken.length < data.length, `the pipe took ${taken.length} bytes`);
      assert.ok(taken.equals(data.subarray(0, taken.length)), 'the pipe holds the first bytes of the body');
    } finally {
      fs.closeSync(writer);
      fs.closeSync(reader);
    }
  });

  test('an onWait that throws rejects with its error and destroys the body', async () => {
    const body = bodyOf(content(8 * 1024 * 1024), 16 * 1024);
    const bug = new Error('pacer bug');
    await withFile((fd) =>
      assert.rejects(
        writeBody(body, fd, {
          gather: 64 * 1024,
          onChunk: () => undefined,
          onWait: () => {
            throw bug;
          },
        }),
        (error: unknown) => error === bug,
      ),
    );
    assert.equal(body.destroyed, true);
  });

  test('a check that throws mid-way rejects with its error, destroys the body, writes no more', async () => {
    const data = content(4 * 1024 * 1024);
    const body = bodyOf(data, 65_536);
    const limit = new Error('over the cap');
    let seen = 0;
    const size = await withFile(async (fd, file) => {
      await assert.rejects(
        writeBody(body, fd, {
          gather: 256 * 1024,
          onChunk: (chunk) => {
            seen += chunk.length;
            if (seen > 1024 * 1024) throw limit;
          },
        }),
        (error: unknown) => error === limit,
      );
      return fs.statSync(file).size;
    });
    assert.equal(body.destroyed, true);
    // Rejected only after the last write ended: nothing lands after the failure.
    assert.ok(size <= 1024 * 1024, `${size} bytes written`);
  });

  test('a failure while a write is out rejects only once that write ended (the caller then closes the fd)', { skip: process.platform === 'win32' }, async () => {
    // A pipe holds 64 KiB: a 128 KiB write stays out until the test reads from the other end.
    const { reader, writer } = slowDisk();
    try {
      const body = bodyOf(content(1024 * 1024), 64 * 1024);
      const bug = new Error('listener bug');
      let chunks = 0;
      let draining = false;
      const writing = writeBody(body, writer, {
        gather: 128 * 1024,
        onChunk: () => {
          if (++chunks === 3) throw bug;
        },
      }).then(
        () => assert.fail('resolved'),
        (error: unknown) => ({ error, draining }),
      );
      // A rejection not held back by the write would settle within these turns.
      for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
      draining = true;
      let settled: Awaited<typeof writing> | undefined;
      void writing.then((outcome) => (settled = outcome));
      const scratch = Buffer.alloc(64 * 1024);
      while (settled === undefined) {
        try {
          fs.readSync(reader, scratch);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(settled.error, bug);
      assert.equal(settled.draining, true, 'rejected while its write was still out');
      assert.equal(body.destroyed, true);
    } finally {
      fs.closeSync(writer);
      fs.closeSync(reader);
    }
  });

  test('a body that errors, or closes without ending, rejects with that error', async () => {
    const broken = new Readable({
      read() {
        this.push(Buffer.alloc(1000, 1));
        this.destroy(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
      },
    });
    await withFile((fd) =>
      assert.rejects(writeBody(broken, fd, { gather: 1024, onChunk: () => undefined }), { code: 'ECONNRESET' }),
    );
    const cut = new Readable({
      read() {
        this.push(Buffer.alloc(1000, 1));
        setImmediate(() => this.destroy());
      },
    });
    await withFile((fd) =>
      assert.rejects(writeBody(cut, fd, { gather: 1024 * 1024, onChunk: () => undefined }), { code: 'ERR_STREAM_PREMATURE_CLOSE' }),
    );
  });

  test('an abort rejects with the reason and destroys the body; an aborted signal writes nothing', async () => {
    const reason = new Error('master stopping');
    const controller = new AbortController();
    const body = new Readable({ read() {} });
    await withFile(async (fd) => {
      const writing = writeBody(body, fd, { gather: 1024, onChunk: () => controller.abort(reason), signal: controller.signal });
      body.push(Buffer.alloc(10, 1));
      await assert.rejects(writing, (error: unknown) => error === reason);
    });
    assert.equal(body.destroyed, true);

    const untouched = bodyOf(content(1024), 512);
    const size = await withFile(async (fd, file) => {
      await assert.rejects(writeBody(untouched, fd, { gather: 1, onChunk: () => undefined, signal: AbortSignal.abort(reason) }), (error: unknown) => error === reason);
      return fs.statSync(file).size;
    });
    assert.equal(size, 0);
    assert.equal(untouched.destroyed, true);
  });

  test('an empty body resolves with nothing written', async () => {
    const size = await withFile(async (fd, file) => {
      await writeBody(Readable.from([]), fd, { gather: 1024, onChunk: () => assert.fail('no chunk expected') });
      return fs.statSync(file).size;
    });
    assert.equal(size, 0);
  });

  test('after a short write, exactly the unwritten bytes go again', () => {
    const chunks = [Buffer.from('abc'), Buffer.from('defg'), Buffer.from('hi')];
    const rest = (written: number) => Buffer.concat(unwritten(chunks, written)).toString();
    assert.equal(rest(0), 'abcdefghi');
    assert.equal(rest(2), 'cdefghi');
    assert.equal(rest(3), 'defghi');
    assert.equal(rest(5), 'fghi');
    assert.equal(rest(7), 'hi');
    assert.equal(rest(8), 'i');
    assert.equal(rest(9), '');
    assert.deepEqual(unwritten([], 0), []);
  });
});
