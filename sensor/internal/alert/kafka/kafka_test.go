package kafka

// No real Kafka broker can be installed on the build machines (there is no
// Debian package for it), so these tests run the sink against kfake,
// franz-go's in-process Kafka cluster that speaks the real wire protocol
// (produce, fetch, SASL, TLS), over real TCP sockets.

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/phonehome-sensor/phonehome/sensor/internal/alert"
	"github.com/phonehome-sensor/phonehome/sensor/internal/testsvc"
)

var hosts = []string{"10.0.0.1", "10.0.0.2", "fd00::3"}

// newCluster starts a kfake cluster with TOPIC and TOPIC.observations
// seeded (3 partitions each, so keys can spread) and returns its brokers
// as the URL's host part.
func newCluster(t testing.TB, opts ...kfake.Opt) (*kfake.Cluster, string) {
	t.Helper()
	c := testsvc.StartKafka(t, append([]kfake.Opt{kfake.SeedTopics(3, "alerts", "alerts.observations", "obs")}, opts...)...)
	return c, strings.Join(c.ListenAddrs(), ",")
}

func newSink(t testing.TB, raw string) *Sink {
	t.Helper()
	spec, err := alert.ParseSpec(raw)
	if err != nil {
		t.Fatalf("ParseSpec(%q): %v", raw, err)
	}
	s, err := New(spec)
	if err != nil {
		t.Fatalf("New(%q): %v", raw, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// event makes an event whose JSON is unique (seq) and carries a string
// that must stay HTML-escaped in the value.
func event(kind, ip string, seq int) *alert.Record {
	return alert.NewRecord(&alert.Event{
		Timestamp: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Event:     alert.EventMeta{Kind: kind, Dataset: "phonehome.test", Module: "phonehome", Reason: fmt.Sprintf("seq %d <script>", seq)},
		Network:   alert.Network{Transport: "tcp"},
		Source:    alert.Endpoint{IP: ip, Port: uint16(40000 + seq)},
		Destination: alert.Endpoint{
			IP: "192.0.2.1", Port: 443,
		},
	})
}

type want struct {
	topic, key, kind string
	seq              int
}

// makeBatches builds n batches of alerts and observations from the three
// hosts, interleaved, and the expectation for each value.
func makeBatches(n, size int, obsTopic string) ([][]*alert.Record, map[string]want) {
	wants := map[string]want{}
	var batches [][]*alert.Record
	seq := 0
	for range n {
		var b []*alert.Record
		for range size {
			ip := hosts[seq%len(hosts)]
			kind, topic := alert.KindAlert, "alerts"
			if seq%3 != 1 {
				kind, topic = alert.KindEvent, obsTopic
			}
			r := event(kind, ip, seq)
			v, _ := r.ECSJSON()
			wants[string(v)] = want{topic: topic, key: ip, kind: kind, seq: seq}
			b = append(b, r)
			seq++
		}
		batches = append(batches, b)
	}
	return batches, wants
}

// consume reads n records from the topics (from the start) or fails;
// then, briefly, any more: a duplicate.
func consume(t *testing.T, brokers string, n int, topics []string, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	return testsvc.Consume(t, strings.Split(brokers, ","), n, topics, 5*time.Second, 200*time.Millisecond, opts...)
}

// check verifies that every expected event arrived exactly once, on its
// topic, with the source IP as key, the ECS JSON as value, the event.kind
// header, and in order per host and topic, each host on one partition.
func check(t *testing.T, got []*kgo.Record, wants map[string]want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Errorf("got %d records, want %d", len(got), len(wants))
	}
	seen := map[string]bool{}
	last := map[string]int{}   // topic/key → last seq
	part := map[string]int32{} // topic/key → partition
	for _, r := range got {
		w, ok := wants[string(r.Value)]
		if !ok {
			t.Errorf("unexpected value %q", r.Value)
			continue
		}
		if seen[string(r.Value)] {
			t.Errorf("duplicate seq %d", w.seq)
		}
		seen[string(r.Value)] = true
		if r.Topic != w.topic {
			t.Errorf("seq %d (%s) on topic %q, want %q", w.seq, w.kind, r.Topic, w.topic)
		}
		if string(r.Key) != w.key {
			t.Errorf("seq %d key %q, want %q", w.seq, r.Key, w.key)
		}
		if len(r.Headers) != 1 || r.Headers[0].Key != HeaderKind || string(r.Headers[0].Value) != w.kind {
			t.Errorf("seq %d headers %+v, want %s=%s", w.seq, r.Headers, HeaderKind, w.kind)
		}
		if !bytes.Contains(r.Value, []byte(`\u003cscript\u003e`)) {
			t.Errorf("seq %d value not HTML-escaped: %s", w.seq, r.Value)
		}
		k := r.Topic + "/" + string(r.Key)
		if l, ok := last[k]; ok && w.seq <= l {
			t.Errorf("%s: seq %d after %d: order lost", k, w.seq, l)
		}
		last[k] = w.seq
		if p, ok := part[k]; ok && p != r.Partition {
			t.Errorf("%s on partitions %d and %d", k, p, r.Partition)
		}
		part[k] = r.Partition
	}
}

func TestDelivery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		brokers  int
		query    string
		obsTopic string
	}{
		{"1 broker defaults", 1, "", "alerts.observations"},
		{"3 brokers gzip acks=leader", 3, "?compression=gzip&acks=leader", "alerts.observations"},
		{"2 brokers lz4 observations-topic", 2, "?compression=lz4&observations-topic=obs&client-id=sensor-7", "obs"},
		{"zstd", 1, "?compression=zstd", "alerts.observations"},
		{"none", 1, "?compression=none&acks=all", "alerts.observations"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, brokers := newCluster(t, kfake.NumBrokers(tt.brokers))
			s := newSink(t, "kafka://"+brokers+"/alerts"+tt.query+sep(tt.query)+"observations=1")
			batches, wants := makeBatches(4, 30, tt.obsTopic)
			for i, b := range batches {
				if err := s.Send(context.Background(), b); err != nil {
					t.Fatalf("Send batch %d: %v", i, err)
				}
			}
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			got := consume(t, brokers, len(wants), []string{"alerts", tt.obsTopic})
			check(t, got, wants)
		})
	}
}

