/**
 * compressStates: states on the wire as zstd (STATE_ENCODING_ZSTD). The frames the client makes (one frame, no
 * dictionary, content size declared, level 1), when it sends them (only after the server said it accepts zstd;
 * never for small or incompressible states), and what it does with the server's frames (decoded, or DataLoss),
 * then round trips through the real server, watched by a grpc-js interceptor that records the messages as sent
 * and as received.
 */
import { compress, decompress, init } from "@bokuweb/zstd-wasm";
import { CairnClient, type Checkpoint, Code, DataLossError } from "../src/index.js";
import { SaveRequest, type SaveResponse, StateEncoding } from "../src/gen/cairn/v1/checkpoint_store.js";
import { StateWire, zstdFrameHeader } from "../src/state-wire.js";
import { newThread, Recorder, sharedClient, sharedOptions, target, utf8 } from "./helpers.js";

const ZSTD = StateEncoding.STATE_ENCODING_ZSTD;
const IDENTITY = StateEncoding.STATE_ENCODING_UNSPECIFIED;
const MAX = 128 * 1024 * 1024;

/** A ~37 KB agent-like JSON state (messages, tool calls): compressible, different for every seed. */
function agentState(seed: number, bytes = 37_000): Uint8Array {
  let x = (seed * 2654435761) >>> 0 || 1;
  const rnd = (n: number) => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) % n);
  const words = ["search", "the", "weather", "in", "Paris", "tool", "result", "order", "ticket", "refund", "please",
    "assistant", "user", "price", "flight", "hotel", "booked", "for", "tomorrow", "status", "pending", "done"];
  const text = (n: number) => Array.from({ length: n }, () => words[rnd(words.length)]).join(" ");
  const messages: unknown[] = [];
  for (let size = 0; size < bytes; ) {
    const m = {
      id: `msg-${seed}-${messages.length}-${rnd(1e9).toString(16)}`,
      role: ["user", "assistant", "tool"][rnd(3)],
      content: text(10 + rnd(50)),
      tool_calls: rnd(3) === 0 ? [{ name: `tool_${rnd(9)}`, args: { query: text(4), limit: rnd(100) } }] : [],
    };
    messages.push(m);
    size += JSON.stringify(m).length;
  }
  return utf8(JSON.stringify({ step: seed, messages }));
}

/** Random bytes (zstd cannot shrink them). */
function noise(n: number, seed = 1): Uint8Array {
  let x = seed;
  return Uint8Array.from({ length: n }, () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24);
}

/** Where the zstd frame at the start of `frame` ends: its header, its blocks up to the last one, the checksum. */
function frameLength(frame: Uint8Array): number {
  const descriptor = frame[4]!;
  const singleSegment = (descriptor & 0x20) !== 0;
  let at = 5 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][descriptor & 3]! + [singleSegment ? 1 : 0, 2, 4, 8][descriptor >> 6]!;
  for (;;) {
    const block = frame[at]! | (frame[at + 1]! << 8) | (frame[at + 2]! << 16);
    at += 3 + (((block >> 1) & 3) === 1 ? 1 : block >>> 3); // an RLE block holds 1 byte, the others their size
    if (block & 1) break;
  }
  return at + (descriptor & 0x04 ? 4 : 0);
}

function checkpointOf(state: Uint8Array, fields: Partial<Checkpoint> = {}): Checkpoint {
  return {
    threadId: "t", namespace: "", checkpointId: "c", parentCheckpointId: "", state, stateType: "json",
    metadata: undefined, createdAt: undefined, sequence: 1, nodeName: "", nextNodes: [], stateSizeBytes: state.length,
    storedSizeBytes: 0, stateEncoding: IDENTITY, ...fields,
  };
}

const accepting = (): SaveResponse =>
  ({ checkpointId: "c", sequence: 1, alreadyExisted: false, storedSizeBytes: 0, acceptedStateEncodings: [ZSTD] }) as SaveResponse;

async function dataLoss(promise: Promise<unknown>): Promise<DataLossError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(DataLossError);
  const e = err as DataLossError;
  expect([e.code, e.reason]).toEqual([Code.DATA_LOSS, "STATE_ENCODING"]);
  expect(e.message).toContain('checkpoint "c" of thread "t"');
  return e;
}

await init(); // for the frames these tests make and check themselves

