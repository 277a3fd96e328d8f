package alert

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// memSink records what it is sent; fail decides, per call, whether the
// call fails; block, when not nil, holds every Send until it is closed.
type memSink struct {
	mu     sync.Mutex
	got    []string
	calls  int
	fail   func(call int) error
	block  chan struct{}
	closed bool
}

func (m *memSink) Send(ctx context.Context, batch []*Record) error {
	if m.block != nil {
		select {
		case <-m.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.fail != nil {
		if err := m.fail(m.calls); err != nil {
			return err
		}
	}
	for _, r := range batch {
		m.got = append(m.got, r.Event.Event.Dataset)
	}
	return nil
}

func (m *memSink) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	return nil
}

func (m *memSink) received() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.got...)
}

func ev(kind string, i int) *Event {
	return &Event{Event: EventMeta{Kind: kind, Dataset: strconv.Itoa(i)}}
}

func fast(name string) OutputConfig {
	return OutputConfig{Name: name, Selection: Selection{Alerts: true}, RetryMin: time.Millisecond, RetryMax: 4 * time.Millisecond}
}

// TestBackPressure: one sink stops taking events. Emit never blocks, the
// stuck output's queue fills and the rest is dropped and counted, and the
// other output still gets every event.
func TestBackPressure(t *testing.T) {
	stuck := &memSink{block: make(chan struct{})}
	good := &memSink{}
	outs := NewOutputs(nil)
	cfg := fast("stuck")
	cfg.Queue = 100
	outs.Add(cfg, stuck)
	cfg = fast("good")
	cfg.Queue = 200000 // the good output must not drop either
	outs.Add(cfg, good)

	const n = 100000
	done := make(chan struct{})
	go func() {
		for i := range n {
			outs.Emit(ev(KindAlert, i))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second): // a liveness bound, not a speed figure: Emit blocked
		t.Fatal("Emit blocked on a stuck output")
	}
	close(stuck.block) // let it finish what it holds
	if err := outs.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := outs.Stats()
	s, g := st[0], st[1]
	if g.Sent != n || g.Dropped != 0 || g.Failed != 0 {
		t.Errorf("good output: %+v, want all %d sent", g, n)
	}
	if got := good.received(); len(got) != n || got[0] != "0" || got[n-1] != strconv.Itoa(n-1) {
		t.Errorf("good output received %d events", len(got))
	}
	if s.Dropped == 0 || s.Sent+s.Dropped+s.Failed != n {
		t.Errorf("stuck output: %+v: want drops, and sent+dropped+failed = %d", s, n)
	}
	if s.Sent > 256+100+1 { // the default batch, the queue, and the one being filled
		t.Errorf("stuck output sent %d: more than its queue and one batch", s.Sent)
	}
	if !stuck.closed || !good.closed {
		t.Error("sinks not closed")
	}
}

// TestRetry: failures are retried with backoff until the batch goes
// through; a permanent error fails the batch at once; running out of
// retries fails it.
func TestRetry(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		fail                   func(call int) error
		retries                int
		sent, failed, received int
		minRetried             uint64
	}{
		{"recovers", func(c int) error {
			if c <= 3 {
				return errors.New("connection refused")
			}
			return nil
		}, 10, 1, 0, 1, 3},
		{"permanent", func(int) error { return Permanent(errors.New("400 bad request")) }, 10, 0, 1, 0, 0},
		{"gives up", func(int) error { return errors.New("down") }, 2, 0, 1, 0, 2},
		{"no retries", func(int) error { return errors.New("down") }, -1, 0, 1, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &memSink{fail: tc.fail}
			var logged []string
			outs := NewOutputs(func(name string, err error) { logged = append(logged, name+": "+err.Error()) })
			cfg := fast("m")
			cfg.MaxRetries = tc.retries
			outs.Add(cfg, m)
			outs.Emit(ev(KindAlert, 1))
			if err := outs.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			s := outs.Stats()[0]
			if s.Sent != uint64(tc.sent) || s.Failed != uint64(tc.failed) || s.Retried < tc.minRetried || len(m.received()) != tc.received {
				t.Errorf("stats %+v, received %d", s, len(m.received()))
			}
			if tc.failed > 0 && (s.LastError == "" || len(logged) == 0 || !strings.HasPrefix(logged[0], "m: ")) {
				t.Errorf("failure not reported: last error %q, logged %q", s.LastError, logged)
			}
		})
	}
}

