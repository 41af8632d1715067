package cairn

// BatchLimits is the most items the coalescers of c's saves and loads put in
// one batch call now (tests only: the limit comes down when the server refuses
// a batch as too large).
func BatchLimits(c *Client) (saves, loads int) {
	c.saves.mu.Lock()
	saves = c.saves.maxItems
	c.saves.mu.Unlock()
	c.loads.mu.Lock()
	loads = c.loads.maxItems
	c.loads.mu.Unlock()
	return saves, loads
}

// Wrap turns an error of a generated stub into the *Error the client returns.
func Wrap(err error) error { return wrap(err) }

// QueuedSaves is how many saves wait in c's queue for a sender (tests only).
func QueuedSaves(c *Client) int {
	c.saves.mu.Lock()
	defer c.saves.mu.Unlock()
	return len(c.saves.queue)
}

// BatchBytes is the most request bytes the coalescer of c's saves puts in one
// batch call now (tests only).
func BatchBytes(c *Client) int {
	c.saves.mu.Lock()
	defer c.saves.mu.Unlock()
	return c.saves.maxBytes
}
