/**
 * saveBatch, and the coalescing of concurrent save() and load() calls into SaveBatch and BatchLoad calls
 * (coalesce.ts): per-item outcomes, fewer calls than saves (4 concurrent saves too), each caller's own deadline
 * and signal, the fallbacks, close(), and coalesce: 0. Against the shared server, except: a server older than
 * SaveBatch and one that holds calls until the test lets them go (in-process grpc-js servers), and servers taking
 * fewer items (--max-batch-items 3) or smaller messages (--max-state-bytes 200000) than the client's batches.
 */
import { randomBytes, randomUUID } from "node:crypto";
import {
  InterceptingCall,
  type Interceptor,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type sendUnaryData,
  status,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import {
  AlreadyExistsError,
  CairnClient,
  type CairnClientOptions,
  CairnError,
  CancelledError,
  Code,
  ConflictError,
  DeadlineExceededError,
  InvalidArgumentError,
  NotFoundError,
  type SaveResponse,
} from "../src/index.js";
import {
  BatchLoadResponse,
  type Checkpoint,
  CheckpointStoreService,
  type LoadRequest,
  LoadResponse,
  type SaveRequest,
} from "../src/gen/cairn/v1/checkpoint_store.js";
import { emptyCheckpoint, uuid6 } from "@langchain/langgraph-checkpoint";
import { CairnSaver } from "../src/langgraph.js";
import { newThread, Recorder, sharedClient, sharedOptions, startServer, target, utf8 } from "./helpers.js";
import type { Coalescer } from "../src/coalesce.js";

const plain = sharedClient({ coalesce: 0 });

/** A client of the shared server that records its calls; closed after the file's tests. */
function recordedClient(options: CairnClientOptions = {}, interceptors: Interceptor[] = []): { client: CairnClient; rec: Recorder } {
  const rec = new Recorder();
  const client = new CairnClient(target(), {
    ...sharedOptions(),
    ...options,
    channelOptions: { interceptors: [...interceptors, rec.interceptor] },
  });
  afterAll(() => client.close());
  return { client, rec };
}

/** The calls of each RPC the recorder saw, and the items they carried. */
type Sent = Partial<SaveRequest> & { saves?: SaveRequest[]; loads?: LoadRequest[] };
function calls(rec: Recorder, method: string): Sent[] {
  return rec.sent.filter((s) => s.method === method).map((s) => s.message as Sent);
}

/** An interceptor holding back the start of every call of `methods` by `ms`: a slow server, as the client sees it. */
function delaying(ms: number, methods: string[]): Interceptor {
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start: (metadata, listener, next) => {
        const method = options.method_definition.path.split("/").pop()!;
        if (methods.includes(method)) setTimeout(() => next(metadata, listener), ms);
        else next(metadata, listener);
      },
    });
}

/** The promise's outcome: its value, or the error it rejected with. */
const settled = <T>(p: Promise<T>): Promise<T | unknown> => p.then((v) => v, (e: unknown) => e);

const state = (i: number): Uint8Array => utf8(JSON.stringify({ i, pad: "x".repeat(100) }));