// TestCloseDeadline: a receiver that never answers cannot hold the end
// of a run: what it holds at the deadline is counted as failed.
func TestCloseDeadline(t *testing.T) {
	m := &memSink{block: make(chan struct{})}
	outs := NewOutputs(nil)
	outs.Add(fast("dead"), m)
	for i := range 10 {
		outs.Emit(ev(KindAlert, i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := outs.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if s := outs.Stats()[0]; s.Failed != 10 || s.Sent != 0 {
		t.Errorf("stats %+v, want 10 failed", s)
	}
}

// TestSelection: alerts by default; observations sampled exactly; an
// observations-only output takes no alerts.
func TestSelection(t *testing.T) {
	all, tenth, none, obsOnly := &memSink{}, &memSink{}, &memSink{}, &memSink{}
	outs := NewOutputs(nil)
	add := func(sel Selection, m *memSink) {
		c := fast("x")
		c.Selection = sel
		outs.Add(c, m)
	}
	add(Selection{Alerts: true, Observations: 1}, all)
	add(Selection{Alerts: true, Observations: 0.1}, tenth)
	add(Selection{Alerts: true}, none)
	add(Selection{Observations: 1}, obsOnly)
	if !outs.WantObservations() {
		t.Error("WantObservations false")
	}
	for i := range 1000 {
		outs.Emit(ev(KindEvent, i))
	}
	for i := range 5 {
		outs.Emit(ev(KindAlert, i))
	}
	outs.Close(context.Background())
	for _, tc := range []struct {
		name string
		m    *memSink
		want int
	}{{"all", all, 1005}, {"tenth", tenth, 105}, {"alerts only", none, 5}, {"observations only", obsOnly, 1000}} {
		if got := len(tc.m.received()); got != tc.want {
			t.Errorf("%s: %d events, want %d", tc.name, got, tc.want)
		}
	}
	if o := NewOutputs(nil); o.WantObservations() {
		t.Error("no outputs want observations")
	}
}

// TestFileSink: lines are appended (a restart keeps what was written),
// one JSON object per line, HTML-escaped, and Reopen follows logrotate.
func TestFileSink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.json")
	if err := os.WriteFile(path, []byte("{\"earlier\":1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := OpenFileSink(path, ECSFormat)
	if err != nil {
		t.Fatal(err)
	}
	hostile := &Event{Event: EventMeta{Kind: KindAlert}, TLS: &TLS{Client: TLSClient{ServerName: "a\nb<script>\x1b[31m\"\xff"}}}
	if err := s.Send(context.Background(), []*Record{NewRecord(hostile)}); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Reopen(); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), []*Record{NewRecord(ev(KindAlert, 7))}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	old := lines(t, path+".1")
	if len(old) != 2 || old[0] != `{"earlier":1}` {
		t.Fatalf("rotated file: %q", old)
	}
	if strings.ContainsAny(old[1], "<>\x1b") || !strings.Contains(old[1], `\u003cscript\u003e`) {
		t.Errorf("not escaped: %s", old[1])
	}
	var back Event
	if err := json.Unmarshal([]byte(old[1]), &back); err != nil {
		t.Fatal(err)
	}
	if cur := lines(t, path); len(cur) != 1 || !strings.Contains(cur[0], `"dataset":"7"`) {
		t.Errorf("new file: %q", cur)
	}
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		raw, scheme, name, path, rest string
		obs                           float64
		alerts                        bool
		queue                         int
	}{
		{"ecs:-", "ecs", "ecs:-", "-", "", 0, true, 0},
		{"ecs:", "ecs", "ecs:-", "-", "", 0, true, 0},
		{"eve:/var/log/eve.json?observations=all&queue=5", "eve", "eve:/var/log/eve.json", "/var/log/eve.json", "", 1, true, 5},
		{"syslog+tcp://127.0.0.1:514?facility=local3&observations=0.25", "syslog+tcp", "syslog+tcp://127.0.0.1:514", "", "facility=local3", 0.25, true, 0},
		{"kafka://user:secret@b1:9092,b2/phonehome?alerts=false&observations=1", "kafka", "kafka://b1:9092,b2/phonehome", "", "", 1, false, 0},
	} {
		s, err := ParseSpec(tc.raw)
		if err != nil {
			t.Errorf("%s: %v", tc.raw, err)
			continue
		}
		rest := ""
		if s.URL != nil {
			rest = s.URL.RawQuery
		}
		if s.Scheme != tc.scheme || s.Config.Name != tc.name || s.Path != tc.path || rest != tc.rest ||
			s.Config.Observations != tc.obs || s.Config.Alerts != tc.alerts || s.Config.Queue != tc.queue {
			t.Errorf("%s: got %+v (rest %q)", tc.raw, s, rest)
		}
		if strings.Contains(s.Config.Name, "secret") {
			t.Errorf("%s: credentials in the name %q", tc.raw, s.Config.Name)
		}
	}
	for _, tc := range []struct{ raw, want string }{
		{"nothing", "want SCHEME:"},
		{"syslog+udp:///x", "no host"},
		{"ecs:x?observations=2", "not between 0 and 1"},
		{"ecs:x?queue=-1", "must be positive"},
		{"ecs:x?alerts=false", "nothing to send"},
		{"ecs:x?linger=soon", "option linger"},
	} {
		if _, err := ParseSpec(tc.raw); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.raw, err, tc.want)
		}
	}
	for _, raw := range []string{"kafka://u:hunter2@b1,b2/t?queue=0", "webhook+https://u:hunter2@h/x?bogus=1", "webhook+https://u:hunter2@h:port/x"} {
		s, err := ParseSpec(raw)
		if err == nil {
			err = s.Unknown()
		}
		if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "u:xxxxx@") {
			t.Errorf("%s: error %v: want one, without the password", raw, err)
		}
	}
	s, _ := ParseSpec("syslog+udp://h:1?facility=x&bogus=1")
	if err := s.Unknown("facility"); err == nil || !strings.Contains(err.Error(), `unknown option "bogus"`) {
		t.Errorf("Unknown: %v", err)
	}
	if err := s.Unknown("facility", "bogus"); err != nil {
		t.Error(err)
	}
}