describe("frames the client makes", () => {
  it("are one frame, without a dictionary, declaring the content size, at level 1", async () => {
    const wire = new StateWire(true, MAX);
    wire.saved(accepting());
    for (const state of [agentState(1), agentState(2, 300), agentState(3, 200_000)]) {
      const out = await wire.outgoing(SaveRequest.fromPartial({ checkpoint: { threadId: "t", state } }));
      const frame = out.checkpoint!.state;
      expect(out.checkpoint!.stateEncoding).toBe(ZSTD);
      expect(zstdFrameHeader(frame)).toEqual({ contentSize: state.length, dictionaryId: 0, checksum: false });
      expect(frameLength(frame)).toBe(frame.length); // nothing after the one frame
      expect(frame).toEqual(compress(state, 1));
      expect(decompress(frame)).toEqual(state);
    }
  });

  it("reads every form of the frame header's content size", () => {
    for (const n of [0, 1, 255, 256, 300, 65_791, 65_792, 1 << 20]) {
      expect(zstdFrameHeader(compress(new Uint8Array(n).fill(7), 3)).contentSize).toBe(n);
    }
  });

  it("are sent only once the server said it accepts zstd, and only for large, compressible states", async () => {
    const big = SaveRequest.fromPartial({ checkpoint: { threadId: "t", state: agentState(4) } });
    const off = new StateWire(false, MAX);
    off.saved(accepting());
    expect(off.serverAccepts).toBe(false);
    expect(await off.outgoing(big)).toBe(big);

    const wire = new StateWire(true, MAX);
    expect(await wire.outgoing(big)).toBe(big); // before any SaveResponse
    wire.saved({ ...accepting(), acceptedStateEncodings: [] }); // an older server
    expect(await wire.outgoing(big)).toBe(big);
    wire.saved(accepting());
    expect(wire.serverAccepts).toBe(true);
    wire.saved({ ...accepting(), acceptedStateEncodings: [] }); // a rollback: the latest answer lists nothing
    expect(await wire.outgoing(big)).toBe(big);
    wire.saved(accepting());

    const small = SaveRequest.fromPartial({ checkpoint: { threadId: "t", state: agentState(5, 10).subarray(0, 255) } });
    expect(await wire.outgoing(small)).toBe(small);
    const random = SaveRequest.fromPartial({ checkpoint: { threadId: "t", state: noise(37_000) } });
    expect(await wire.outgoing(random)).toBe(random);
  });

  it("leave the caller's request and state as they were", async () => {
    const wire = new StateWire(true, MAX);
    wire.saved(accepting());
    const state = agentState(6);
    const copy = Uint8Array.from(state);
    const req = SaveRequest.fromPartial({ checkpoint: { threadId: "t", state }, expectedHeadId: "h" });
    const before = structuredClone(req);
    const out = await wire.outgoing(req);
    expect(out).not.toBe(req);
    expect(out.checkpoint).not.toBe(req.checkpoint);
    expect(out.expectedHeadId).toBe("h");
    expect(req).toEqual(before);
    expect(req.checkpoint!.state).toBe(state);
    expect(state).toEqual(copy);
  });

  it("reads ask for zstd only when enabled, on a copy of the request", () => {
    const input: { threadId: string; acceptStateEncodings?: StateEncoding[] } = { threadId: "t" };
    expect(new StateWire(false, MAX).reading(input)).toBe(input);
    const asked = new StateWire(true, MAX).reading(input);
    expect(asked).toEqual({ threadId: "t", acceptStateEncodings: [ZSTD] });
    expect(input).toEqual({ threadId: "t" });
  });
});