func sep(q string) string {
	if q == "" {
		return "?"
	}
	return "&"
}

// TestOutputs runs the sink under the real output framework (queue,
// batching, retries), as the sensor does.
func TestOutputs(t *testing.T) {
	t.Parallel()
	_, brokers := newCluster(t, kfake.NumBrokers(2))
	spec, err := alert.ParseSpec("kafka://" + brokers + "/alerts?observations=all&batch=7")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(spec)
	if err != nil {
		t.Fatal(err)
	}
	outs := alert.NewOutputs(func(name string, err error) { t.Errorf("%s: %v", name, err) })
	outs.Add(spec.Config, s)
	batches, wants := makeBatches(1, 50, "alerts.observations")
	for _, r := range batches[0] {
		outs.Emit(r.Event)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := outs.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := outs.Stats()[0]; st.Sent != 50 || st.Failed != 0 {
		t.Errorf("stats %+v, want 50 sent", st)
	}
	check(t, consume(t, brokers, len(wants), []string{"alerts", "alerts.observations"}), wants)
}

func TestSASL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pwFile := func(name, pw string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(pw), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := pwFile("good", "s3cret:/@?&\n") // trailing newline as editors leave it
	bad := pwFile("bad", "wrong")
	tests := []struct {
		name, mech, spec string // spec: userinfo and query, %s = brokers
		wantErr          bool
	}{
		{"plain password-file", "PLAIN", "kafka://%s/alerts?sasl=plain&user=sensor&password-file=" + good, false},
		{"scram-sha-256", "SCRAM-SHA-256", "kafka://%s/alerts?sasl=scram-sha-256&user=sensor&password-file=" + good, false},
		{"scram-sha-512 userinfo", "SCRAM-SHA-512", "kafka://sensor:s3cret%%3A%%2F%%40%%3F%%26@%s/alerts?sasl=scram-sha-512", false},
		{"plain userinfo user, password-file", "PLAIN", "kafka://sensor@%s/alerts?sasl=plain&password-file=" + good, false},
		{"plain wrong password", "PLAIN", "kafka://%s/alerts?sasl=plain&user=sensor&password-file=" + bad, true},
		{"scram wrong password", "SCRAM-SHA-256", "kafka://%s/alerts?sasl=scram-sha-256&user=sensor&password-file=" + bad, true},
		{"wrong user", "PLAIN", "kafka://%s/alerts?sasl=plain&user=nobody&password-file=" + good, true},
		{"wrong mechanism", "SCRAM-SHA-512", "kafka://%s/alerts?sasl=plain&user=sensor&password-file=" + good, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, brokers := newCluster(t, kfake.EnableSASL(), kfake.Superuser(tt.mech, "sensor", "s3cret:/@?&"))
			s := newSink(t, fmt.Sprintf(tt.spec, brokers))
			batches, wants := makeBatches(1, 9, "alerts.observations")
			// A failing Send lasts until its deadline: keep it short.
			ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := s.Send(ctx, batches[0])
			if tt.wantErr {
				if err == nil {
					t.Fatal("Send succeeded with a bad login")
				}
				if d := time.Since(start); d > 1500*time.Millisecond {
					t.Errorf("Send took %v to fail", d)
				}
				t.Logf("Send: %v (after %v)", err, time.Since(start).Round(time.Millisecond))
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			var m kgo.Opt
			switch tt.mech {
			case "PLAIN":
				m = kgo.SASL(plain.Auth{User: "sensor", Pass: "s3cret:/@?&"}.AsMechanism())
			case "SCRAM-SHA-256":
				m = kgo.SASL(scram.Auth{User: "sensor", Pass: "s3cret:/@?&"}.AsSha256Mechanism())
			default:
				m = kgo.SASL(scram.Auth{User: "sensor", Pass: "s3cret:/@?&"}.AsSha512Mechanism())
			}
			check(t, consume(t, brokers, len(wants), []string{"alerts", "alerts.observations"}, m), wants)
		})
	}
}

// TestDeadBroker checks that Send fails within its bound, rather than
// hanging, when the cluster goes away or was never there, and that the
// sink delivers again once a broker is back.
func TestDeadBroker(t *testing.T) {
	t.Parallel()
	t.Run("cluster closed", func(t *testing.T) {
		t.Parallel()
		c, brokers := newCluster(t)
		s := newSink(t, "kafka://"+brokers+"/alerts?timeout=1s")
		batches, _ := makeBatches(2, 10, "alerts.observations")
		if err := s.Send(context.Background(), batches[0]); err != nil {
			t.Fatalf("Send while up: %v", err)
		}
		c.Close()
		start := time.Now()
		err := s.Send(context.Background(), batches[1])
		d := time.Since(start)
		if err == nil {
			t.Fatal("Send to a closed cluster succeeded")
		}
		if d > 2500*time.Millisecond {
			t.Errorf("Send took %v, bound is 1s (+0.75s grace)", d)
		}
		t.Logf("Send: %v (after %v)", err, d.Round(time.Millisecond))
		start = time.Now()
		s.Close()
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Close took %v", d)
		}
	})
	t.Run("never up, ctx deadline", func(t *testing.T) {
		t.Parallel()
		addr := testsvc.FreeAddr(t)
		s := newSink(t, "kafka://"+addr+"/alerts") // default 10 s timeout
		batches, _ := makeBatches(1, 5, "alerts.observations")
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := s.Send(ctx, batches[0])
		d := time.Since(start)
		if err == nil {
			t.Fatal("Send to no broker succeeded")
		}
		if d > 1500*time.Millisecond {
			t.Errorf("Send took %v, ctx deadline was 300ms", d)
		}
		t.Logf("Send: %v (after %v)", err, d.Round(time.Millisecond))
	})
	t.Run("comes back", func(t *testing.T) {
		t.Parallel()
		addr := testsvc.FreeAddr(t)
		_, port, _ := net.SplitHostPort(addr)
		s := newSink(t, "kafka://"+addr+"/alerts?timeout=1s")
		batches, wants := makeBatches(1, 6, "alerts.observations")
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if err := s.Send(ctx, batches[0]); err == nil {
			t.Fatal("Send before the broker is up succeeded")
		}
		var p int
		fmt.Sscan(port, &p)
		_, brokers := newCluster(t, kfake.Ports(p))
		var err error
		// The framework's retry, in short: the first or second attempt
		// must go through (kgo's metadata age must not hold it back).
		for range 2 {
			if err = s.Send(context.Background(), batches[0]); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("Send after the broker came up: %v", err)
		}
		// At least once: the failed attempt may or may not have left
		// records behind; every event is there, in order.
		got := consume(t, brokers, len(wants), []string{"alerts", "alerts.observations"})
		dedup := map[string]*kgo.Record{}
		var uniq []*kgo.Record
		for _, r := range got {
			if dedup[string(r.Value)] == nil {
				dedup[string(r.Value)] = r
				uniq = append(uniq, r)
			}
		}
		check(t, uniq, wants)
	})
}