describe("saveBatch", () => {
  it("answers each save in order; a failed item fails alone", async () => {
    const busy = newThread("batch");
    const head = await plain.save({ threadId: busy, checkpointId: "head", state: utf8("h") });
    const fresh = newThread("batch");
    const results = await plain.saveBatch([
      { checkpoint: { threadId: fresh, state: utf8("a"), stateType: "json", metadata: { step: 1 } } },
      { checkpoint: { threadId: busy, state: utf8("b") }, expectEmpty: true }, // the thread has a head
      { checkpoint: { threadId: busy, checkpointId: "head", state: utf8("other") } }, // same id, other content
      { checkpoint: { threadId: "", state: utf8("c") } },
      { checkpoint: { threadId: busy, state: utf8("d"), parentCheckpointId: "head" }, expectedHeadId: "head" },
    ]);
    expect(results).toHaveLength(5);
    const [ok, conflict, exists, invalid, cas] = results;
    expect(ok).not.toBeInstanceOf(CairnError);
    expect((ok as SaveResponse).alreadyExisted).toBe(false);
    expect(conflict).toBeInstanceOf(ConflictError);
    expect((conflict as ConflictError).currentHeadId).toBe(head.checkpointId);
    expect(exists).toBeInstanceOf(AlreadyExistsError);
    expect((exists as AlreadyExistsError).reason).toBe("CHECKPOINT_ID_CONFLICT");
    expect(invalid).toBeInstanceOf(InvalidArgumentError);
    expect((invalid as InvalidArgumentError).field).toContain("thread_id");
    expect(cas).not.toBeInstanceOf(CairnError);

    const loaded = await plain.load({ threadId: fresh });
    expect(loaded.checkpoint.checkpointId).toBe((ok as SaveResponse).checkpointId);
    expect(loaded.checkpoint.metadata).toEqual({ step: 1 });
    expect((await plain.load({ threadId: busy })).checkpoint.checkpointId).toBe((cas as SaveResponse).checkpointId);
    expect(Buffer.from((await plain.load({ threadId: busy, checkpointId: "head" })).checkpoint.state).toString()).toBe("h");
    expect(await plain.saveBatch([])).toEqual([]);
  });

  it("applies saves of one thread in request order", async () => {
    const threadId = newThread("batch");
    const results = await plain.saveBatch(
      [0, 1, 2, 3].map((i) => ({ checkpoint: { threadId, checkpointId: `cp-${i}`, state: state(i) } })),
    );
    expect(results.map((r) => (r as SaveResponse).checkpointId)).toEqual(["cp-0", "cp-1", "cp-2", "cp-3"]);
    expect((await plain.load({ threadId })).checkpoint.checkpointId).toBe("cp-3");
  });
});

