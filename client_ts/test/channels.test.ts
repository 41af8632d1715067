/** `channels: N`: calls go round-robin over N connections, so one client reaches every `cairn serve --workers` process. */
import { CairnClient } from "../src/index.js";
import { newThread, sharedOptions, target, utf8 } from "./helpers.js";

describe("channels", () => {
  it("round-robins unary calls over a pool and every call succeeds", async () => {
    const client = new CairnClient(target(), { ...sharedOptions(), channels: 3 });
    try {
      const threads = Array.from({ length: 12 }, () => newThread("ts-pool"));
      await Promise.all(threads.map((threadId, i) => client.save({ threadId, state: utf8(`{"i":${i}}`), stateType: "json" })));
      const loaded = await Promise.all(threads.map((threadId) => client.load({ threadId })));
      expect(loaded.map((c) => new TextDecoder().decode(c.checkpoint.state))).toEqual(threads.map((_, i) => `{"i":${i}}`));
    } finally {
      client.close();
    }
  });

  it("refuses a channel count below 1", () => {
    expect(() => new CairnClient(target(), { channels: 0 })).toThrow(/channels must be an integer >= 1/);
  });
});
