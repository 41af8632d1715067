/** CairnSaver semantics beyond LangGraph's validation suite, checked against what Cairn stores. */
import type { RunnableConfig } from "@langchain/core/runnables";
import {
  type Checkpoint,
  emptyCheckpoint,
  ERROR,
  INTERRUPT,
  type SerializerProtocol,
  uuid6,
} from "@langchain/langgraph-checkpoint";
import { NotFoundError } from "../src/index.js";
import { StateEncoding } from "../src/gen/cairn/v1/checkpoint_store.js";
import { CairnSaver } from "../src/langgraph.js";
import { newThread, Recorder, sharedClient, sharedOptions, target } from "./helpers.js";

const client = sharedClient();
const saver = new CairnSaver(client);

function checkpoint(values: Record<string, unknown> = {}): Checkpoint {
  const versions = Object.fromEntries(Object.keys(values).map((k) => [k, 1]));
  return { ...emptyCheckpoint(), id: uuid6(-1), channel_values: values, channel_versions: versions };
}

async function putOne(threadId: string, metadata: Record<string, unknown> = {}, values = { a: 1 }) {
  const cp = checkpoint(values);
  const config = await saver.put(
    { configurable: { thread_id: threadId } },
    cp,
    { source: "input", step: -1, parents: {}, ...metadata },
    cp.channel_versions,
  );
  return { cp, config };
}

it("stores the serialized checkpoint as the state, tagged with the serde's type, and metadata as a Struct", async () => {
  const threadId = newThread("saver");
  const { cp } = await putOne(threadId, { user: { id: 7 } }, { a: 1 });
  const { checkpoint: stored } = await client.load({ threadId });
  expect(stored.checkpointId).toBe(cp.id);
  expect(stored.stateType).toBe("json");
  expect(JSON.parse(Buffer.from(stored.state).toString())).toMatchObject({ id: cp.id, channel_values: { a: 1 } });
  expect(stored.metadata).toEqual({ source: "input", step: -1, parents: {}, user: { id: 7 } });
});

it("gives metadata numbers back exactly as they went in", async () => {
  const threadId = newThread("saver");
  const numbers = { int: 42, neg: -7, zero: 0, float: 0.1, big: Number.MAX_SAFE_INTEGER, tiny: 5e-324, list: [1, 2.5, -3] };
  await putOne(threadId, { numbers, step: 12 });
  const tuple = await saver.getTuple({ configurable: { thread_id: threadId } });
  expect(tuple?.metadata).toEqual({ source: "input", step: 12, parents: {}, numbers });
  expect(Number.isInteger((tuple?.metadata as { step: number }).step)).toBe(true);
  const listed = [];
  for await (const t of saver.list({ configurable: { thread_id: threadId } }, { filter: { step: 12 } })) listed.push(t);
  expect(listed.map((t) => t.metadata)).toEqual([tuple?.metadata]);
});

it("replaces special-channel writes, keeps the first regular write, and returns LangGraph's order", async () => {
  const threadId = newThread("saver");
  const { config } = await putOne(threadId);
  await saver.putWrites(config, [["b", "first"], ["c", "x"]], "task-b");
  await saver.putWrites(config, [["b", "second"]], "task-b"); // regular: insert-or-ignore
  await saver.putWrites(config, [[INTERRUPT, { v: 1 }]], "task-a");
  await saver.putWrites(config, [[INTERRUPT, { v: 2 }]], "task-a"); // special: replaces
  await saver.putWrites(config, [[ERROR, "boom"], ["z", 1]], "task-a"); // mixed: regular rules, fixed idx for ERROR

  const tuple = await saver.getTuple(config);
  expect(tuple?.pendingWrites).toEqual([
    ["task-a", INTERRUPT, { v: 2 }],
    ["task-a", ERROR, "boom"],
    ["task-a", "z", 1],
    ["task-b", "b", "first"],
    ["task-b", "c", "x"],
  ]);
  const { pendingWrites } = await client.load({ threadId });
  expect(pendingWrites.map((w) => [w.taskId, w.idx])).toEqual([
    ["task-a", -3],
    ["task-a", -1],
    ["task-a", 1],
    ["task-b", 0],
    ["task-b", 1],
  ]);
});

it("holds writes that arrive before their checkpoint's put until the put lands", async () => {
  const threadId = newThread("saver");
  const cp = checkpoint({ a: 1 });
  const config = { configurable: { thread_id: threadId, checkpoint_ns: "", checkpoint_id: cp.id } };
  const early = saver.putWrites(config, [["a", 2]], "task");
  await saver.put({ configurable: { thread_id: threadId } }, cp, { source: "loop", step: 0, parents: {} }, { a: 1 });
  await early;
  expect((await saver.getTuple(config))?.pendingWrites).toEqual([["task", "a", 2]]);
});