describe("frames the server sends", () => {
  const state = agentState(7);
  const frame = compress(state, 3);
  const wire = new StateWire(true, MAX);
  const zstdCp = (fields: Partial<Checkpoint> = {}) => checkpointOf(frame, { stateSizeBytes: state.length, stateEncoding: ZSTD, ...fields });

  it("are decoded to the raw state; identity answers are taken as they are", async () => {
    const got = await wire.checkpoint(zstdCp());
    expect(got.state).toBeInstanceOf(Buffer);
    expect(got.state).toEqual(Buffer.from(state));
    expect(got.stateEncoding).toBe(IDENTITY);
    const plain = checkpointOf(state);
    expect(await wire.checkpoint(plain)).toBe(plain);
  });

  it("are left alone when compressStates is off (the client did not ask for them)", async () => {
    const cp = zstdCp();
    expect(await new StateWire(false, MAX).checkpoint(cp)).toBe(cp);
  });

  it("that are corrupt or truncated are DataLoss", async () => {
    const garbage = Uint8Array.from([0x28, 0xb5, 0x2f, 0xfd, ...utf8(" garbage")]);
    expect((await dataLoss(wire.checkpoint(zstdCp({ state: garbage })))).message).toContain("does not decompress");
    await dataLoss(wire.checkpoint(zstdCp({ state: frame.subarray(0, frame.length - 7) })));
    await dataLoss(wire.checkpoint(zstdCp({ state: frame.subarray(0, 6) })));
    const corrupt = Uint8Array.from(frame);
    corrupt.fill(0xff, 20, 40);
    await dataLoss(wire.checkpoint(zstdCp({ state: corrupt })));
    expect((await dataLoss(wire.checkpoint(zstdCp({ state: utf8("{}") })))).message).toContain("not a zstd frame");
  });

  it("whose declared size is not state_size_bytes are DataLoss", async () => {
    const err = await dataLoss(wire.checkpoint(zstdCp({ stateSizeBytes: state.length + 1 })));
    expect(err.message).toContain(`the frame declares ${state.length} bytes, state_size_bytes is ${state.length + 1}`);
    await dataLoss(wire.checkpoint(zstdCp({ stateSizeBytes: state.length - 1 })));
    const small = new StateWire(true, 1000); // bounded by the client's maxMessageBytes too
    expect((await dataLoss(small.checkpoint(zstdCp()))).message).toContain("maxMessageBytes 1000");
  });

  it("that declare no content size, or name a dictionary, are DataLoss", async () => {
    const header = zstdFrameHeader(frame);
    expect(frame[4]).toBe(0x60); // single segment, 2-byte content size (what level 3 writes for 37 KB)
    const blocks = frame.subarray(5 + 2);
    // The same blocks under a header without the size: window 64 KiB (descriptor 0x30), no content size.
    const undeclared = Uint8Array.from([...frame.subarray(0, 4), 0x00, 0x30, ...blocks]);
    expect(zstdFrameHeader(undeclared).contentSize).toBeUndefined();
    expect(decompress(undeclared)).toEqual(state); // a valid frame, only the declaration is missing
    const err = await dataLoss(wire.checkpoint(zstdCp({ state: undeclared })));
    expect(err.message).toContain("does not declare its content size");
    const named = Uint8Array.from([...frame.subarray(0, 4), 0x61, 7, ...frame.subarray(5)]);
    expect(zstdFrameHeader(named)).toEqual({ ...header, dictionaryId: 7 });
    expect((await dataLoss(wire.checkpoint(zstdCp({ state: named })))).message).toContain("names dictionary 7");
  });

  it("in an encoding the client does not know are DataLoss", async () => {
    const err = await dataLoss(wire.checkpoint(zstdCp({ stateEncoding: 9 as StateEncoding })));
    expect(err.message).toContain("state_encoding 9");
  });
});

