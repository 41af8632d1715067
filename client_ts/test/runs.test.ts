/**
 * Durable runs through the client against a real server: claim, heartbeat and complete with fenced writes; a
 * zombie's fenced save refused with LEASE_LOST once another worker took the run over; cancel seen at the
 * heartbeat; retries and the run's history; ListRuns paging and filters.
 */
import { randomUUID } from "node:crypto";
import {
  ConflictError,
  decodeJson,
  FailedPreconditionError,
  isFinal,
  NotFoundError,
  type RunLease,
  RunStoppedError,
} from "../src/index.js";
import { newThread, sharedClient, utf8 } from "./helpers.js";

const client = sharedClient();
const newQueue = () => `ts-q-${randomUUID()}`;

async function claim(queue: string, workerId: string, leaseMs: number) {
  const c = await client.claimRun(queue, workerId, { leaseMs, waitMs: 5000 });
  if (!c) throw new Error(`nothing to claim on ${queue}`);
  return c;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("the call succeeded");
}

it("claims, heartbeats, saves under the lease and completes a run", async () => {
  const threadId = newThread("ts-run");
  const queue = newQueue();
  const started = await client.startRun(threadId, { n: 1 }, { queue, metadata: { by: "ts" } });
  expect(started).toMatchObject({ status: "PENDING", inputType: "json", metadata: { by: "ts" } });
  expect(await client.claimRun(newQueue(), "w", { waitMs: 200 })).toBeUndefined();

  const c = await claim(queue, "ts-worker-1", 5000);
  expect(c.run).toMatchObject({ runId: started.runId, status: "RUNNING" });
  expect(c.lease.epoch).toBe(1);
  expect(c.recovered).toBe(false);
  expect(decodeJson(c.run.input)).toEqual({ n: 1 });

  const lease = await client.heartbeat(c.lease, { leaseMs: 20_000 });
  expect(lease.expiresAt!.getTime()).toBeGreaterThan(c.lease.expiresAt!.getTime());
  const { checkpointId } = await client.save({ threadId, state: utf8('{"n":2}'), stateType: "json" }, { runLease: lease });
  await client.putWrites({ threadId, checkpointId, taskId: "t", writes: [{ channel: "c", value: utf8("1") }], runLease: lease });
  const done = await client.completeRun(lease, { n: 2 }, { checkpointId });
  expect(done.status).toBe("COMPLETED");
  expect(isFinal(done.status)).toBe(true);

  const run = await client.getRun(started.runId);
  expect(decodeJson(run.output)).toEqual({ n: 2 });
  expect(run.checkpointId).toBe(checkpointId);
  expect(run.attempts).toHaveLength(1);
  expect(run.attempts[0]).toMatchObject({ workerId: "ts-worker-1", status: "COMPLETED" });
});

it("refuses a zombie's fenced save with LEASE_LOST after another worker took the run over", async () => {
  const threadId = newThread("ts-zombie");
  const queue = newQueue();
  const started = await client.startRun(threadId, null, { queue });
  const zombie = await claim(queue, "zombie", 1000);
  const first = await client.save({ threadId, state: utf8("{}"), stateType: "json" }, { runLease: zombie.lease });

  let taker: Awaited<ReturnType<typeof client.claimRun>>;
  const deadline = Date.now() + 15_000;
  do taker = await client.claimRun(queue, "taker", { leaseMs: 10_000, waitMs: 2000 });
  while (!taker && Date.now() < deadline);
  expect(taker).toMatchObject({ recovered: true, run: { runId: started.runId }, lease: { epoch: 2 } });

  const err = await rejection(
    client.save({ threadId, parentCheckpointId: first.checkpointId, state: utf8('{"z":1}'), stateType: "json" }, { runLease: zombie.lease }),
  );
  expect(err).toBeInstanceOf(RunStoppedError);
  expect(err).toBeInstanceOf(ConflictError);
  expect(err).toMatchObject({ reason: "LEASE_LOST", runId: started.runId, metadata: { current_epoch: "2" } });
  const writes = client.putWrites({
    threadId, checkpointId: first.checkpointId, taskId: "z", writes: [{ channel: "c", value: utf8("1") }], runLease: zombie.lease,
  });
  expect(await rejection(writes)).toMatchObject({ reason: "LEASE_LOST" });
  expect(await rejection(client.heartbeat(zombie.lease))).toBeInstanceOf(RunStoppedError);

  const head = await client.load({ threadId });
  expect(head.checkpoint.checkpointId).toBe(first.checkpointId);
  expect(head.pendingWrites).toHaveLength(0);
  await client.save({ threadId, parentCheckpointId: first.checkpointId, state: utf8('{"t":1}'), stateType: "json" }, { runLease: taker!.lease });

  const run = await client.getRun(started.runId);
  expect(run).toMatchObject({ attemptCount: 2, recoveryCount: 1 });
  expect(run.attempts[0]!.error?.reason).toBe("LEASE_EXPIRED");
  expect(run.attempts[1]!.recovered).toBe(true);
});

