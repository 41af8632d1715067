/** CairnClient against a real Cairn server: every RPC, the error mapping, auth, unix sockets, cancellation. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { inject } from "vitest";
import {
  AlreadyExistsError,
  CairnClient,
  CairnError,
  CancelledError,
  Code,
  ConflictError,
  DeadlineExceededError,
  InvalidArgumentError,
  NotFoundError,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
} from "../src/index.js";
import { newThread, sharedClient, target, utf8 } from "./helpers.js";

const client = sharedClient();
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Awaits the promise's rejection and returns the error, checking its class. */
async function rejection<E>(promise: Promise<unknown>, cls: new (...args: never[]) => E): Promise<E> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(cls);
  return err as E;
}

describe("save and load", () => {
  it("round-trips every field and generates a UUIDv7 id", async () => {
    const threadId = newThread();
    const metadata = { step: 3, ratio: 0.5, big: 2 ** 40, neg: -1, nested: { ok: true, list: [1, "a", null] } };
    const saved = await client.save({
      threadId,
      namespace: "sub",
      state: utf8('{"a":1}'),
      stateType: "json",
      metadata,
      nodeName: "node-a",
      nextNodes: ["b", "c"],
    });
    expect(saved.checkpointId).toMatch(UUID_V7);
    expect(saved.alreadyExisted).toBe(false);
    expect(saved.createdAt).toBeInstanceOf(Date);

    const { checkpoint, pendingWrites } = await client.load({ threadId, namespace: "sub" });
    expect(checkpoint).toMatchObject({
      threadId,
      namespace: "sub",
      checkpointId: saved.checkpointId,
      parentCheckpointId: "",
      stateType: "json",
      metadata,
      nodeName: "node-a",
      nextNodes: ["b", "c"],
      sequence: saved.sequence,
      stateSizeBytes: 7,
    });
    expect(Buffer.from(checkpoint.state).toString()).toBe('{"a":1}');
    expect(pendingWrites).toEqual([]);
  });

  it("generates ids that are unique and sort by creation", async () => {
    const threadId = newThread();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await client.save({ threadId, state: utf8(String(i)) })).checkpointId);
    expect(new Set(ids).size).toBe(5);
    expect([...ids].sort()).toEqual(ids);
  });

  it("treats an identical re-save as a retry and a different one as a conflict", async () => {
    const threadId = newThread();
    const cp = { threadId, checkpointId: "cp-1", state: utf8("one"), stateType: "json" };
    expect((await client.save(cp)).alreadyExisted).toBe(false);
    expect((await client.save(cp)).alreadyExisted).toBe(true);

    const err = await rejection(client.save({ ...cp, state: utf8("two") }), AlreadyExistsError);
    expect(err.code).toBe(Code.ALREADY_EXISTS);
    expect(err.reason).toBe("CHECKPOINT_ID_CONFLICT");
    expect(err.domain).toBe("cairn.dev");

    await client.save({ ...cp, state: utf8("two") }, { replaceExisting: true });
    expect(Buffer.from((await client.load({ threadId })).checkpoint.state).toString()).toBe("two");
  });

  it("maps a lost compare-and-set to ConflictError with the current head id", async () => {
    const threadId = newThread();
    const first = await client.save({ threadId, state: utf8("1") }, { expectEmpty: true });
    const err = await rejection(client.save({ threadId, state: utf8("2") }, { expectEmpty: true }), ConflictError);
    expect(err.code).toBe(Code.ABORTED);
    expect(err.reason).toBe("HEAD_MOVED");
    expect(err.currentHeadId).toBe(first.checkpointId);

    const stale = await rejection(client.save({ threadId, state: utf8("2") }, { expectedHeadId: "nope" }), ConflictError);
    expect(stale.currentHeadId).toBe(first.checkpointId);
    const second = await client.save(
      { threadId, state: utf8("2"), parentCheckpointId: first.checkpointId },
      { expectedHeadId: first.checkpointId },
    );
    expect((await client.load({ threadId })).checkpoint.checkpointId).toBe(second.checkpointId);
  });

  it("maps missing checkpoints and empty threads to NotFoundError with their reasons", async () => {
    const empty = await rejection(client.load({ threadId: newThread() }), NotFoundError);
    expect(empty.code).toBe(Code.NOT_FOUND);
    expect(empty.reason).toBe("THREAD_EMPTY");

    const threadId = newThread();
    await client.save({ threadId, state: utf8("x") });
    const missing = await rejection(client.load({ threadId, checkpointId: "no-such-id" }), NotFoundError);
    expect(missing.reason).toBe("CHECKPOINT_NOT_FOUND");
  });

  it("maps a bad field to InvalidArgumentError naming the field", async () => {
    const err = await rejection(client.save({ threadId: "", state: utf8("x") }), InvalidArgumentError);
    expect(err.code).toBe(Code.INVALID_ARGUMENT);
    expect(err.reason).toBe("INVALID_FIELD");
    expect(err.field).toContain("thread_id");
    expect(err.message).toContain("thread_id");
  });

  it("maps an oversized metadata to ResourceExhaustedError with the limit", async () => {
    const metadata = { blob: "x".repeat(70_000) };
    const err = await rejection(client.save({ threadId: newThread(), state: utf8("x"), metadata }), ResourceExhaustedError);
    expect(err.reason).toBe("LIMIT_EXCEEDED");
    expect(err.metadata.limit).toBe("max_metadata_bytes");
    expect(Number(err.metadata.limit_value)).toBeGreaterThan(0);
  });
});

