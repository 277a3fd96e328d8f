package pipeline

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/miekg/dns"

	"github.com/phonehome-sensor/phonehome/rules"
	"github.com/phonehome-sensor/phonehome/sensor/internal/alert"
	"github.com/phonehome-sensor/phonehome/sensor/internal/capture"
	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"
	"github.com/phonehome-sensor/phonehome/sensor/internal/testcap"
)

// fakeLive is a live source fed by the test: ReadPacket returns what was
// put in, or capture.ErrTimeout after a short wait; io.EOF once closed.
type fakeLive struct {
	pkts chan []byte
	wait time.Duration
}

func newFakeLive(n int) *fakeLive {
	return &fakeLive{pkts: make(chan []byte, n), wait: 5 * time.Millisecond}
}

func (f *fakeLive) ReadPacket() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	select {
	case p, ok := <-f.pkts:
		if !ok {
			return nil, gopacket.CaptureInfo{}, 0, io.EOF
		}
		return p, gopacket.CaptureInfo{Timestamp: time.Now(), Length: len(p), CaptureLength: len(p)}, layers.LinkTypeEthernet, nil
	case <-time.After(f.wait):
		return nil, gopacket.CaptureInfo{}, 0, capture.ErrTimeout
	}
}
func (f *fakeLive) Name() string { return "fake" }
func (f *fakeLive) Close() error { return nil }

// liveConfig is a pipeline that emits every observation (Inspect) into
// events.
func liveConfig(t *testing.T, workers int, events chan<- *alert.Event) Config {
	t.Helper()
	set, err := rules.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Workers:   workers,
		Inspect:   true,
		Rules:     func() *rules.Set { return set },
		Inventory: inventory.New(inventory.Config{}),
		Emit:      func(e *alert.Event) { events <- e },
	}
}

func dnsFrames(t *testing.T, name string, id uint16) (query, answer []byte) {
	t.Helper()
	fs := frames(t, func(w *testcap.Writer) error {
		q := testcap.Query(name, dns.TypeA, id)
		return w.DNS(client, resolver, q, testcap.Reply(q, testcap.A(name, "192.0.2.7", 60)))
	})
	if len(fs) != 2 {
		t.Fatalf("%d frames", len(fs))
	}
	return fs[0], fs[1]
}

// TestRunLiveQuietLink: one packet on an otherwise silent link reaches its
// worker within a fraction of a second, while the capture goes on; a
// batch is not kept until it is full.
func TestRunLiveQuietLink(t *testing.T) {
	events := make(chan *alert.Event, 16)
	src := newFakeLive(4)
	q, _ := dnsFrames(t, "dnl-05.geo.kaspersky.com", 1)
	q2, _ := dnsFrames(t, "www.example.org", 2)
	src.pkts <- q
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var st *Stats
	var err error
	live := NewLive()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		cfg := liveConfig(t, 1, events) // one worker: the second packet comes within publishEvery of the first
		cfg.Live = live
		st, err = RunLive(ctx, []LiveInput{{Source: src, Worker: -1}}, cfg)
	}()
	select {
	case e := <-events:
		if e.DNS == nil || e.DNS.Question.Name != "dnl-05.geo.kaspersky.com" {
			t.Errorf("event %+v", e)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the packet was not handed over while the link stayed quiet")
	}
	// The running statistics (metrics) follow while the capture goes on,
	// a packet that comes soon after another included.
	src.pkts <- q2
	deadline := time.Now().Add(3 * time.Second)
	for live.Snapshot().DNSMessages != 2 || live.Snapshot().Packets != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("running statistics: %+v", live.Snapshot())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("RunLive: %v, want context.Canceled", err)
	}
	if st.Packets != 2 || st.DNSMessages != 2 {
		t.Errorf("packets %d, DNS messages %d", st.Packets, st.DNSMessages)
	}
}

// TestRunLiveBinding: a source bound to a worker feeds that worker only.
// The query and the answer of one flow come from two sources bound to two
// workers, so each worker sees half the flow: two flows are created. With
// the reader's own sharding (Worker -1) both go to one worker: one flow.
func TestRunLiveBinding(t *testing.T) {
	for _, tc := range []struct {
		name          string
		workers       [2]int
		flows, events uint64
	}{
		{"bound", [2]int{0, 1}, 2, 2},
		{"sharded", [2]int{-1, -1}, 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events := make(chan *alert.Event, 16)
			a, b := newFakeLive(1), newFakeLive(1)
			q, r := dnsFrames(t, "www.example.org", 7)
			a.pkts <- q
			b.pkts <- r
			close(a.pkts)
			close(b.pkts)
			st, err := RunLive(context.Background(), []LiveInput{{a, tc.workers[0]}, {b, tc.workers[1]}}, liveConfig(t, 2, events))
			if err != nil {
				t.Fatal(err)
			}
			if st.Packets != 2 || st.Flows.Created != tc.flows || st.Events != tc.events {
				t.Errorf("packets %d, flows %d (want %d), events %d (want %d)", st.Packets, st.Flows.Created, tc.flows, st.Events, tc.events)
			}
		})
	}
}

// TestRunLiveDrain: once told to stop, a reader still reads what its
// source holds (the kernel ring) before it ends.
func TestRunLiveDrain(t *testing.T) {
	const n = 600
	events := make(chan *alert.Event, 2*n)
	src := newFakeLive(n)
	for i := range n {
		q, _ := dnsFrames(t, "www.example.org", uint16(i))
		src.pkts <- q
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	st, err := RunLive(ctx, []LiveInput{{Source: src, Worker: 0}}, liveConfig(t, 1, events))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("RunLive: %v", err)
	}
	if st.Packets != n || st.DNSMessages != n {
		t.Errorf("packets %d, DNS messages %d, want %d", st.Packets, st.DNSMessages, n)
	}
}

// TestRunLiveSourceError: a source that fails ends its reader with a
// warning; the run ends when every source has.
func TestRunLiveSourceError(t *testing.T) {
	events := make(chan *alert.Event, 4)
	st, err := RunLive(context.Background(), []LiveInput{{Source: failing{}, Worker: -1}}, liveConfig(t, 1, events))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Warnings) != 1 {
		t.Errorf("warnings %q", st.Warnings)
	}
	if _, err := RunLive(context.Background(), []LiveInput{{Source: failing{}, Worker: 3}}, liveConfig(t, 2, events)); err == nil {
		t.Error("a source bound to worker 3 of 2 was accepted")
	}
}

type failing struct{}

func (failing) ReadPacket() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
	return nil, gopacket.CaptureInfo{}, 0, errors.New("interface went away")
}
func (failing) Name() string { return "failing" }
func (failing) Close() error { return nil }