// BenchmarkEmit is the cost the pipeline pays per event and output.
func BenchmarkEmit(b *testing.B) {
	outs := NewOutputs(nil)
	cfg := fast("b")
	cfg.Queue = 1 << 20
	outs.Add(cfg, &memSink{})
	e := ev(KindAlert, 1)
	b.ReportAllocs()
	for b.Loop() {
		outs.Emit(e)
	}
	b.StopTimer()
	outs.Close(context.Background())
}

// TestPartlyFailed: a batch sent but for events the receiver can never
// take counts those as failed, the rest as sent, and is not retried.
func TestPartlyFailed(t *testing.T) {
	m := &memSink{fail: func(int) error { return PartlyFailed(1, errors.New("1 of 3 events too long")) }}
	outs := NewOutputs(nil)
	c := fast("p")
	c.Linger = time.Second // the three events make one batch
	c.Batch = 3
	outs.Add(c, m)
	for i := range 3 {
		outs.Emit(ev(KindAlert, i))
	}
	outs.Close(context.Background())
	if s := outs.Stats()[0]; s.Sent != 2 || s.Failed != 1 || s.Retried != 0 || m.calls != 1 {
		t.Errorf("stats %+v after %d calls, want 2 sent, 1 failed, no retry", s, m.calls)
	}
}