describe("pending writes", () => {
  it("stores writes in (task_path, task_id, idx) order, with no-op re-sends, conflicts and replace", async () => {
    const threadId = newThread();
    const { checkpointId } = await client.save({ threadId, state: utf8("s") });
    const put = (taskId: string, writes: { idx: number; value: string }[], replace = false) =>
      client.putWrites({
        threadId,
        checkpointId,
        taskId,
        replace,
        writes: writes.map((w) => ({ idx: w.idx, channel: "ch", valueType: "json", value: utf8(w.value) })),
      });
    expect(await put("t2", [{ idx: 0, value: "a" }, { idx: 1, value: "b" }])).toBe(2);
    expect(await put("t1", [{ idx: -1, value: "err" }])).toBe(1);
    expect(await put("t2", [{ idx: 0, value: "a" }])).toBe(0); // identical re-send

    const conflict = await rejection(put("t2", [{ idx: 0, value: "other" }]), AlreadyExistsError);
    expect(conflict.reason).toBe("WRITE_CONFLICT");
    expect(await put("t2", [{ idx: 0, value: "other" }], true)).toBe(1);

    const { pendingWrites } = await client.load({ threadId, checkpointId });
    expect(pendingWrites.map((w) => [w.taskId, w.idx, Buffer.from(w.value).toString()])).toEqual([
      ["t1", -1, "err"],
      ["t2", 0, "other"],
      ["t2", 1, "b"],
    ]);
    expect(pendingWrites[0]).toMatchObject({ threadId, namespace: "", checkpointId, channel: "ch", valueType: "json" });
  });

  it("rejects writes to a checkpoint that does not exist with NotFoundError", async () => {
    const err = await rejection(
      client.putWrites({ threadId: newThread(), checkpointId: "missing", taskId: "t", writes: [{ channel: "c", value: utf8("1") }] }),
      NotFoundError,
    );
    expect(err.reason).toBe("CHECKPOINT_NOT_FOUND");
  });
});

