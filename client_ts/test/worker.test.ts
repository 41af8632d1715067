/**
 * The durable-runs Worker over a real LangGraph.js graph and CairnSaver, against a real server: it completes a
 * run; observes a cancel within a heartbeat; a run abandoned by a worker that stopped heartbeating is recovered
 * by another from its last checkpoint (finished steps not run again) while the first worker's late save is
 * refused with LEASE_LOST; a node error fails the run; an interrupt ends it INTERRUPTED and a command resumes it.
 */
import { randomUUID } from "node:crypto";
import { Annotation, END, interrupt, type LangGraphRunnableConfig, START, StateGraph } from "@langchain/langgraph";
import { decodeJson } from "../src/index.js";
import { CairnSaver, Worker } from "../src/langgraph.js";
import { newThread, sharedClient } from "./helpers.js";

const client = sharedClient();
const newQueue = () => `ts-lg-${randomUUID()}`;

const State = Annotation.Root({
  log: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
  answer: Annotation<string>(),
});

type Hook = (config: LangGraphRunnableConfig) => Promise<void>;

/** draft -> review -> publish; `hooks` run first in their node; `ran` counts node executions. */
function pipeline(hooks: Record<string, Hook> = {}) {
  const ran: Record<string, number> = {};
  const node = (name: string) => async (_: typeof State.State, config: LangGraphRunnableConfig) => {
    await hooks[name]?.(config);
    ran[name] = (ran[name] ?? 0) + 1;
    return { log: [name] };
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

/** A promise that settles when `open` is called, or rejects when the signal aborts (a cooperative node). */
function gate(signal?: AbortSignal): { wait: Promise<void>; open: () => void } {
  let open: () => void = () => {};
  const wait = new Promise<void>((resolve, reject) => {
    open = resolve;
    signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
  return { wait, open };
}

it("executes a run to COMPLETED with every checkpoint tagged with the run", async () => {
  const queue = newQueue();
  const { graph, ran } = pipeline();
  const worker = new Worker(queue, graph, { workerId: "ts-w", waitMs: 5000 });
  const started = await client.startRun(newThread("ts-lg"), { log: ["start"] }, { queue });
  const run = await worker.runOnce();
  expect(run).toMatchObject({ runId: started.runId, status: "COMPLETED" });
  expect(decodeJson(run!.output)).toMatchObject({ log: ["start", "draft", "review", "publish"] });
  expect(ran).toEqual({ draft: 1, review: 1, publish: 1 });
  const head = await client.load({ threadId: started.threadId });
  expect(run!.checkpointId).toBe(head.checkpoint.checkpointId);
  expect(head.checkpoint.metadata).toMatchObject({ run_id: started.runId });
  expect((await client.getRun(started.runId)).attempts.map((a) => a.workerId)).toEqual(["ts-w"]);
  expect(await worker.runOnce(200)).toBeUndefined();
});

it("stops a cancelled run within a heartbeat", async () => {
  const queue = newQueue();
  let entered: () => void = () => {};
  const inReview = new Promise<void>((r) => (entered = r));
  const { graph, ran } = pipeline({
    review: async (config) => {
      entered();
      await gate(config.signal).wait; // cooperative: ends when the run must stop
    },
  });
  const worker = new Worker(queue, graph, { leaseMs: 3000, heartbeatMs: 200, waitMs: 5000 });
  const started = await client.startRun(newThread("ts-lg-cancel"), {}, { queue });
  const running = worker.runOnce();
  await inReview;
  const cancelledAt = Date.now();
  await client.cancelRun(started.runId);
  const run = await running;
  expect(Date.now() - cancelledAt).toBeLessThan(5000);
  expect(run?.status).toBe("CANCELLED");
  expect(worker.lastStopReason).toBe("RUN_CANCELLED");
  expect(ran.publish).toBeUndefined();
});

it("stops a run whose execution timeout passed; the run is FAILED with EXECUTION_TIMEOUT", async () => {
  const queue = newQueue();
  const { graph, ran } = pipeline({ review: async (config) => gate(config.signal).wait });
  const worker = new Worker(queue, graph, { leaseMs: 3000, heartbeatMs: 200, waitMs: 5000 });
  const started = await client.startRun(newThread("ts-lg-timeout"), {}, { queue, executionTimeoutMs: 1500 });
  const run = await worker.runOnce();
  expect(run).toMatchObject({ runId: started.runId, status: "FAILED", error: { reason: "EXECUTION_TIMEOUT" } });
  expect(worker.lastStopReason).toBe("RUN_TIMED_OUT");
  expect(ran.publish).toBeUndefined();
});

it("recovers a run its worker abandoned; the abandoned worker's late save is refused", async () => {
  const queue = newQueue();
  let entered: () => void = () => {};
  const inPublish = new Promise<void>((r) => (entered = r));
  const release = gate();
  // The first worker never heartbeats (a paused process): its lease of 1 s runs out inside publish.
  const first = pipeline({
    publish: async () => {
      entered();
      await release.wait;
    },
  });
  const zombie = new Worker(queue, first.graph, { workerId: "zombie", leaseMs: 1000, heartbeatMs: 3_600_000, waitMs: 5000 });
  const started = await client.startRun(newThread("ts-lg-recover"), { log: ["start"] }, { queue });
  const zombieRun = zombie.runOnce();
  await inPublish;

  const second = pipeline();
  const taker = new Worker(queue, second.graph, { workerId: "taker", leaseMs: 10_000, waitMs: 2000 });
  let run = await taker.runOnce();
  for (const deadline = Date.now() + 15_000; !run && Date.now() < deadline; ) run = await taker.runOnce();
  expect(run).toMatchObject({ runId: started.runId, status: "COMPLETED", recoveryCount: 1 });
  expect(second.ran).toEqual({ publish: 1 }); // draft and review were checkpointed by the first worker
  expect(decodeJson(run!.output)).toMatchObject({ log: ["start", "draft", "review", "publish"] });

  const headBefore = (await client.load({ threadId: started.threadId })).checkpoint.checkpointId;
  release.open();
  const late = await zombieRun;
  expect(zombie.lastStopReason).toBe("LEASE_LOST");
  expect(late?.status).toBe("COMPLETED"); // as the taker left it
  expect((await client.load({ threadId: started.threadId })).checkpoint.checkpointId).toBe(headBefore);
});

it("fails the run with the node's error", async () => {
  const queue = newQueue();
  const { graph } = pipeline({
    draft: async () => {
      throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    },
  });
  await client.startRun(newThread("ts-lg-fail"), {}, { queue });
  const run = await new Worker(queue, graph, { waitMs: 5000 }).runOnce();
  expect(run).toMatchObject({ status: "FAILED", error: { reason: "ERROR", type: "Error", retryable: true } });
  expect(run!.error!.message).toContain("ECONNREFUSED");
});

it("ends a run INTERRUPTED at an interrupt and resumes it with a command", async () => {
  const queue = newQueue();
  const graph = new StateGraph(State)
    .addNode("ask", () => ({ answer: interrupt({ question: "ship it?" }) as string }))
    .addEdge(START, "ask")
    .addEdge("ask", END)
    .compile({ checkpointer: new CairnSaver(client) });
  const worker = new Worker(queue, graph, { waitMs: 5000 });
  const threadId = newThread("ts-lg-interrupt");
  await client.startRun(threadId, {}, { queue });
  const paused = await worker.runOnce();
  expect(paused?.status).toBe("INTERRUPTED");
  expect(decodeJson(paused!.output)).toMatchObject([{ node: "ask", value: { question: "ship it?" } }]);

  await client.startRun(threadId, { __command__: { resume: "yes" } }, { queue });
  const resumed = await worker.runOnce();
  expect(resumed?.status).toBe("COMPLETED");
  expect(decodeJson(resumed!.output)).toMatchObject({ answer: "yes" });
});