describe("a compressing client against the server", () => {
  const rec = new Recorder();
  const client = new CairnClient(target(), { ...sharedOptions(), compressStates: true, channelOptions: { interceptors: [rec.interceptor] } });
  const plain = sharedClient();
  afterAll(() => client.close());

  it("round-trips save, saveStream, load, list and batchLoad, sending zstd once the server accepts it", async () => {
    const threadId = newThread("zstd");
    // Buffers, as the client gives states back (from the generated decoder, and from zstd alike).
    const states = [1, 2, 3, 4].map((i) => Buffer.from(agentState(100 + i)));
    const streamed = [5, 6, 7].map((i) => Buffer.from(agentState(100 + i)));
    expect(Math.min(...states.map((s) => s.length))).toBeGreaterThan(36_000);

    const ids: string[] = [];
    for (const state of states) {
      const input = { threadId, state, stateType: "json", parentCheckpointId: ids.at(-1) ?? "" };
      const saved = await client.save(input);
      expect(input.state).toBe(state); // the caller's object is left alone
      expect(Object.keys(input)).not.toContain("stateEncoding");
      ids.push(saved.checkpointId);
    }
    for await (const r of client.saveStream(streamed.map((state) => ({ checkpoint: { threadId, state, stateType: "json" } })))) {
      expect(r).not.toBeInstanceOf(Error);
      ids.push((r as SaveResponse).checkpointId);
    }
    const all = [...states, ...streamed];

    // The first save went as is (the server had not said yet); every later one as one zstd frame of the state.
    const wire = [...rec.savedCheckpoints("Save"), ...rec.savedCheckpoints("SaveStream")];
    expect(wire.map((c) => c.stateEncoding)).toEqual([IDENTITY, ZSTD, ZSTD, ZSTD, ZSTD, ZSTD, ZSTD]);
    expect(wire[0]!.state).toEqual(all[0]);
    for (const [i, c] of wire.entries()) {
      if (i === 0) continue;
      expect(c.state.length).toBeLessThan(all[i]!.length / 2);
      expect(zstdFrameHeader(c.state).contentSize).toBe(all[i]!.length);
      expect(Buffer.from(decompress(c.state))).toEqual(all[i]);
    }

    const head = await client.load({ threadId });
    expect(head.checkpoint.state).toBeInstanceOf(Buffer);
    expect(head.checkpoint.state).toEqual(all.at(-1));
    expect(head.checkpoint.stateEncoding).toBe(IDENTITY);
    for (const [i, id] of ids.entries()) expect((await client.load({ threadId, checkpointId: id })).checkpoint.state).toEqual(all[i]);
    const page = await client.list({ threadId, includeState: true, pageSize: 100 });
    expect(page.checkpoints.map((c) => c.state)).toEqual([...all].reverse());
    const batch = await client.batchLoad(ids.map((checkpointId) => ({ threadId, checkpointId })));
    expect(batch.map((r) => (r as { checkpoint: Checkpoint }).checkpoint.state)).toEqual(all);

    // Reads asked for zstd and got it on the wire.
    for (const method of ["Load", "List", "BatchLoad"] as const) {
      const asked = rec.sent
        .filter((s) => s.method === method)
        .map((s) => s.message as { acceptStateEncodings: number[]; loads?: Array<{ acceptStateEncodings: number[] }> })
        .flatMap((m) => m.loads?.map((l) => l.acceptStateEncodings) ?? [m.acceptStateEncodings]);
      expect(new Set(asked.map((a) => JSON.stringify(a)))).toEqual(new Set([JSON.stringify([ZSTD])]));
      const got = rec.readCheckpoints(method);
      expect(got.length).toBeGreaterThan(0);
      expect(got.every((c) => c.stateEncoding === ZSTD)).toBe(true);
    }

    // A client that never asks for zstd reads the same bytes.
    for (const [i, id] of ids.entries()) {
      const { checkpoint } = await plain.load({ threadId, checkpointId: id });
      expect([checkpoint.stateEncoding, checkpoint.state]).toEqual([IDENTITY, all[i]]);
    }
    const plainPage = await plain.list({ threadId, includeState: true, pageSize: 100 });
    expect(plainPage.checkpoints.map((c) => c.state)).toEqual([...all].reverse());
  });

  it("keeps small and incompressible states as they are, and reads them back", async () => {
    const threadId = newThread("zstd");
    await client.save({ threadId, state: agentState(8) }); // the server says it accepts zstd (if no test did before)
    rec.clear();
    const small = Buffer.from('{"step":1}');
    const random = Buffer.from(noise(37_000, 9));
    await client.save({ threadId, state: small, stateType: "json" });
    await client.save({ threadId, state: random, stateType: "bytes" });
    expect(rec.savedCheckpoints().map((c) => [c.stateEncoding, c.state.length])).toEqual([[IDENTITY, small.length], [IDENTITY, random.length]]);
    const page = await client.list({ threadId, includeState: true });
    expect(page.checkpoints.slice(0, 2).map((c) => c.state)).toEqual([random, small]);
    expect((await client.load({ threadId })).checkpoint.state).toEqual(random);
  });

  it("stores a compressed retry of a plain save as the same checkpoint", async () => {
    const threadId = newThread("zstd");
    const state = agentState(10);
    await client.save({ threadId, state: agentState(11) }); // the server has said it accepts zstd
    const first = await plain.save({ threadId, checkpointId: "cp-1", state });
    rec.clear();
    const retry = await client.save({ threadId, checkpointId: "cp-1", state });
    expect(rec.savedCheckpoints()[0]!.stateEncoding).toBe(ZSTD);
    expect([retry.alreadyExisted, retry.sequence]).toEqual([true, first.sequence]);
  });
});