describe("listing", () => {
  it("pages through a thread newest first, per namespace or across them", async () => {
    const threadId = newThread();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await client.save({ threadId, state: utf8(`${i}`), metadata: { i } })).checkpointId);
    const child = await client.save({ threadId, namespace: "child", state: utf8("c") });

    const pages = [];
    for await (const page of client.listPages({ threadId, namespace: "", pageSize: 2 })) pages.push(page);
    expect(pages.map((p) => p.checkpoints.length)).toEqual([2, 2, 1]);
    expect(pages.flatMap((p) => p.checkpoints.map((c) => c.checkpointId))).toEqual([...ids].reverse());
    expect(pages[0]!.checkpoints[0]!.state).toHaveLength(0); // include_state defaults to false
    expect(pages[0]!.checkpoints[0]!.stateSizeBytes).toBe(1);

    const all = await client.list({ threadId });
    expect(all.checkpoints.map((c) => c.checkpointId)).toEqual([child.checkpointId, ...[...ids].reverse()]);

    const filtered = await client.list({ threadId, metadataFilter: { i: 3 }, includeState: true });
    expect(filtered.checkpoints.map((c) => Buffer.from(c.state).toString())).toEqual(["3"]);

    const before = await client.list({ threadId, namespace: "", beforeCheckpointId: ids[2] });
    expect(before.checkpoints.map((c) => c.checkpointId)).toEqual([ids[1], ids[0]]);
  });

  it("returns pending writes with include_writes", async () => {
    const threadId = newThread();
    const { checkpointId } = await client.save({ threadId, state: utf8("s") });
    await client.putWrites({ threadId, checkpointId, taskId: "t", writes: [{ channel: "c", value: utf8("v") }] });
    const page = await client.list({ threadId, includeWrites: true });
    expect(page.pendingWrites.map((w) => [w.checkpointId, w.channel])).toEqual([[checkpointId, "c"]]);
  });

  it("lists threads by head metadata", async () => {
    const tag = newThread("tag");
    const threadId = newThread();
    await client.save({ threadId, state: utf8("1"), metadata: { tag }, nodeName: "n", nextNodes: ["m"] });
    await client.save({ threadId, state: utf8("2"), metadata: { tag } });
    const { threads } = await client.listThreads({ metadataFilter: { tag } });
    expect(threads).toHaveLength(1);
    expect(threads[0]).toMatchObject({ threadId, checkpointCount: 2, headMetadata: { tag } });
    expect(threads[0]!.updatedAt).toBeInstanceOf(Date);
  });
});

describe("batch and stream", () => {
  it("batchLoad answers each load, with per-item errors", async () => {
    const threadId = newThread();
    const saved = await client.save({ threadId, state: utf8("x") });
    const [ok, missing] = await client.batchLoad([{ threadId }, { threadId: newThread() }]);
    expect(ok).not.toBeInstanceOf(CairnError);
    expect((ok as { checkpoint: { checkpointId: string } }).checkpoint.checkpointId).toBe(saved.checkpointId);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect((missing as NotFoundError).reason).toBe("THREAD_EMPTY");
  });

  it("saveStream yields one result per save in order; a failed item does not end the stream", async () => {
    const threadId = newThread();
    async function* saves() {
      yield { checkpoint: { threadId, state: utf8("1") }, expectEmpty: true };
      yield { checkpoint: { threadId, state: utf8("2") }, expectEmpty: true }; // the thread is not empty now
      yield { checkpoint: { threadId, checkpointId: "third", state: utf8("3") } };
    }
    const results = [];
    for await (const r of client.saveStream(saves())) results.push(r);
    expect(results).toHaveLength(3);
    expect(results[0]).not.toBeInstanceOf(CairnError);
    expect(results[1]).toBeInstanceOf(ConflictError);
    expect((results[1] as ConflictError).currentHeadId).toBe((results[0] as { checkpointId: string }).checkpointId);
    expect(results[2]).toMatchObject({ checkpointId: "third", alreadyExisted: false });
    expect((await client.load({ threadId })).checkpoint.checkpointId).toBe("third");
  });
});

describe("saveStream lifecycle", () => {
  it("stops cleanly when the consumer breaks out early or the signal aborts", async () => {
    const threadId = newThread();
    function* many() {
      for (let i = 0; i < 1000; i++) yield { checkpoint: { threadId, state: utf8(`${i}`) } };
    }
    let seen = 0;
    for await (const r of client.saveStream(many())) {
      expect(r).not.toBeInstanceOf(CairnError);
      if (++seen === 2) break;
    }
    expect(seen).toBe(2);

    const controller = new AbortController();
    const stream = client.saveStream(many(), { signal: controller.signal });
    await stream.next();
    controller.abort("enough");
    const err = await rejection(
      (async () => {
        for await (const _ of stream);
      })(),
      CancelledError,
    );
    expect(err.cause).toBe("enough");
    expect((await client.list({ threadId })).checkpoints.length).toBeGreaterThanOrEqual(2);
  });
});