describe("coalescing concurrent calls", () => {
  it("sends many concurrent saves as fewer calls, each save with its own outcome", async () => {
    const { client, rec } = recordedClient();
    const threads = Array.from({ length: 32 }, () => newThread("co"));
    const taken = newThread("co");
    const head = await client.save({ threadId: taken, state: utf8("first") });
    rec.clear();

    const outcomes = await Promise.all([
      ...threads.map((threadId, i) => settled(client.save({ threadId, state: state(i), stateType: "json" }))),
      settled(client.save({ threadId: taken, state: utf8("second") }, { expectEmpty: true })),
    ]);
    const conflict = outcomes.pop();
    expect(conflict).toBeInstanceOf(ConflictError);
    expect((conflict as ConflictError).currentHeadId).toBe(head.checkpointId);
    for (const o of outcomes) expect(o).not.toBeInstanceOf(Error);

    const batches = calls(rec, "SaveBatch");
    const singles = calls(rec, "Save");
    expect(batches.length).toBeGreaterThan(0);
    expect(batches.length + singles.length).toBeLessThan(33);
    const sentIds = [...batches.flatMap((b) => b.saves!), ...singles].map((s) => s.checkpoint!.checkpointId);
    expect(sentIds).toHaveLength(33);
    expect(new Set(sentIds).size).toBe(33); // every save sent once
    for (const o of outcomes) expect(sentIds).toContain((o as SaveResponse).checkpointId);

    // Each save is stored, as its own caller was told.
    const loaded = await plain.batchLoad(threads.map((threadId) => ({ threadId })));
    expect(loaded.map((l) => (l as { checkpoint: Checkpoint }).checkpoint.checkpointId)).toEqual(
      outcomes.map((o) => (o as SaveResponse).checkpointId),
    );
    expect((await plain.load({ threadId: taken })).checkpoint.checkpointId).toBe(head.checkpointId);
  });

  it("sends many concurrent loads as BatchLoad calls, each load with its own outcome", async () => {
    const { client, rec } = recordedClient();
    const threads = Array.from({ length: 24 }, () => newThread("co"));
    const saved = await plain.saveBatch(threads.map((threadId, i) => ({ checkpoint: { threadId, state: state(i) } })));
    const missing = newThread("co");
    const outcomes = await Promise.all([...threads, missing].map((threadId) => settled(client.load({ threadId }))));
    const notFound = outcomes.pop();
    expect(notFound).toBeInstanceOf(NotFoundError);
    expect((notFound as NotFoundError).reason).toBe("THREAD_EMPTY");
    expect(outcomes.map((o) => (o as { checkpoint: Checkpoint }).checkpoint.checkpointId)).toEqual(
      saved.map((s) => (s as SaveResponse).checkpointId),
    );
    expect(outcomes.map((o) => Buffer.from((o as { checkpoint: Checkpoint }).checkpoint.state).toString())).toEqual(
      threads.map((_, i) => Buffer.from(state(i)).toString()),
    );
    const batches = calls(rec, "BatchLoad");
    expect(batches.length).toBeGreaterThan(0);
    expect(batches.length + calls(rec, "Load").length).toBeLessThan(25);
  });

  it("sends a lone call as the unary call, without waiting", async () => {
    const { client, rec } = recordedClient();
    const threadId = newThread("co");
    for (let i = 0; i < 3; i++) await client.save({ threadId, state: state(i) });
    await client.load({ threadId });
    expect(rec.sent.map((s) => s.method)).toEqual(["Save", "Save", "Save", "Load"]);
  });

  it("keeps each caller's deadline and signal: an item past its own deadline rejects, the rest of its batch is saved", async () => {
    // One call in flight at a time, each held back 400 ms: the three saves below leave as one SaveBatch.
    const { client, rec } = recordedClient({ coalesce: 1 }, [delaying(400, ["Save", "SaveBatch"])]);
    const [a, b, c, d] = Array.from({ length: 4 }, () => newThread("deadline"));
    const controller = new AbortController();
    const order: string[] = [];
    const early = settled(client.save({ threadId: b!, state: utf8("b") }, { deadlineMs: 100 }).finally(() => order.push("b")));
    const aborted = settled(client.save({ threadId: d!, state: utf8("d") }, { signal: controller.signal }));
    const ok1 = client.save({ threadId: a!, state: utf8("a") }).finally(() => order.push("a"));
    const ok2 = client.save({ threadId: c!, state: utf8("c") });
    setTimeout(() => controller.abort("gone"), 50);
    const expired = await early;
    expect(expired).toBeInstanceOf(DeadlineExceededError);
    expect((expired as DeadlineExceededError).code).toBe(Code.DEADLINE_EXCEEDED);
    const cancelled = await aborted;
    expect(cancelled).toBeInstanceOf(CancelledError);
    expect((cancelled as CancelledError).cause).toBe("gone");
    const [savedA, savedC] = await Promise.all([ok1, ok2]);
    expect(order).toEqual(["b", "a"]); // b did not wait for its batch's answer
    expect(calls(rec, "SaveBatch").map((batch) => batch.saves!.length)).toEqual([4]);
    expect(calls(rec, "Save")).toEqual([]);
    expect((await plain.load({ threadId: a! })).checkpoint.checkpointId).toBe(savedA.checkpointId);
    expect((await plain.load({ threadId: c! })).checkpoint.checkpointId).toBe(savedC.checkpointId);

    // Calls still queued when their deadline passes reject without being sent; the next batch leaves them out.
    rec.clear();
    const first = client.save({ threadId: a!, state: utf8("a2") }); // in flight for 400 ms
    await new Promise((resolve) => setImmediate(resolve));
    const queued = [1, 2].map((i) =>
      settled(client.save({ threadId: b!, checkpointId: `never-sent-${i}`, state: utf8("b2") }, { deadlineMs: 50 })),
    );
    const live = client.save({ threadId: c!, checkpointId: "c2", state: utf8("c2") });
    for (const q of queued) expect(await q).toBeInstanceOf(DeadlineExceededError);
    await Promise.all([first, live]);
    const sent = [...calls(rec, "Save"), ...calls(rec, "SaveBatch").flatMap((batch) => batch.saves!)];
    expect(sent.map((save) => save.checkpoint!.checkpointId)).toEqual([(await first).checkpointId, "c2"]);
    expect(calls(rec, "SaveBatch")).toEqual([]); // the live one went alone
  });

  it("rejects a call whose signal fired before it was made, and a deadline already passed", async () => {
    const { client } = recordedClient();
    const reason = new Error("stop");
    const pre = await settled(client.save({ threadId: newThread("co"), state: utf8("x") }, { signal: AbortSignal.abort(reason) }));
    expect(pre).toBeInstanceOf(CancelledError);
    expect((pre as CancelledError).cause).toBe(reason);
    expect(await settled(client.save({ threadId: newThread("co"), state: utf8("x") }, { deadlineMs: -1 }))).toBeInstanceOf(DeadlineExceededError);
  });

  it("sends every call on its own with coalesce: 0", async () => {
    const { client, rec } = recordedClient({ coalesce: 0 });
    const threads = Array.from({ length: 16 }, () => newThread("off"));
    await Promise.all(threads.map((threadId, i) => client.save({ threadId, state: state(i) })));
    await Promise.all(threads.map((threadId) => client.load({ threadId })));
    expect(calls(rec, "Save")).toHaveLength(16);
    expect(calls(rec, "Load")).toHaveLength(16);
    expect(calls(rec, "SaveBatch")).toHaveLength(0);
    expect(calls(rec, "BatchLoad")).toHaveLength(0);
  });

  it("refuses a coalesce that is not an integer >= 0", () => {
    expect(() => new CairnClient(target(), { coalesce: -1 })).toThrow(RangeError);
    expect(() => new CairnClient(target(), { coalesce: 1.5 })).toThrow(/coalesce must be an integer >= 0/);
  });
});

