// Saves per second of 32 concurrent graphs, each saving a ~36 KB agent-like JSON state after every step, with the
// client's coalescing on (`coalesce`, default 4: concurrent saves leave as SaveBatch calls) and off (0: one Save
// call each). Rounds of the two settings alternate, so a load change on the machine hits both alike; the numbers
// are noisy on a shared box. Not run in CI. Needs the built client (`npm run build`) and a server:
//
//     cd client_ts && npm run build
//     python3 -m cairn_tools.cluster -- node client_ts/bench/coalesce.mjs [--graphs 32] [--steps 50] [--rounds 3]
//
// Prints, per setting, saves/s (median of the rounds), save latency p50/p99 in ms, the client's CPU ms per save
// and the gRPC calls sent per save (counted with an interceptor).
import { parseArgs } from "node:util";
import { InterceptingCall } from "@grpc/grpc-js";
import { CairnClient } from "../dist/index.js";

const { values } = parseArgs({
  options: {
    target: { type: "string", default: process.env.CAIRN_TARGET },
    token: { type: "string", default: process.env.CAIRN_TOKEN },
    graphs: { type: "string", default: "32" },
    steps: { type: "string", default: "50" },
    rounds: { type: "string", default: "3" },
    bytes: { type: "string", default: "36500" },
  },
});
if (!values.target) {
  console.error("usage: coalesce.mjs --target HOST:PORT (or CAIRN_TARGET) [--graphs N --steps N --rounds N --bytes N]");
  process.exit(2);
}
const graphs = Number(values.graphs);
const steps = Number(values.steps);
const rounds = Number(values.rounds);

/** An agent-like JSON state of about `bytes` bytes (messages with text and tool calls), seeded. */
function agentState(seed, bytes) {
  let x = (seed * 2654435761) >>> 0 || 1;
  const rnd = (n) => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) % n;
  const words = ["search", "the", "weather", "in", "Paris", "tool", "result", "order", "ticket", "refund", "please",
    "assistant", "user", "price", "flight", "hotel", "booked", "for", "tomorrow", "status", "pending", "done"];
  const text = (n) => Array.from({ length: n }, () => words[rnd(words.length)]).join(" ");
  const messages = [];
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
  return new TextEncoder().encode(JSON.stringify({ step: seed, messages }));
}

const states = Array.from({ length: 64 }, (_, i) => agentState(i + 1, Number(values.bytes)));
const sent = { calls: 0 };
const counting = (options, nextCall) => {
  sent.calls += 1;
  return new InterceptingCall(nextCall(options));
};

/** One round: `graphs` graphs at once, each saving `steps` checkpoints one after the other. */
async function round(client, tag) {
  const latencies = [];
  const cpu = process.cpuUsage();
  const calls = sent.calls;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: graphs }, async (_, g) => {
      const threadId = `bench-coalesce-${tag}-${g}-${Date.now()}`;
      let parent = "";
      for (let step = 0; step < steps; step++) {
        const t0 = performance.now();
        const saved = await client.save({ threadId, parentCheckpointId: parent, state: states[(g + step) % states.length], stateType: "json", metadata: { step } });
        latencies.push(performance.now() - t0);
        parent = saved.checkpointId;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const saves = graphs * steps;
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
  return {
    savesPerSecond: saves / seconds,
    p50: pct(50),
    p99: pct(99),
    cpuMsPerSave: (used.user + used.system) / 1000 / saves,
    callsPerSave: (sent.calls - calls) / saves,
  };
}

const settings = [
  ["coalesce=4 (default)", 4],
  ["coalesce=0 (off)", 0],
];
const clients = settings.map(([, coalesce]) =>
  new CairnClient(values.target, { token: values.token || undefined, coalesce, channelOptions: { interceptors: [counting] } }),
);
const results = settings.map(() => []);
try {
  for (const client of clients) await round(client, "warmup"); // connections, JIT, the server's caches
  for (let r = 0; r < rounds; r++) {
    for (const [i, client] of clients.entries()) results[i].push(await round(client, `r${r}-${i}`));
  }
} finally {
  for (const client of clients) client.close();
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`${graphs} concurrent graphs x ${steps} saves of ~${(states[0].length / 1000).toFixed(1)} KB, ${rounds} rounds each, target ${values.target}`);
for (const [i, [name]] of settings.entries()) {
  const rs = results[i];
  const f = (key, digits) => median(rs.map((x) => x[key])).toFixed(digits);
  console.log(
    `${name.padEnd(22)} ${f("savesPerSecond", 0).padStart(6)} saves/s (rounds: ${rs.map((x) => x.savesPerSecond.toFixed(0)).join(", ")})` +
      `  p50 ${f("p50", 1)} ms  p99 ${f("p99", 1)} ms  client CPU ${f("cpuMsPerSave", 3)} ms/save  ${f("callsPerSave", 3)} calls/save`,
  );
}
