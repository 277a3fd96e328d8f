package pipeline

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/phonehome-sensor/phonehome/sensor/internal/decode"
	"github.com/phonehome-sensor/phonehome/sensor/internal/flow"
)

// defaults fills the zero fields of a Config both entry points share.
func (cfg *Config) defaults() error {
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Rules == nil {
		return errors.New("pipeline: no rules")
	}
	return nil
}

// stages are what Run and RunLive share: the workers, each draining its
// queue of batches, and the single output goroutine they feed.
type stages struct {
	cfg     *Config
	obs     chan *observation
	out     *output
	outWG   sync.WaitGroup
	workers []*worker
	wg      sync.WaitGroup
}

// startStages starts one worker per queue and the output goroutine. A
// worker gives each batch back to free(i) once processed.
func startStages(cfg *Config, queues []chan *batch, free func(i int) chan<- *batch) *stages {
	s := &stages{cfg: cfg, obs: make(chan *observation, 1024), out: &output{cfg: cfg}}
	s.outWG.Add(1)
	go func() {
		defer s.outWG.Done()
		for o := range s.obs {
			s.out.handle(o)
		}
	}()
	n := len(queues)
	s.workers = make([]*worker, n)
	for i := range s.workers {
		// Workers are made one after the other: newWorker fills the
		// shared defaults of cfg (ECH names, learned table) without a race.
		s.workers[i] = newWorker(cfg, s.obs)
	}
	if cfg.Live != nil {
		cfg.Live.init(n, cfg.Learned)
	}
	for i, w := range s.workers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.drain(i, w, queues[i], free(i))
		}()
	}
	return s
}

// drain runs worker i over its queue until the queue is closed. Counters
// are published for the metrics at most every publishEvery, and also
// after a quiet spell: a live link may stay silent for hours after the
// last batch.
func (s *stages) drain(i int, w *worker, queue <-chan *batch, free chan<- *batch) {
	live := s.cfg.Live
	var (
		published time.Time
		dirty     bool
		tick      <-chan time.Time
	)
	if live != nil {
		t := time.NewTicker(publishEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case b, ok := <-queue:
			if !ok {
				w.finish()
				if live != nil {
					live.publish(i, w)
				}
				return
			}
			w.batch(b)
			dirty = true
			if live != nil && time.Since(published) >= publishEvery {
				live.publish(i, w)
				published, dirty = time.Now(), false
			}
			b.release()
			b.data, b.pkts = b.data[:0], b.pkts[:0]
			free <- b
		case <-tick:
			if dirty {
				live.publish(i, w)
				published, dirty = time.Now(), false
			}
		}
	}
}

// stop waits for the workers (their queues closed by the caller) and
// the output, then fills st with what they counted. first and last are
// the packet times of the first and last packet read (0: none).
func (s *stages) stop(st *Stats, queueDrops uint64, first, last int64) {
	s.wg.Wait()
	close(s.obs)
	s.outWG.Wait()
	st.QueueDrops = queueDrops
	for _, w := range s.workers {
		st.addWorker(&w.c, &w.dec.Stats, &w.flows.Stats)
	}
	st.addLearned(s.cfg.Learned)
	st.Events, st.Alerts = s.out.events, s.out.alerts
	if first != 0 {
		st.First, st.Last = time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
	}
	st.Elapsed = time.Since(st.Started)
}

// addWorker adds one worker's counters.
func (st *Stats) addWorker(c *Counters, dec *decode.Stats, fs *flow.Stats) {
	st.Decode.Add(dec)
	st.Counters.add(c)
	st.Flows.Created += fs.Created
	st.Flows.Expired += fs.Expired
	st.Flows.Refused += fs.Refused
	st.Flows.Evicted += fs.Evicted
	st.Flows.Active += fs.Active
	st.Flows.Peak += fs.Peak
}

// addLearned records the learned-address table's state.
func (st *Stats) addLearned(l *Learned) {
	if l == nil {
		return
	}
	st.LearnedLen = l.Len()
	st.LearnedAdded, st.LearnedEvicted, st.LearnedExpired = l.Added.Load(), l.Evicted.Load(), l.Expired.Load()
}