func TestTLS(t *testing.T) {
	t.Parallel()
	certs := testsvc.Certs(t, t.TempDir(), "kafka.test")
	ca, serverCert := certs.CA, certs.ServerCert(t)
	otherCA := testsvc.Certs(t, t.TempDir(), "kafka.test").CA
	tests := []struct {
		name, query string
		wantErr     bool
	}{
		{"ca and server-name", "tls=true&ca=" + ca + "&server-name=kafka.test", false},
		{"ca implies tls", "ca=" + ca + "&server-name=kafka.test", false},
		{"insecure-skip-verify", "tls=true&insecure-skip-verify=true", false},
		{"wrong ca", "tls=true&ca=" + otherCA + "&server-name=kafka.test", true},
		{"wrong server name", "tls=true&ca=" + ca + "&server-name=evil.test", true},
		{"no tls to a tls broker", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, brokers := newCluster(t, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}))
			s := newSink(t, "kafka://"+brokers+"/alerts?"+tt.query)
			batches, wants := makeBatches(1, 6, "alerts.observations")
			ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
			defer cancel()
			err := s.Send(ctx, batches[0])
			if tt.wantErr {
				if err == nil {
					t.Fatal("Send succeeded")
				}
				t.Logf("Send: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			pool := certs.Pool(t)
			check(t, consume(t, brokers, len(wants), []string{"alerts", "alerts.observations"},
				kgo.DialTLSConfig(&tls.Config{RootCAs: pool, ServerName: "kafka.test"})), wants)
		})
	}
}