/** An in-process grpc-js server with `impl` (grpc-js answers UNIMPLEMENTED for the methods left out), and a
 * recorded client of it; both closed after the describe block's tests. */
function fakeServer(impl: UntypedServiceImplementation): { client: () => CairnClient; rec: Recorder } {
  const server = new Server();
  const rec = new Recorder();
  let client: CairnClient | undefined;
  beforeAll(async () => {
    server.addService(CheckpointStoreService, impl);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    client = new CairnClient(`127.0.0.1:${port}`, { channelOptions: { interceptors: [rec.interceptor] } });
  });
  afterAll(async () => {
    client?.close();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  });
  return { client: () => client!, rec };
}

describe("CairnSaver", () => {
  it("puts and reads the checkpoints of concurrent graphs through SaveBatch and BatchLoad calls", async () => {
    const { client, rec } = recordedClient();
    const saver = new CairnSaver(client);
    const threads = Array.from({ length: 16 }, () => newThread("saver-co"));
    const checkpoints = threads.map((_, i) => ({ ...emptyCheckpoint(), id: uuid6(-1), channel_values: { i }, channel_versions: { i: 1 } }));
    const configs = await Promise.all(
      threads.map((thread_id, i) =>
        saver.put({ configurable: { thread_id } }, checkpoints[i]!, { source: "loop", step: i, parents: {} }, { i: 1 }),
      ),
    );
    const tuples = await Promise.all(configs.map((config) => saver.getTuple(config)));
    expect(tuples.map((t) => t?.checkpoint)).toEqual(checkpoints);
    expect(tuples.map((t) => t?.metadata?.step)).toEqual(threads.map((_, i) => i));
    expect(calls(rec, "SaveBatch").length).toBeGreaterThan(0);
    expect(calls(rec, "BatchLoad").length).toBeGreaterThan(0);
  });
});

