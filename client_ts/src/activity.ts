/**
 * Activity records and node timeouts of durable runs executed by a {@link Worker}.
 *
 *     const charge = async (state: typeof State.State, config: LangGraphRunnableConfig) => {
 *       const receipt = await activity(config, "charge", () => payments.charge(state.order)); // once, even after a crash
 *       return { receipt };
 *     };
 *
 * An activity's JSON result is a pending write of the checkpoint its step started from, with task id
 * `activity:NODE:NAME` and channel `activity` (the layout of the Python, Go and Java workers), stored under the
 * run's lease; the node re-executed after a crash or a retry (LangGraph re-runs the tasks of that checkpoint) finds
 * it there and gets it back instead of calling the side effect again.
 */
import type { RunnableConfig } from "@langchain/core/runnables";
import type { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import type { CairnClient } from "./client.js";
import { NotFoundError } from "./errors.js";
import { RUN_SCOPE_KEY, type RunScope, runScopeOf } from "./run-scope.js";

/** Channel of an activity record. */
export const ACTIVITY = "activity";

/** A step of a durable run ran longer than the worker's `nodeTimeoutMs`; retryable by default (as Python's NodeTimeout). */
export class NodeTimeout extends Error {
  override readonly name = "NodeTimeout";
  constructor(readonly timeoutMs: number) {
    super(`a step's node(s) ran longer than ${timeoutMs} ms`);
  }
}

/**
 * Runs the side effect `fn` once: its JSON result is recorded on the step's checkpoint (a pending write, fenced by
 * the run's lease), and a re-execution of the node returns the recorded result instead of calling `fn` again.
 * `name` must be unique within the node. A crash between `fn` returning and the record being stored runs `fn`
 * again (at least once; exactly once when recorded). Rejects with the run's stop reason when the run must stop.
 */
export async function activity<T>(config: RunnableConfig, name: string, fn: () => T | Promise<T>): Promise<T> {
  const scope = runScopeOf(config);
  const configurable = config.configurable ?? {};
  const node = config.metadata?.langgraph_node;
  const checkpointNs = parentNamespace(String(configurable.checkpoint_ns ?? ""));
  const checkpointId = (configurable.checkpoint_map as Record<string, string> | undefined)?.[checkpointNs];
  const saver = configurable.__pregel_checkpointer as BaseCheckpointSaver | undefined;
  if (!scope || typeof node !== "string" || !checkpointId || !saver) {
    throw new Error("activity() can only be called inside a node of a durable run (Worker)");
  }
  if (scope.stopped) throw scope.reason;
  const threadId = String(configurable.thread_id);
  const key = `${ACTIVITY}:${node}:${name}`;
  const recorded = await records(scope, (saver as unknown as { client: CairnClient }).client, threadId, checkpointNs, checkpointId);
  if (recorded.has(key)) return recorded.get(key) as T;
  const result = await fn();
  const value = JSON.parse(JSON.stringify(result ?? null)) as T; // what a re-execution will get back
  if (scope.stopped) throw scope.reason;
  // Through the saver: it fences the write with the lease and waits for the checkpoint's put when it lags.
  await saver.putWrites(
    { configurable: { thread_id: threadId, checkpoint_ns: checkpointNs, checkpoint_id: checkpointId, [RUN_SCOPE_KEY]: scope } },
    [[ACTIVITY, value]],
    key,
  );
  recorded.set(key, value);
  return value;
}

/** The activity records of a checkpoint, read once per attempt. */
async function records(scope: RunScope, client: CairnClient, threadId: string, namespace: string, checkpointId: string) {
  let recorded = scope.activities.get(checkpointId);
  if (!recorded) {
    const got = await client.load({ threadId, namespace, checkpointId }).catch((err) => {
      if (err instanceof NotFoundError) return undefined; // its put is still on the way: no records yet
      throw err;
    });
    recorded = new Map<string, unknown>();
    for (const w of got?.pendingWrites ?? []) {
      if (w.channel === ACTIVITY) recorded.set(w.taskId, JSON.parse(new TextDecoder().decode(w.value)));
    }
    scope.activities.set(checkpointId, recorded);
  }
  return recorded;
}

/** The namespace of the graph a task runs in: its checkpoint_ns without the task's own "node:task-id" segment. */
function parentNamespace(taskNs: string): string {
  const parts = taskNs.split("|");
  parts.pop();
  return parts.join("|");
}