it("rejects writes to a checkpoint that never gets stored", async () => {
  const impatient = new CairnSaver(target(), { ...sharedOptions(), writesWaitMs: 20 });
  const config = { configurable: { thread_id: newThread("saver"), checkpoint_ns: "", checkpoint_id: "never" } };
  await expect(impatient.putWrites(config, [["a", 1]], "task")).rejects.toBeInstanceOf(NotFoundError);
  impatient.close();
});

it("uses a custom serde for checkpoints and writes, with its type tag", async () => {
  const json = saver.serde; // LangGraph's default JsonPlusSerializer
  const reversing: SerializerProtocol = {
    async dumpsTyped(data) {
      const [, bytes] = await json.dumpsTyped(data);
      return ["reversed-json", Uint8Array.from(bytes).reverse()];
    },
    async loadsTyped(type, data) {
      expect(type).toBe("reversed-json");
      return json.loadsTyped("json", Uint8Array.from(data as Uint8Array).reverse());
    },
  };
  const custom = new CairnSaver(client, { serde: reversing });
  const threadId = newThread("saver");
  const cp = checkpoint({ secret: "s3cr3t" });
  const config = await custom.put({ configurable: { thread_id: threadId } }, cp, { source: "input", step: -1, parents: {} }, { secret: 1 });
  await custom.putWrites(config, [["secret", "w"]], "t");
  const { checkpoint: stored, pendingWrites } = await client.load({ threadId });
  expect(stored.stateType).toBe("reversed-json");
  expect(Buffer.from(stored.state).toString()).not.toContain('"s3cr3t"');
  expect(pendingWrites[0]?.valueType).toBe("reversed-json");
  expect(stored.metadata).toEqual({ source: "input", step: -1, parents: {} });
  const tuple = await custom.getTuple(config);
  expect(tuple?.checkpoint).toEqual(cp);
  expect(tuple?.pendingWrites).toEqual([["t", "secret", "w"]]);
});

it("deleteThread clears every namespace of the thread", async () => {
  const threadId = newThread("saver");
  await putOne(threadId);
  const cp = checkpoint();
  await saver.put({ configurable: { thread_id: threadId, checkpoint_ns: "sub" } }, cp, { source: "loop", step: 0, parents: {} }, {});
  await saver.deleteThread(threadId);
  expect(await saver.getTuple({ configurable: { thread_id: threadId } })).toBeUndefined();
  expect(await saver.getTuple({ configurable: { thread_id: threadId, checkpoint_ns: "sub" } })).toBeUndefined();
});

it("passes compressStates to its client: checkpoints go out and come back as zstd, and read the same", async () => {
  const rec = new Recorder();
  const compressing = new CairnSaver(target(), {
    ...sharedOptions(),
    compressStates: true,
    channelOptions: { interceptors: [rec.interceptor] },
  });
  try {
    const threadId = newThread("saver");
    const big = { messages: Array.from({ length: 300 }, (_, i) => ({ role: i % 2 ? "ai" : "human", content: `step ${i % 17}` })) };
    let config: RunnableConfig = { configurable: { thread_id: threadId } };
    const saved: Checkpoint[] = [];
    for (let step = 0; step < 3; step++) {
      const cp = checkpoint({ ...big, step });
      config = await compressing.put(config, cp, { source: "loop", step, parents: {} }, cp.channel_versions);
      saved.push(cp);
    }
    await compressing.putWrites(config, [["a", 2]], "task");
    const stored = await client.load({ threadId }); // a plain client reads what the compressing saver stored
    expect(stored.checkpoint.stateSizeBytes).toBeGreaterThan(10_000);
    expect(JSON.parse(Buffer.from(stored.checkpoint.state).toString())).toMatchObject({ id: saved[2]!.id });
    const tuple = await compressing.getTuple(config);
    expect(tuple?.checkpoint).toEqual(saved[2]);
    expect(tuple?.pendingWrites).toEqual([["task", "a", 2]]);
    const listed = [];
    for await (const t of compressing.list({ configurable: { thread_id: threadId } })) listed.push(t.checkpoint);
    expect(listed).toEqual([...saved].reverse());
    expect(await saver.getTuple(config)).toEqual(tuple); // and a plain saver reads the same tuple
    // On the wire: the first put as is (the server had not said it accepts zstd yet), the later ones and the
    // reads as zstd.
    const ZSTD = StateEncoding.STATE_ENCODING_ZSTD;
    expect(rec.savedCheckpoints().map((c) => c.stateEncoding)).toEqual([0, ZSTD, ZSTD]);
    expect([...rec.readCheckpoints("Load"), ...rec.readCheckpoints("List")].map((c) => c.stateEncoding)).toEqual([ZSTD, ZSTD, ZSTD, ZSTD]);
  } finally {
    compressing.close();
  }
});