describe("a server without SaveBatch", () => {
  // A server older than SaveBatch and BatchLoad: only Save and Load, in memory.
  const stored = new Map<string, Checkpoint>();
  const served: string[] = [];
  const { client: fake, rec } = fakeServer({
    save(call: ServerUnaryCall<SaveRequest, SaveResponse>, callback: sendUnaryData<SaveResponse>) {
      served.push("Save");
      const cp = call.request.checkpoint!;
      stored.set(cp.threadId, cp);
      callback(null, {
        checkpointId: cp.checkpointId,
        sequence: stored.size,
        createdAt: new Date(),
        alreadyExisted: false,
        storedSizeBytes: cp.state.length,
        acceptedStateEncodings: [],
      });
    },
    load(call: ServerUnaryCall<LoadRequest, LoadResponse>, callback: sendUnaryData<LoadResponse>) {
      served.push("Load");
      const cp = stored.get(call.request.threadId);
      if (!cp) callback({ code: status.NOT_FOUND, details: "no checkpoint" });
      else callback(null, { checkpoint: { ...cp, stateSizeBytes: cp.state.length }, pendingWrites: [] });
    },
  });

  it("gets each coalesced save and load on its own after the first batch call's UNIMPLEMENTED", async () => {
    const client = fake();
    const threads = Array.from({ length: 12 }, () => `old-${randomUUID()}`);
    const saved = await Promise.all(threads.map((threadId, i) => client.save({ threadId, state: state(i) })));
    expect(saved.map((s) => s.checkpointId)).toEqual(threads.map((t) => stored.get(t)!.checkpointId));
    expect(calls(rec, "SaveBatch").length).toBeGreaterThan(0); // tried, answered UNIMPLEMENTED
    expect(served.filter((m) => m === "Save")).toHaveLength(12);

    const loaded = await Promise.all(threads.map((threadId) => client.load({ threadId })));
    expect(loaded.map((l) => l.checkpoint.checkpointId)).toEqual(saved.map((s) => s.checkpointId));
    expect(served.filter((m) => m === "Load")).toHaveLength(12);

    // From now on every call goes on its own: no further batch call.
    rec.clear();
    await Promise.all(threads.map((threadId, i) => client.save({ threadId, state: state(i + 100) })));
    await Promise.all(threads.map((threadId) => client.load({ threadId })));
    expect(rec.sent.map((s) => s.method).sort()).toEqual([...Array(12).fill("Load"), ...Array(12).fill("Save")]);
  });

  it("rejects an explicit saveBatch with UNIMPLEMENTED", async () => {
    const err = await settled(fake().saveBatch([{ checkpoint: { threadId: "old-x", state: utf8("x") } }]));
    expect(err).toBeInstanceOf(CairnError);
    expect((err as CairnError).code).toBe(Code.UNIMPLEMENTED);
  });
});

describe("a BatchLoad item refused for its batch's response budget", () => {
  // A server whose BatchLoad answers only the first item and refuses the rest with RESOURCE_EXHAUSTED, as the
  // real one does for items past its response budget; a Load of its own fits.
  const served: string[] = [];
  const loaded = (threadId: string): LoadResponse =>
    LoadResponse.fromPartial({
      checkpoint: { threadId, checkpointId: `cp-${threadId}`, state: utf8(threadId), stateSizeBytes: threadId.length },
    });
  const { client: fake, rec } = fakeServer({
    batchLoad(call: ServerUnaryCall<{ loads: LoadRequest[] }, BatchLoadResponse>, callback: sendUnaryData<BatchLoadResponse>) {
      served.push("BatchLoad");
      const [head, ...rest] = call.request.loads;
      const error = { code: status.RESOURCE_EXHAUSTED, message: "over the response budget", reason: "LIMIT_EXCEEDED", metadata: {} };
      callback(null, BatchLoadResponse.fromPartial({ results: [{ load: loaded(head!.threadId) }, ...rest.map(() => ({ error }))] }));
    },
    load(call: ServerUnaryCall<LoadRequest, LoadResponse>, callback: sendUnaryData<LoadResponse>) {
      served.push("Load");
      callback(null, loaded(call.request.threadId));
    },
  });

  it("is loaded again on its own", async () => {
    const threads = Array.from({ length: 12 }, (_, i) => `budget-${i}`);
    const results = await Promise.all(threads.map((threadId) => fake().load({ threadId })));
    expect(results.map((r) => r.checkpoint.checkpointId)).toEqual(threads.map((t) => `cp-${t}`));
    const batches = calls(rec, "BatchLoad");
    expect(batches.length).toBeGreaterThan(0);
    // Each item a batch refused went again alone (as did any load that left alone in the first place).
    expect(calls(rec, "Load").length).toBe(12 - batches.length);
    expect(served.filter((m) => m === "BatchLoad")).toHaveLength(batches.length);
  });
});