func TestOptionErrors(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	empty := filepath.Join(dir, "empty")
	os.WriteFile(pw, []byte("x"), 0o600)
	os.WriteFile(empty, []byte("\n"), 0o600)
	tests := []struct {
		spec, want string
	}{
		{"kafka://b1/t?colour=red", `unknown option "colour"`},
		{"kafka://u:hunter2@b1/t?colour=red", `"kafka://u:xxxxx@b1/t?colour=red": unknown option "colour"`},
		{"kafka://u:hun%40ter2@b1/t?colour=red", `"kafka://u:xxxxx@b1/t?colour=red": unknown option "colour"`},
		{"kafka://b1/t?compression=brotli", `compression="brotli"`},
		{"kafka://b1/t?acks=1", `acks="1"`},
		{"kafka://b1/t?sasl=plain&user=u&password=hunter2", "password= refused"},
		{"kafka://b1/t?sasl=plain&user=u&pass=hunter2", "pass= refused"},
		{"kafka://b1/", "topic: empty"},
		{"kafka://b1", "topic: empty"},
		{"kafka://b1/a/b", "only letters"},
		{"kafka://b1/t?observations-topic=a%20b", "observations-topic"},
		{"kafka://b1/t?observations-topic=", "observations-topic: empty"},
		{"kafka://b1,,b2/t", "empty broker"},
		{"kafka://b1:0/t", "bad port"},
		{"kafka://b1/t?client-id=a%0Ab", "client-id"},
		{"kafka://b1/t?timeout=0s", "timeout"},
		{"kafka://b1/t?timeout=500ms", "least record timeout is 1s"},
		{"kafka://b1/t?timeout=soon", "timeout"},
		{"kafka://b1/t?tls=maybe", "tls="},
		{"kafka://b1/t?tls=false&ca=" + pw, "tls=false but ca="},
		{"kafka://b1/t?ca=" + pw, "no PEM certificate"},
		{"kafka://b1/t?ca=/nonexistent/ca.pem", "ca:"},
		{"kafka://b1/t?cert=" + pw, "options cert and key go together"},
		{"kafka://b1/t?insecure-skip-verify=yes%3F", "insecure-skip-verify"},
		{"kafka://b1/t?sasl=gssapi&user=u&password-file=" + pw, `sasl="gssapi"`},
		{"kafka://b1/t?sasl=plain&user=u", "needs user= (or kafka://USER@…) and password-file="},
		{"kafka://b1/t?sasl=plain&password-file=" + pw, "needs user="},
		{"kafka://b1/t?user=u&password-file=" + pw, "without sasl="},
		{"kafka://u:p@b1/t", "without sasl="},
		{"kafka://u:p@b1/t?sasl=plain&password-file=" + pw, "password given twice"},
		{"kafka://u@b1/t?sasl=plain&user=v&password-file=" + pw, "user given twice"},
		{"kafka://b1/t?sasl=plain&user=u&password-file=" + empty, "is empty"},
		{"kafka://b1/t?sasl=plain&user=u&password-file=/nonexistent", "password-file:"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			spec, err := alert.ParseSpec(tt.spec)
			if err != nil {
				t.Fatalf("ParseSpec: %v", err)
			}
			s, err := New(spec)
			if err == nil {
				s.Close()
				t.Fatalf("New accepted %q", tt.spec)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "ter2") { // hunter2, hun%40ter2
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

func TestParseBrokers(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"b1", []string{"b1:9092"}},
		{"b1,b2:9093", []string{"b1:9092", "b2:9093"}},
		{"10.0.0.1,10.0.0.2:1", []string{"10.0.0.1:9092", "10.0.0.2:1"}},
		{"[::1],[fd00::2]:9093", []string{"[::1]:9092", "[fd00::2]:9093"}},
		{"::1", nil},
		{"b1:x", nil},
		{"b1:70000", nil},
		{":9092", nil},
		{"", nil},
	}
	for _, tt := range tests {
		got, err := parseBrokers(tt.in)
		if tt.want == nil {
			if err == nil {
				t.Errorf("parseBrokers(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("parseBrokers(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestHeaderValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alert", "alert"},
		{"fd00::3", "fd00::3"},
		{"a\r\nb", `"a\r\nb"`},
		{"é", `"\u00e9"`},
		{strings.Repeat("x", 100), strings.Repeat("x", 64)},
	}
	for _, tt := range tests {
		if got := headerValue(tt.in); got != tt.want {
			t.Errorf("headerValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func BenchmarkSend(b *testing.B) {
	_, brokers := newCluster(b, kfake.BlackholeProduce())
	s := newSink(b, "kafka://"+brokers+"/alerts")
	batches, _ := makeBatches(1, 256, "alerts.observations")
	for _, r := range batches[0] {
		r.ECSJSON() // encoded once, before the sinks, in the sensor too
	}
	b.ResetTimer()
	for b.Loop() {
		if err := s.Send(context.Background(), batches[0]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*256)/b.Elapsed().Seconds(), "events/s")
}
