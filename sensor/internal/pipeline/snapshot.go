package pipeline

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/phonehome-sensor/phonehome/sensor/internal/decode"
	"github.com/phonehome-sensor/phonehome/sensor/internal/flow"
)

// Live lets another goroutine (the metrics endpoint) read a running
// pipeline's statistics. Workers keep plain counters and publish a copy
// at most every publishEvery of wall time, so the packet path pays
// nothing for it; the reader's counters are atomics.
type Live struct {
	mu      sync.Mutex
	workers []workerSnap

	packets, bytes, queueDrops atomic.Uint64
	events, alerts             atomic.Uint64
	learned                    *Learned
	started                    time.Time
}

type workerSnap struct {
	c     Counters
	dec   decode.Stats
	flows flow.Stats
}

const publishEvery = 500 * time.Millisecond

// NewLive returns an empty Live for a pipeline of n workers.
func NewLive() *Live { return &Live{started: time.Now()} }

func (l *Live) init(n int, learned *Learned) {
	l.mu.Lock()
	l.workers = make([]workerSnap, n)
	l.learned = learned
	l.mu.Unlock()
}

// publish copies one worker's counters.
func (l *Live) publish(i int, w *worker) {
	l.mu.Lock()
	if i < len(l.workers) {
		l.workers[i] = workerSnap{c: w.c, dec: w.dec.Stats, flows: w.flows.Stats}
	}
	l.mu.Unlock()
}

// Snapshot returns the statistics as last published: counters only
// grow between two snapshots (until the pipeline restarts).
func (l *Live) Snapshot() *Stats {
	st := &Stats{Started: l.started}
	l.mu.Lock()
	for i := range l.workers {
		ws := &l.workers[i]
		st.addWorker(&ws.c, &ws.dec, &ws.flows)
	}
	learned := l.learned
	l.mu.Unlock()
	st.Packets, st.Bytes, st.QueueDrops = l.packets.Load(), l.bytes.Load(), l.queueDrops.Load()
	st.Events, st.Alerts = l.events.Load(), l.alerts.Load()
	st.addLearned(learned)
	st.Elapsed = time.Since(l.started)
	return st
}