describe("a server taking fewer items per batch than the client sends", () => {
  it("sends a refused batch's calls alone, each with its own outcome, and later batches half as large", async () => {
    const small = await startServer("--max-batch-items", "3");
    const rec = new Recorder();
    const client = new CairnClient(small, { channelOptions: { interceptors: [rec.interceptor] } }); // coalesce 4
    afterAll(() => client.close());
    const coalescers = client as unknown as { saves: Coalescer<unknown, unknown>; loads: Coalescer<unknown, unknown> };
    const start = { saves: coalescers.saves.maxItems, loads: coalescers.loads.maxItems };

    const threads = Array.from({ length: 40 }, () => newThread("small"));
    const saved = await Promise.all(threads.map((threadId, i) => client.save({ threadId, state: state(i) })));
    const loaded = await Promise.all(threads.map((threadId) => client.load({ threadId })));
    expect(loaded.map((l) => l.checkpoint.checkpointId)).toEqual(saved.map((s) => s.checkpointId));
    expect(loaded.map((l) => Buffer.from(l.checkpoint.state).toString())).toEqual(
      threads.map((_, i) => Buffer.from(state(i)).toString()),
    );

    // The server refuses every batch of more than 3; each refusal halves the limit (never raising it).
    for (const [kind, method, items] of [["saves", "SaveBatch", "saves"], ["loads", "BatchLoad", "loads"]] as const) {
      const refused = calls(rec, method).map((batch) => batch[items]!.length).filter((n) => n > 3);
      expect(refused.length).toBeGreaterThan(0);
      const limit = refused.reduce((low, n) => Math.min(low, Math.max(1, Math.floor(n / 2))), start[kind]);
      expect(coalescers[kind].maxItems).toBe(limit);
      expect(coalescers[kind].maxItems).toBeLessThan(start[kind]);
    }
  });
});

describe("the coalescer's rules", () => {
  it("sends 4 concurrent saves in fewer than 4 calls, and a lone save as a plain Save", async () => {
    const { client, rec } = recordedClient(); // coalesce 4: up to 4 senders
    await client.save({ threadId: newThread("four"), state: state(0) });
    expect(rec.sent.map((s) => s.method)).toEqual(["Save"]);
    rec.clear();
    const saved = await Promise.all(
      Array.from({ length: 4 }, (_, i) => client.save({ threadId: newThread("four"), state: state(i) })),
    );
    expect(saved).toHaveLength(4);
    expect(rec.sent.length).toBeLessThan(4);
  });

  it("sends a batch larger than the server's messages alone, and later batches half as many bytes", async () => {
    const small = await startServer("--max-state-bytes", "200000"); // takes messages of about 1.3 MB
    const rec = new Recorder();
    const client = new CairnClient(small, { coalesce: 1, channelOptions: { interceptors: [rec.interceptor] } });
    afterAll(() => client.close());
    const saves = (client as unknown as { saves: Coalescer<unknown, unknown> }).saves;
    const startBytes = saves.maxBytes;
    // 150 KB each: 24 of them are far beyond the server's messages
    const states = Array.from({ length: 24 }, () => utf8(`"${randomBytes(110_000).toString("base64")}"`));
    const threads = states.map(() => newThread("big"));
    const outcomes = await Promise.all(threads.map((threadId, i) => settled(client.save({ threadId, state: states[i]!, stateType: "json" }))));
    for (const o of outcomes) expect(o).not.toBeInstanceOf(Error);
    const loaded = await Promise.all(threads.map((threadId) => client.load({ threadId })));
    expect(loaded.map((l) => Buffer.from(l.checkpoint.state).toString())).toEqual(states.map((s) => Buffer.from(s).toString()));
    const batches = calls(rec, "SaveBatch").map((b) => b.saves!.length);
    expect(batches.length).toBeGreaterThan(0); // at least one refused whole
    expect(saves.maxBytes).toBeLessThan(startBytes);
    expect(saves.maxBytes).toBeLessThanOrEqual(Math.floor((Math.max(...batches) * 150_000) / 2));
  });
});

