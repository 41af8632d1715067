/**
 * Activity records and node timeouts of the durable-runs Worker, over a real LangGraph.js graph and CairnSaver,
 * against a real server: an activity recorded before the first worker lost its run is not called again by the
 * worker that takes it over (it gets the recorded result); a step past nodeTimeoutMs fails the attempt with a
 * retryable NodeTimeout and the run's retry policy runs it again.
 */
import { randomUUID } from "node:crypto";
import { Annotation, END, type LangGraphRunnableConfig, START, StateGraph } from "@langchain/langgraph";
import { decodeJson } from "../src/index.js";
import { activity, CairnSaver, Worker } from "../src/langgraph.js";
import { newThread, sharedClient } from "./helpers.js";

const client = sharedClient();
const newQueue = () => `ts-act-${randomUUID()}`;

const State = Annotation.Root({
  log: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
  receipt: Annotation<string>(),
});

type Hook = (config: LangGraphRunnableConfig) => Promise<Record<string, unknown> | void>;

/** draft -> review -> publish; `hooks` run first in their node and may add to its update; `ran` counts executions. */
function pipeline(hooks: Record<string, Hook> = {}) {
  const ran: Record<string, number> = {};
  const node = (name: string) => async (_: typeof State.State, config: LangGraphRunnableConfig) => {
    const extra = (await hooks[name]?.(config)) ?? {};
    ran[name] = (ran[name] ?? 0) + 1;
    return { log: [name], ...extra };
  };
  const graph = new StateGraph(State)
    .addNode("draft", node("draft"))
    .addNode("review", node("review"))
    .addNode("publish", node("publish"))
    .addEdge(START, "draft")
    .addEdge("draft", "review")
    .addEdge("review", "publish")
    .addEdge("publish", END)
    .compile({ checkpointer: new CairnSaver(client) });
  return { graph, ran };
}

it("an activity recorded before the worker lost its run is not called again; its result is reused", async () => {
  const queue = newQueue();
  let calls = 0;
  const charge = async () => ({ receipt: `r-${++calls}` });
  let entered: () => void = () => {};
  const recorded = new Promise<void>((r) => (entered = r));
  let release: () => void = () => {};
  const held = new Promise<void>((r) => (release = r));
  // The first worker never heartbeats (a paused process): its lease of 1 s runs out inside review, after the activity.
  const first = pipeline({
    review: async (config) => {
      const r = await activity(config, "charge", charge);
      entered();
      await held;
      return r;
    },
  });
  const zombie = new Worker(queue, first.graph, { workerId: "zombie", leaseMs: 1000, heartbeatMs: 3_600_000, waitMs: 5000 });
  const started = await client.startRun(newThread("ts-act"), { log: ["start"] }, { queue });
  const zombieRun = zombie.runOnce();
  await recorded;

  const second = pipeline({ review: async (config) => activity(config, "charge", charge) });
  const taker = new Worker(queue, second.graph, { workerId: "taker", leaseMs: 10_000, waitMs: 2000 });
  let run = await taker.runOnce();
  for (const deadline = Date.now() + 15_000; !run && Date.now() < deadline; ) run = await taker.runOnce();
  expect(run).toMatchObject({ runId: started.runId, status: "COMPLETED", recoveryCount: 1 });
  expect(second.ran).toEqual({ review: 1, publish: 1 });
  expect(calls).toBe(1);
  expect(decodeJson(run!.output)).toMatchObject({ receipt: "r-1", log: ["start", "draft", "review", "publish"] });

  // The record is the pending write every language's worker uses: task activity:NODE:NAME, channel "activity", JSON.
  const { pendingWrites: writes } = await client.list({ threadId: started.threadId, includeWrites: true });
  expect(writes.filter((w) => w.channel === "activity").map((w) => [w.taskId, w.valueType, decodeJson(w.value)])).toEqual([
    ["activity:review:charge", "json", { receipt: "r-1" }],
  ]);
  release();
  await zombieRun;
  expect(zombie.lastStopReason).toBe("LEASE_LOST");
});

it("activity() outside a durable run's node is an error", async () => {
  await expect(activity({}, "x", () => 1)).rejects.toThrow(/inside a node of a durable run/);
});

it("a step past nodeTimeoutMs fails the attempt with a retryable NodeTimeout; the retry policy runs it again", async () => {
  const queue = newQueue();
  let attempts = 0;
  const { graph, ran } = pipeline({
    review: async (config) => {
      if (++attempts > 1) return;
      await new Promise<void>((_, reject) => config.signal?.addEventListener("abort", () => reject(config.signal!.reason), { once: true }));
    },
  });
  const worker = new Worker(queue, graph, { nodeTimeoutMs: 1000, waitMs: 5000 });
  const started = await client.startRun(newThread("ts-act-timeout"), { log: ["start"] }, { queue, retry: { maxAttempts: 2, initialBackoffMs: 10 } });
  let run = await worker.runOnce();
  expect(run).toMatchObject({ runId: started.runId, status: "PENDING", failedAttemptCount: 1 });
  expect(ran.publish).toBeUndefined();
  while (run?.status === "PENDING") run = await worker.runOnce();
  expect(run).toMatchObject({ runId: started.runId, status: "COMPLETED", attemptCount: 2 });
  expect(decodeJson(run!.output)).toMatchObject({ log: ["start", "draft", "review", "publish"] });
  const { attempts: tried } = await client.getRun(started.runId);
  expect(tried[0]).toMatchObject({ status: "FAILED", error: { type: "NodeTimeout", retryable: true } });
  expect(tried[0]!.error!.message).toContain("1000 ms");
});
