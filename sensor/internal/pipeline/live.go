package pipeline

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phonehome-sensor/phonehome/sensor/internal/capture"
	"github.com/phonehome-sensor/phonehome/sensor/internal/decode"
)

// LiveInput is one live source and where its packets go.
type LiveInput struct {
	Source capture.Source
	// Worker is the worker that gets every packet of Source: the kernel
	// already spread the interface's packets over its sockets by a
	// symmetric flow hash (AF_PACKET fanout), so socket i feeds worker i
	// and a flow stays on one worker. -1: the packets are spread over
	// the workers by decode.FlowHash, as Run does.
	Worker int
}

// LiveFlush bounds how long a packet waits in a partly filled batch
// before it is handed to its worker: on a quiet link a batch may take
// minutes to fill.
const LiveFlush = 100 * time.Millisecond

// liveDrain bounds the time spent, once told to stop, reading what the
// kernel still holds.
const liveDrain = time.Second

// RunLive reads live sources until ctx is done or every source has
// ended, and returns the run's statistics (with ctx.Err()). Once ctx is
// done, each reader still reads what its source holds (the kernel ring)
// until the source has nothing for a poll timeout, for at most a second,
// so that packets already captured are not lost at shutdown. Each source
// has a reader goroutine of its own, which copies packets into batches
// (as Run does) and hands a batch to its worker when it is full, when
// its first packet is LiveFlush old, or when the source had nothing to
// say for its poll timeout (capture.ErrTimeout).
//
// A reader bound to a worker (Worker ≥ 0) waits when that worker is
// behind: the kernel ring buffers meanwhile and counts what it cannot
// hold (capture.LiveStats.KernelDrops). A sharding reader (Worker -1)
// would hold up every worker for one slow one, so with cfg.Lossy it drops
// the packet instead (Stats.QueueDrops).
func RunLive(ctx context.Context, inputs []LiveInput, cfg Config) (*Stats, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if len(inputs) == 0 {
		return nil, errors.New("pipeline: no live source")
	}
	n := cfg.Workers
	for _, in := range inputs {
		if in.Worker >= n {
			return nil, errors.New("pipeline: a live source is bound to a worker that does not exist")
		}
	}
	st := &Stats{Started: time.Now()}

	// Each worker has its own pool of batches, so that a slow worker
	// runs short of batches alone. A queue holds every batch of its
	// pool: handing over never blocks, only taking a free batch can.
	pool := queueDepth + 2 + len(inputs)
	free := make([]chan *batch, n)
	queues := make([]chan *batch, n)
	for i := range n {
		free[i] = make(chan *batch, pool)
		queues[i] = make(chan *batch, pool)
		for range pool {
			free[i] <- &batch{data: make([]byte, 0, batchBytes), pkts: make([]pktRef, 0, batchPackets)}
		}
	}
	stg := startStages(&cfg, queues, func(i int) chan<- *batch { return free[i] })

	var (
		drops    atomic.Uint64
		mu       sync.Mutex // guards st.Warnings and the totals below
		rwg      sync.WaitGroup
		first    int64
		last     int64
		packets  uint64
		bytes    uint64
		readers  = make([]*liveReader, len(inputs))
		warnings []string
	)
	for k, in := range inputs {
		r := &liveReader{in: in, n: n, free: free, queues: queues, lossy: cfg.Lossy && in.Worker < 0, drops: &drops, live: cfg.Live,
			cur: make([]*batch, n), born: make([]int64, n)}
		readers[k] = r
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			err := r.run(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				warnings = append(warnings, err.Error())
				cfg.Log.Warn("capture ended", "source", in.Source.Name(), "err", err)
			}
			packets += r.packets
			bytes += r.bytes
			if r.first != 0 && (first == 0 || r.first < first) {
				first = r.first
			}
			last = max(last, r.last)
		}()
	}
	rwg.Wait()
	for _, q := range queues {
		close(q)
	}
	st.Packets, st.Bytes = packets, bytes
	st.Warnings = append(st.Warnings, warnings...)
	stg.stop(st, drops.Load(), first, last)
	return st, ctx.Err()
}

// liveReader is the goroutine that reads one live source.
type liveReader struct {
	in     LiveInput
	n      int
	free   []chan *batch
	queues []chan *batch
	lossy  bool
	drops  *atomic.Uint64
	live   *Live // the running statistics (nil: none kept)

	cur  []*batch // the batch being filled for each worker
	born []int64  // packet time of its first packet
	// lastCheck is the packet time at which partly filled batches were
	// last looked at.
	lastCheck int64

	packets, bytes uint64
	first, last    int64
}

// run reads until ctx is done or the source ends; it returns the source's
// error, if any, once everything read was handed over.
func (r *liveReader) run(ctx context.Context) error {
	defer r.flushAll()
	const checkEvery = int64(LiveFlush / 4)
	done := ctx.Done()
	var drainUntil time.Time
	for {
		if drainUntil.IsZero() {
			select {
			case <-done:
				// Told to stop: what the kernel already holds is read
				// first, until the source has nothing more to say.
				drainUntil = time.Now().Add(liveDrain)
			default:
			}
		} else if time.Now().After(drainUntil) {
			return nil
		}
		data, ci, lt, err := r.in.Source.ReadPacket()
		if err != nil {
			if errors.Is(err, capture.ErrTimeout) {
				r.flushAll()
				if !drainUntil.IsZero() {
					return nil
				}
				continue
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		r.packets++
		r.bytes += uint64(ci.Length)
		if r.live != nil {
			r.live.packets.Add(1)
			r.live.bytes.Add(uint64(ci.Length))
		}
		ts := ci.Timestamp.UnixNano()
		if r.first == 0 {
			r.first = ts
		}
		r.last = max(r.last, ts)
		i := r.in.Worker
		if i < 0 {
			i = 0
			if r.n > 1 {
				i = int(decode.FlowHash(lt, data) % uint32(r.n))
			}
		}
		b := r.cur[i]
		if b != nil && b.full(len(data)) {
			r.send(i)
			b = nil
		}
		if b == nil {
			if r.lossy {
				select {
				case b = <-r.free[i]:
				default:
					r.drops.Add(1)
					if r.live != nil {
						r.live.queueDrops.Add(1)
					}
					continue
				}
			} else {
				b = <-r.free[i]
			}
			r.cur[i], r.born[i] = b, ts
		}
		off := len(b.data)
		b.data = append(b.data, data...)
		b.pkts = append(b.pkts, pktRef{Off: uint32(off), Len: uint32(len(data)), WireLen: uint32(ci.Length), LinkType: lt, TS: ts})
		if len(b.pkts) >= batchPackets {
			r.send(i)
		}
		// Packet time comes from the kernel's clock: it tells how long
		// the other batches have waited without a system call. A clock
		// set back hands everything over.
		if ts-r.lastCheck >= checkEvery || ts < r.lastCheck {
			r.lastCheck = ts
			for j, b := range r.cur {
				if b != nil && (ts-r.born[j] >= int64(LiveFlush) || ts < r.born[j]) {
					r.send(j)
				}
			}
		}
	}
}

func (r *liveReader) send(i int) {
	if b := r.cur[i]; b != nil {
		r.cur[i] = nil
		if len(b.pkts) == 0 {
			r.free[i] <- b
			return
		}
		r.queues[i] <- b
	}
}

func (r *liveReader) flushAll() {
	for i := range r.cur {
		r.send(i)
	}
}