describe("a client closed while calls wait", () => {
  // A server that answers each Save only once the test calls its entry in `held` (recording the threads it was
  // asked to save alone), and each SaveBatch only once the test calls its entry in `refusers`: RESOURCE_EXHAUSTED.
  const held: Array<() => void> = [];
  const savedAlone: string[] = [];
  let batches = 0;
  const refusers: Array<() => void> = [];
  const saveResponse = (cp: Checkpoint): SaveResponse =>
    ({ checkpointId: cp.checkpointId, sequence: 1, createdAt: new Date(), alreadyExisted: false, storedSizeBytes: 0, acceptedStateEncodings: [] }) as SaveResponse;
  const { client: fake } = fakeServer({
    save(call: ServerUnaryCall<SaveRequest, SaveResponse>, callback: sendUnaryData<SaveResponse>) {
      savedAlone.push(call.request.checkpoint!.threadId);
      held.push(() => callback(null, saveResponse(call.request.checkpoint!)));
    },
    saveBatch(_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) {
      batches += 1;
      refusers.push(() => callback({ code: status.RESOURCE_EXHAUSTED, details: "message larger than max" }));
    },
  });
  afterAll(() => {
    // Answer what is still held, so that the server can shut down.
    for (const release of [...held.splice(0), ...refusers.splice(0)]) release();
  });
  const until = async (cond: () => boolean): Promise<void> => {
    while (!cond()) await new Promise((r) => setTimeout(r, 5));
  };

  it("does not send callers that left when a refused batch falls back to single calls", async () => {
    const port = (fake() as unknown as { stub: { getChannel(): { getTarget(): string } } }).stub.getChannel().getTarget();
    const client = new CairnClient(port.replace(/^dns:/, ""), { coalesce: 1 });
    afterAll(() => client.close());
    const first = client.save({ threadId: "first", state: state(0) }, { deadlineMs: 60_000 });
    await until(() => held.length === 1);
    const controller = new AbortController();
    const leaver = settled(client.save({ threadId: "leaver", state: state(1) }, { deadlineMs: 60_000, signal: controller.signal }));
    const stayers = ["s0", "s1", "s2"].map((threadId) => client.save({ threadId, state: state(2) }, { deadlineMs: 60_000 }));
    held.shift()!();
    await first;
    await until(() => batches === 1);
    controller.abort();
    expect(await leaver).toBeInstanceOf(CancelledError);
    refusers.shift()!(); // refused whole: its items go alone
    await until(() => held.length === 3);
    for (const release of held.splice(0)) release();
    await Promise.all(stayers);
    expect(savedAlone).toEqual(["first", "s0", "s1", "s2"]);
  });

  it("answers every queued and batched caller at once, not at their deadlines", async () => {
    savedAlone.length = 0;
    batches = 0;
    const port = (fake() as unknown as { stub: { getChannel(): { getTarget(): string } } }).stub.getChannel().getTarget();
    const client = new CairnClient(port.replace(/^dns:/, ""), { coalesce: 1 });
    const save = (i: number) => settled(client.save({ threadId: `t${i}`, state: state(i) }, { deadlineMs: 600_000 }));
    const first = save(0);
    await until(() => held.length === 1);
    const batched = [1, 2, 3, 4, 5].map(save);
    held.shift()!();
    expect(await first).not.toBeInstanceOf(Error);
    await until(() => batches === 1);
    const queued = [6, 7].map(save);
    await new Promise((r) => setTimeout(r, 20));
    client.close();
    for (const outcome of await Promise.all([...batched, ...queued])) {
      expect(outcome).toBeInstanceOf(CancelledError); // not DeadlineExceededError, many minutes later
    }
  }, 30_000);
});
