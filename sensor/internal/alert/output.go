package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Record is one event on its way to the sinks. The same Record goes to
// every sink, so its Event must not change after Emit; the ECS JSON is
// encoded once, by whichever sink asks first.
type Record struct {
	Event *Event
	once  sync.Once
	json  []byte
	err   error
}

// NewRecord wraps e.
func NewRecord(e *Event) *Record { return &Record{Event: e} }

// ECSJSON returns the event as one line of ECS JSON, without the newline.
// HTML characters are escaped too (\u003c), so that a <script> read from
// the wire stays inert in whatever shows the line.
func (r *Record) ECSJSON() ([]byte, error) {
	r.once.Do(func() { r.json, r.err = MarshalECS(r.Event) })
	return r.json, r.err
}

// MarshalECS encodes e as ECS JSON, without a trailing newline.
func MarshalECS(e *Event) ([]byte, error) {
	b, err := json.Marshal(e) // escapes <, > and & as json.Encoder.SetEscapeHTML(true)
	if err != nil {
		return nil, fmt.Errorf("encoding event: %w", err)
	}
	return b, nil
}

// Sink delivers batches of events to one receiver. Send is called from a
// single goroutine per sink, never concurrently with itself; an error
// makes the output retry the whole batch later, unless it is Permanent.
type Sink interface {
	Send(ctx context.Context, batch []*Record) error
	Close() error
}

// Reopener is a sink writing to a file that logrotate may move away:
// Reopen (SIGHUP) starts a new file under the same name.
type Reopener interface {
	Reopen() error
}

// permanent marks an error that retrying cannot fix.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying (a receiver that refused the
// batch as malformed, say): the batch is counted as failed at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// partial is a batch delivered but for some events that cannot ever be.
type partial struct {
	failed int
	err    error
}

func (p partial) Error() string { return p.err.Error() }
func (p partial) Unwrap() error { return p.err }

// PartlyFailed reports that a batch went out except for failed events
// that retrying cannot deliver (too long for the receiver, say): they are
// counted as failed, the rest as sent, and the batch is not retried.
func PartlyFailed(failed int, err error) error {
	if failed == 0 || err == nil {
		return nil
	}
	return partial{failed, err}
}

// IsPermanent tells whether err was marked with Permanent or
// PartlyFailed: retrying would not help.
func IsPermanent(err error) bool {
	var p permanent
	var q partial
	return errors.As(err, &p) || errors.As(err, &q)
}

// Selection says which events an output takes.
type Selection struct {
	// Alerts: every alert (the default for every sink).
	Alerts bool
	// Observations is the share of observations (event.kind "event") the
	// output takes, 0 to 1: 0 takes none, 1 all, 0.1 one in ten. The
	// sampling is deterministic (every 1/p-th), so tests and reruns agree.
	Observations float64
}

// OutputConfig tunes the queue, batching and retries of one output.
type OutputConfig struct {
	Name string // shown in logs and as the metrics' output label: from the configuration, credentials removed
	Selection
	Queue      int           // events waiting; more are dropped and counted (default 10000)
	Batch      int           // events per Send at most (default 256)
	Linger     time.Duration // wait this long for a batch to fill (default 0: send what is there)
	RetryMin   time.Duration // first backoff (default 100ms); doubled up to RetryMax, with full jitter
	RetryMax   time.Duration // default 30s
	MaxRetries int           // attempts after the first before the batch is failed (default 10; <0: none)
}

func (c *OutputConfig) defaults() {
	if c.Queue <= 0 {
		c.Queue = 10000
	}
	if c.Batch <= 0 {
		c.Batch = 256
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 100 * time.Millisecond
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = max(30*time.Second, c.RetryMin)
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = 10
	}
}

// OutputStats counts what one output did with the events given to it.
// Every event offered is, in the end, exactly one of sent, dropped or
// failed (or still queued); retried counts events re-sent.
type OutputStats struct {
	Name                           string
	Sent, Retried, Dropped, Failed uint64
	Queued, QueueCap               int
	LastError                      string
}

// Output is one sink with its queue and its goroutine.
type Output struct {
	cfg  OutputConfig
	sink Sink
	q    chan *Record
	done chan struct{}
	seen uint64 // observations offered (Emit's goroutine only), for sampling

	sent, retried, dropped, failed atomic.Uint64
	errMu                          sync.Mutex
	lastErr                        string
	onError                        func(name string, err error)
}

// Outputs fans events out to every output. Offer never blocks: a full
// queue drops the event and counts it, so a slow or dead receiver never
// slows the capture.
type Outputs struct {
	outs    []*Output
	onError func(name string, err error)
	ctx     context.Context // cancelled by Close when its deadline passes
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closed  bool
}

// NewOutputs starts one goroutine per sink. onError, when not nil, is
// told of each failed send (for logs); it must not block for long.
func NewOutputs(onError func(name string, err error)) *Outputs {
	ctx, cancel := context.WithCancel(context.Background())
	return &Outputs{ctx: ctx, cancel: cancel, onError: onError}
}

// Add starts an output for sink.
func (o *Outputs) Add(cfg OutputConfig, sink Sink) *Output {
	cfg.defaults()
	out := &Output{cfg: cfg, sink: sink, q: make(chan *Record, cfg.Queue), done: make(chan struct{}), onError: o.onError}
	o.outs = append(o.outs, out)
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		defer close(out.done)
		out.run(o.ctx)
	}()
	return out
}

// Len is the number of outputs.
func (o *Outputs) Len() int { return len(o.outs) }

