package inventory

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// FlushStats counts the flusher's work, for the summary and metrics.
type FlushStats struct {
	Flushes, Failures uint64
	Rows              uint64
	LastDuration      time.Duration
	LastError         error
	Pending           int // batches kept for a retry after a failure
}

// Flusher writes the inventory's deltas to a Store: every interval, at
// once when a host is seen for the first time or crosses its deadline,
// and a last time when its context ends. The packet path never waits on
// it: the output stage only hands deltas over (TakeBatch). A failed
// write is retried with the next one; at most maxRetained batches wait,
// the oldest beyond are dropped and counted as failures.
type Flusher struct {
	inv   *Inventory
	store Store
	every time.Duration
	log   *slog.Logger

	mu      sync.Mutex
	stats   FlushStats
	retry   []*Batch
	flushMu sync.Mutex
}

const maxRetained = 16

// NewFlusher returns a flusher; every defaults to 5 s.
func NewFlusher(inv *Inventory, st Store, every time.Duration, log *slog.Logger) *Flusher {
	if every <= 0 {
		every = 5 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Flusher{inv: inv, store: st, every: every, log: log}
}

// Run flushes until ctx ends, then flushes what is left (with a fresh
// deadline of 30 s) and returns.
func (f *Flusher) Run(ctx context.Context) {
	t := time.NewTicker(f.every)
	defer t.Stop()
	// A write is never cut by ctx: a write aborted at shutdown would only
	// be made again by the final flush, after an error in the log.
	write := func() {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		f.Flush(wctx)
		cancel()
	}
	for {
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-f.inv.notify:
		}
		final := ctx.Err() != nil // checked before: a cancel during a write makes one more
		write()
		if final {
			return
		}
	}
}

// Flush writes what changed since the last flush, and any batch a failed
// write left behind.
func (f *Flusher) Flush(ctx context.Context) error {
	f.flushMu.Lock()
	defer f.flushMu.Unlock()
	b, _ := f.inv.TakeBatch()
	f.mu.Lock()
	todo := append(f.retry, b)
	f.retry = nil
	f.mu.Unlock()
	var firstErr error
	for _, b := range todo {
		if b.Len() == 0 {
			continue
		}
		start := time.Now()
		err := f.store.Write(ctx, b)
		f.mu.Lock()
		f.stats.Flushes++
		f.stats.LastDuration = time.Since(start)
		if err != nil {
			f.stats.Failures++
			f.stats.LastError = err
			f.retry = append(f.retry, b)
			if len(f.retry) > maxRetained {
				f.retry = f.retry[1:]
			}
			if firstErr == nil {
				firstErr = err
				f.log.Error("inventory flush failed; will retry", "err", err, "rows", b.Len())
			}
		} else {
			f.stats.Rows += uint64(b.Len())
		}
		f.stats.Pending = len(f.retry)
		f.mu.Unlock()
	}
	return firstErr
}

// Stats returns the flusher's counters.
func (f *Flusher) Stats() FlushStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}