it("cancels a pending run at once and a running one at its next heartbeat", async () => {
  const queue = newQueue();
  const pending = await client.startRun(newThread("ts-cancel"), null, { queue, notBefore: new Date(Date.now() + 3_600_000) });
  expect((await client.cancelRun(pending.runId)).status).toBe("CANCELLED");

  const running = await client.startRun(newThread("ts-cancel"), null, { queue });
  const c = await claim(queue, "w", 10_000);
  expect(await client.cancelRun(running.runId)).toMatchObject({ status: "RUNNING", cancelRequested: true });
  const err = await rejection(client.heartbeat(c.lease));
  expect(err).toBeInstanceOf(RunStoppedError);
  expect(err).toMatchObject({ reason: "RUN_CANCELLED" });
  expect((await client.getRun(running.runId)).status).toBe("CANCELLED");
  expect(await rejection(client.getRun(`missing-${randomUUID()}`))).toBeInstanceOf(NotFoundError);
});

it("retries a failed attempt, keeps the history, and lists runs by page and filter", async () => {
  const queue = newQueue();
  const since = new Date(Date.now() - 60_000);
  const threads = [newThread("ts-list"), newThread("ts-list"), newThread("ts-list")];
  const ids: string[] = [];
  for (const [i, threadId] of threads.entries()) {
    ids.push((await client.startRun(threadId, { i }, { queue, retry: { maxAttempts: 2, initialBackoffMs: 100 } })).runId);
  }
  const busy = await rejection(client.startRun(threads[0]!, null, { queue }));
  expect(busy).toBeInstanceOf(FailedPreconditionError);
  expect(busy).toMatchObject({ reason: "THREAD_BUSY", metadata: { run_id: ids[0] } });

  let c = await claim(queue, "w", 5000);
  expect(c.run.runId).toBe(ids[0]); // oldest first
  const retrying = await client.failRun(c.lease, Object.assign(new Error("connection reset"), { name: "NetError" }), { retryable: true });
  expect(retrying).toMatchObject({ status: "PENDING", error: { reason: "ERROR", type: "NetError" } });
  for (c = await claim(queue, "w", 5000); c.run.runId !== ids[0]; c = await claim(queue, "w", 5000)) {
    await client.failRun(c.lease, "not this one"); // another run of this test came first: end it for good
  }
  const failed = await client.failRun(c.lease, { type: "ValueError", message: "bad input", retryable: true });
  expect(failed).toMatchObject({ status: "FAILED", failedAttemptCount: 2, error: { message: "bad input" } });
  const history = await client.getRun(ids[0]);
  expect(history.attempts.map((a) => a.status)).toEqual(["FAILED", "FAILED"]);
  expect(history.attempts[0]!.error?.type).toBe("NetError");

  const listed: string[] = [];
  let pages = 0;
  let pageToken = "";
  do {
    const page = await client.listRuns({ queue, pageSize: 2, pageToken, createdAfter: since });
    listed.push(...page.runs.map((r) => r.runId));
    pageToken = page.nextPageToken;
    pages++;
  } while (pageToken);
  expect(pages).toBe(2);
  expect(listed).toEqual([...ids].reverse());

  const failedRuns: string[] = [];
  for await (const run of client.iterRuns({ queue, status: "FAILED" })) {
    expect(run.status).toBe("FAILED");
    failedRuns.push(run.runId);
  }
  expect(failedRuns).toContain(ids[0]);
  expect((await client.listRuns({ threadId: threads[0]! })).runs.map((r) => r.runId)).toEqual([ids[0]]);
  expect((await client.listRuns({ queue, createdBefore: since })).runs).toEqual([]);
  await expect(client.listRuns({ status: "DONE" as never })).rejects.toThrow(/unknown run status/);
});

/** A lease the server never issued is refused like a lost one. */
it("refuses a forged lease", async () => {
  const queue = newQueue();
  const threadId = newThread("ts-forged");
  const started = await client.startRun(threadId, null, { queue });
  await claim(queue, "w", 5000);
  const forged: RunLease = { runId: started.runId, epoch: 1, token: "not-the-token" };
  expect(await rejection(client.heartbeat(forged))).toMatchObject({ reason: "LEASE_LOST" });
});