// WantObservations tells whether any output takes observations, so that
// the pipeline builds events for unmatched observations only when needed.
func (o *Outputs) WantObservations() bool {
	for _, out := range o.outs {
		if out.cfg.Observations > 0 {
			return true
		}
	}
	return false
}

// Emit offers e to every output that takes its kind. It is called from
// one goroutine (the pipeline's output stage).
func (o *Outputs) Emit(e *Event) {
	var r *Record
	for _, out := range o.outs {
		if !out.wants(e) {
			continue
		}
		if r == nil {
			r = NewRecord(e)
		}
		select {
		case out.q <- r:
		default:
			out.dropped.Add(1)
		}
	}
}

func (out *Output) wants(e *Event) bool {
	if e.Event.Kind == KindAlert {
		return out.cfg.Alerts
	}
	p := out.cfg.Observations
	if p <= 0 {
		return false
	}
	if p >= 1 {
		return true
	}
	// Every 1/p-th: exactly ⌊n·p⌋ of the first n observations.
	out.seen++
	return uint64(float64(out.seen)*p) > uint64(float64(out.seen-1)*p)
}

// Reopen reopens every file sink (SIGHUP, for logrotate). Every sink is
// tried; the errors are joined.
func (o *Outputs) Reopen() error {
	var errs []error
	for _, out := range o.outs {
		if r, ok := out.sink.(Reopener); ok {
			if err := r.Reopen(); err != nil {
				errs = append(errs, fmt.Errorf("output %s: %w", out.cfg.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Stats returns the counters of every output, in the order added.
func (o *Outputs) Stats() []OutputStats {
	s := make([]OutputStats, len(o.outs))
	for i, out := range o.outs {
		s[i] = out.Stats()
	}
	return s
}

// Stats returns the output's counters.
func (out *Output) Stats() OutputStats {
	out.errMu.Lock()
	le := out.lastErr
	out.errMu.Unlock()
	return OutputStats{Name: out.cfg.Name, Sent: out.sent.Load(), Retried: out.retried.Load(),
		Dropped: out.dropped.Load(), Failed: out.failed.Load(), Queued: len(out.q), QueueCap: cap(out.q), LastError: le}
}

// Close stops taking events and lets every output send what it holds,
// retrying as usual, until ctx ends: what is still unsent then is counted
// as failed. The sinks are closed. Close must not run concurrently with Emit.
func (o *Outputs) Close(ctx context.Context) error {
	if o.closed {
		return nil
	}
	o.closed = true
	for _, out := range o.outs {
		close(out.q)
	}
	finished := make(chan struct{})
	go func() { o.wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-ctx.Done():
		o.cancel()
		<-finished
	}
	o.cancel()
	var errs []error
	for _, out := range o.outs {
		if err := out.sink.Close(); err != nil {
			errs = append(errs, fmt.Errorf("output %s: %w", out.cfg.Name, err))
		}
	}
	return errors.Join(errs...)
}

// run takes batches off the queue and sends them until the queue is
// closed and empty.
func (out *Output) run(ctx context.Context) {
	batch := make([]*Record, 0, out.cfg.Batch)
	var linger *time.Timer
	for {
		r, ok := <-out.q
		if !ok {
			return
		}
		batch = append(batch[:0], r)
		open := out.fill(&batch) // a closed queue is drained by the next receive
		if open && out.cfg.Linger > 0 && len(batch) < out.cfg.Batch {
			if linger == nil {
				linger = time.NewTimer(out.cfg.Linger)
			} else {
				linger.Reset(out.cfg.Linger)
			}
		wait:
			for len(batch) < out.cfg.Batch {
				select {
				case r, ok := <-out.q:
					if !ok {
						open = false
						break wait
					}
					batch = append(batch, r)
				case <-linger.C:
					break wait
				case <-ctx.Done():
					break wait
				}
			}
			linger.Stop()
		}
		out.send(ctx, batch)
		clear(batch) // let the sent events be collected
	}
}

// fill adds what is waiting, up to a full batch; it reports whether the
// queue is still open.
func (out *Output) fill(batch *[]*Record) bool {
	for len(*batch) < out.cfg.Batch {
		select {
		case r, ok := <-out.q:
			if !ok {
				return false
			}
			*batch = append(*batch, r)
		default:
			return true
		}
	}
	return true
}

// send delivers one batch, retrying with exponential backoff and full
// jitter, until it goes through, fails permanently, runs out of retries
// or ctx ends (Close's deadline).
func (out *Output) send(ctx context.Context, batch []*Record) {
	n := uint64(len(batch))
	backoff := out.cfg.RetryMin
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			out.failed.Add(n)
			out.noteError(fmt.Errorf("gave up at shutdown: %w", ctx.Err()))
			return
		}
		err := out.sink.Send(ctx, batch)
		if err == nil {
			out.sent.Add(n)
			return
		}
		out.noteError(err)
		var p partial
		if errors.As(err, &p) {
			f := min(uint64(p.failed), n)
			out.sent.Add(n - f)
			out.failed.Add(f)
			return
		}
		if IsPermanent(err) || out.cfg.MaxRetries < 0 || attempt >= out.cfg.MaxRetries {
			out.failed.Add(n)
			return
		}
		t := time.NewTimer(rand.N(backoff) + 1)
		select {
		case <-t.C:
		case <-ctx.Done(): // shutdown's deadline: not retried, failed
			t.Stop()
			out.failed.Add(n)
			return
		}
		out.retried.Add(n)
		backoff = min(backoff*2, out.cfg.RetryMax)
	}
}

func (out *Output) noteError(err error) {
	out.errMu.Lock()
	out.lastErr = err.Error()
	out.errMu.Unlock()
	if out.onError != nil {
		out.onError(out.cfg.Name, err)
	}
}