describe("deleting, copying, pruning", () => {
  it("delete, clear, copyThread, prune and deleteRuns", async () => {
    const threadId = newThread();
    const runId = newThread("run");
    const ids: string[] = [];
    let parent = "";
    for (let i = 0; i < 4; i++) {
      const metadata = { run_id: i === 3 ? runId : "other" };
      parent = (await client.save({ threadId, state: utf8(`${i}`), parentCheckpointId: parent, metadata })).checkpointId;
      ids.push(parent);
    }
    expect(await client.delete({ threadId, checkpointId: ids[0]! })).toBe(true);
    expect(await client.delete({ threadId, checkpointId: ids[0]! })).toBe(false);

    const copy = newThread();
    expect(await client.copyThread(threadId, copy)).toBe(3);
    const notEmpty = await rejection(client.copyThread(threadId, copy), ConflictError);
    expect(notEmpty.reason).toBe("TARGET_NOT_EMPTY");

    expect(await client.prune([copy], { keepCount: 2 })).toBe(1);
    expect((await client.list({ threadId: copy })).checkpoints.map((c) => c.checkpointId)).toEqual([ids[3], ids[2]]);

    expect(await client.deleteRuns([runId])).toBe(2); // the head of both threads
    expect(await client.clear(threadId)).toBe(2);
    expect(await client.prune([copy], { strategy: "delete_all" })).toBe(1);
    await rejection(client.load({ threadId }), NotFoundError);
  });
});

describe("call options and transport", () => {
  it("rejects with CancelledError when the AbortSignal fires, before or during the call", async () => {
    const reason = new Error("stop");
    const pre = await rejection(client.load({ threadId: newThread() }, { signal: AbortSignal.abort(reason) }), CancelledError);
    expect(pre.code).toBe(Code.CANCELLED);
    expect(pre.cause).toBe(reason);

    const controller = new AbortController();
    const call = client.list({}, { signal: controller.signal });
    controller.abort(reason);
    expect((await rejection(call, CancelledError)).cause).toBe(reason);
  });

  it("rejects with DeadlineExceededError when the deadline has passed", async () => {
    const err = await rejection(client.load({ threadId: newThread() }, { deadlineMs: -1 }), DeadlineExceededError);
    expect(err.code).toBe(Code.DEADLINE_EXCEEDED);
  });

  it("rejects with UnavailableError after retrying an unreachable server", async () => {
    const dead = new CairnClient("127.0.0.1:1", { retry: { maxAttempts: 3, initialBackoffMs: 10 } });
    try {
      const err = await rejection(dead.load({ threadId: "t" }), UnavailableError);
      expect(err.code).toBe(Code.UNAVAILABLE);
    } finally {
      dead.close();
    }
  });

  it("sends the bearer token, over a unix: target", async () => {
    const privateTarget = inject("privateTarget");
    if (!privateTarget) throw new Error(inject("privateError"));
    expect(privateTarget.startsWith("unix:")).toBe(true);
    const authed = new CairnClient(privateTarget, { token: inject("privateToken") });
    const anonymous = new CairnClient(privateTarget);
    const wrong = new CairnClient(privateTarget, { token: "wrong" });
    try {
      const threadId = newThread();
      await authed.save({ threadId, state: utf8("x") });
      expect((await authed.load({ threadId })).checkpoint.threadId).toBe(threadId);
      expect((await rejection(anonymous.load({ threadId }), UnauthenticatedError)).reason).toBe("MISSING_TOKEN");
      expect((await rejection(wrong.load({ threadId }), UnauthenticatedError)).reason).toBe("INVALID_TOKEN");
      await authed.clear(threadId);
    } finally {
      for (const c of [authed, anonymous, wrong]) c.close();
    }
  });

  it.skipIf(!inject("tlsTarget"))("speaks (mutual) TLS with the tls option", async () => {
    const pem = (name: string) => readFileSync(join(inject("tlsDir"), name));
    const tlsTarget = inject("tlsTarget");
    const secure = new CairnClient(tlsTarget, {
      tls: { rootCerts: pem("ca.crt"), privateKey: pem("client.key"), certChain: pem("client.crt") },
    });
    const noClientCert = new CairnClient(tlsTarget, { tls: { rootCerts: pem("ca.crt") }, retry: false });
    const plaintext = new CairnClient(tlsTarget, { retry: false });
    try {
      const threadId = newThread();
      await secure.save({ threadId, state: utf8("x") });
      expect((await secure.load({ threadId })).checkpoint.threadId).toBe(threadId);
      await rejection(noClientCert.load({ threadId }), UnavailableError);
      await rejection(plaintext.load({ threadId }), UnavailableError);
    } finally {
      for (const c of [secure, noClientCert, plaintext]) c.close();
    }
  });

  it("is the shared server's target", () => {
    expect(client.target).toBe(target());
  });
});
