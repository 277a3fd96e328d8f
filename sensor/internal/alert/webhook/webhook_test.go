package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phonehome-sensor/phonehome/sensor/internal/alert"
	"github.com/phonehome-sensor/phonehome/sensor/internal/testsvc"
)

// receiver is a webhook receiver as a user would write one: it verifies
// each request with Verify and keeps what it accepted.
type receiver struct {
	t      *testing.T
	secret []byte // nil: does not verify
	mu     sync.Mutex
	bodies [][]byte
	hdrs   []http.Header
	status atomic.Int32 // answer; 0 = 200
	calls  atomic.Int32
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.calls.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "want a JSON POST", http.StatusBadRequest)
		return
	}
	if rc.secret != nil {
		if err := Verify(rc.secret, r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body, time.Minute, time.Now()); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
	}
	if !json.Valid(body) {
		http.Error(w, "invalid JSON", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.bodies = append(rc.bodies, body)
	rc.hdrs = append(rc.hdrs, r.Header.Clone())
	rc.mu.Unlock()
	if s := rc.status.Load(); s != 0 {
		w.WriteHeader(int(s))
		fmt.Fprintln(w, "answer from the receiver\nsecond line")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// events returns the events of every accepted body, as sent.
func (rc *receiver) events() []json.RawMessage {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var all []json.RawMessage
	for _, b := range rc.bodies {
		var env struct {
			Events []json.RawMessage `json:"events"`
		}
		if err := json.Unmarshal(b, &env); err != nil {
			rc.t.Fatalf("body %s: %v", b, err)
		}
		all = append(all, env.Events...)
	}
	return all
}

func event(i int, sni string) *alert.Event {
	return &alert.Event{
		Timestamp:   time.Date(2026, 11, 2, 9, 0, i, 0, time.UTC),
		ECS:         alert.ECS{Version: alert.ECSVersion},
		Event:       alert.EventMeta{Kind: alert.KindAlert, Dataset: "phonehome.tls", Module: "phonehome", Severity: 73},
		Network:     alert.Network{Protocol: "tls", Transport: "tcp", Type: "ipv4"},
		Source:      alert.Endpoint{IP: "10.20.7.42", Port: uint16(49000 + i)},
		Destination: alert.Endpoint{IP: "198.51.100.40", Port: 443},
		TLS:         &alert.TLS{Client: alert.TLSClient{ServerName: sni}, Version: "1.3", VersionProtocol: "tls"},
		Rule:        &alert.Rule{ID: "kaspersky-ksn", Name: "Kaspersky Security Network", Category: "ksn-telemetry", Ruleset: "kaspersky"},
		Observer:    alert.Observer{Hostname: "sensor-test", Type: "sensor", Product: "phonehome"},
		Phonehome:   &alert.PhonehomeExt{Host: "10.20.7.42", Category: []string{"ksn-telemetry"}},
	}
}

func records(n int) []*alert.Record {
	rs := make([]*alert.Record, n)
	for i := range rs {
		rs[i] = alert.NewRecord(event(i, fmt.Sprintf("dc%d.ksn.kaspersky-labs.com", i)))
	}
	return rs
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// caFile writes the test server's certificate as a PEM file for ca=.
func caFile(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return writeFile(t, "ca.pem", string(b))
}

func newSink(t *testing.T, raw string) *Sink {
	t.Helper()
	spec, err := alert.ParseSpec(raw)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// webhookURL turns a test server's URL into a spec.
func webhookURL(srv *httptest.Server, path, query string) string {
	u := "webhook+" + srv.URL + path
	if query != "" {
		u += "?" + query
	}
	return u
}

func TestDeliverSignedTLS(t *testing.T) {
	t.Setenv(SecretEnv, "")
	secret := "s3cr3t-with-enough-entropy"
	rc := &receiver{t: t, secret: []byte(secret)}
	srv := httptest.NewTLSServer(rc)
	defer srv.Close()
	sf := writeFile(t, "secret", secret+"\n")
	s := newSink(t, webhookURL(srv, "/hooks/phonehome", "secret-file="+sf+"&ca="+caFile(t, srv)+
		"&header=X-Tenant:%20acme&header=Authorization:Bearer%20tok&timeout=2s&batch=50"))
	if !s.Signed() {
		t.Fatal("Signed() = false with a secret-file")
	}
	recs := records(5)
	if err := s.Send(context.Background(), recs[:3]); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), recs[3:]); err != nil {
		t.Fatal(err)
	}
	got := rc.events()
	if len(got) != len(recs) {
		t.Fatalf("receiver got %d events, want %d", len(got), len(recs))
	}
	for i, r := range recs {
		want, _ := r.ECSJSON()
		if !bytes.Equal(got[i], want) {
			t.Errorf("event %d arrived as\n%s\nwant\n%s", i, got[i], want)
		}
	}
	h := rc.hdrs[0]
	if h.Get("X-Tenant") != "acme" || h.Get("Authorization") != "Bearer tok" {
		t.Errorf("static headers: X-Tenant %q Authorization %q", h.Get("X-Tenant"), h.Get("Authorization"))
	}
	if !strings.HasPrefix(h.Get(HeaderSignature), "sha256=") || h.Get(HeaderTimestamp) == "" {
		t.Errorf("signature headers: %q %q", h.Get(HeaderTimestamp), h.Get(HeaderSignature))
	}
	if len(rc.bodies[0]) == 0 || !bytes.HasPrefix(rc.bodies[0], []byte(`{"events":[{`)) {
		t.Errorf("body %s", rc.bodies[0])
	}
}

func TestWrongSecretRefused(t *testing.T) {
	rc := &receiver{t: t, secret: []byte("receiver-secret")}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	t.Setenv(SecretEnv, "sensor-secret")
	s := newSink(t, webhookURL(srv, "/", ""))
	if !s.Signed() {
		t.Fatalf("Signed() = false with $%s set", SecretEnv)
	}
	err := s.Send(context.Background(), records(1))
	if err == nil || !alert.IsPermanent(err) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("err = %v, want a permanent 401", err)
	}
	if rc.calls.Load() != 1 || len(rc.bodies) != 0 {
		t.Errorf("calls %d, accepted %d", rc.calls.Load(), len(rc.bodies))
	}
}

func TestEnvSecret(t *testing.T) {
	rc := &receiver{t: t, secret: []byte("from-env")}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	t.Setenv(SecretEnv, "from-env")
	s := newSink(t, webhookURL(srv, "/x", ""))
	if err := s.Send(context.Background(), records(2)); err != nil {
		t.Fatal(err)
	}
	if n := len(rc.events()); n != 2 {
		t.Errorf("got %d events", n)
	}
}

func TestUnsigned(t *testing.T) {
	t.Setenv(SecretEnv, "")
	rc := &receiver{t: t}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	s := newSink(t, webhookURL(srv, "/", ""))
	if s.Signed() {
		t.Fatal("Signed() = true without a secret")
	}
	if err := s.Send(context.Background(), records(1)); err != nil {
		t.Fatal(err)
	}
	if h := rc.hdrs[0]; h.Get(HeaderSignature) != "" || h.Get(HeaderTimestamp) != "" {
		t.Errorf("unsigned request has signature headers %q %q", h.Get(HeaderTimestamp), h.Get(HeaderSignature))
	}
}

func TestEVEFormat(t *testing.T) {
	t.Setenv(SecretEnv, "")
	rc := &receiver{t: t}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	s := newSink(t, webhookURL(srv, "/", "format=eve"))
	if err := s.Send(context.Background(), records(2)); err != nil {
		t.Fatal(err)
	}
	evs := rc.events()
	if len(evs) != 2 {
		t.Fatalf("got %d events", len(evs))
	}
	for _, e := range evs {
		var m struct {
			EventType string `json:"event_type"`
			TLS       struct {
				SNI string `json:"sni"`
			} `json:"tls"`
			Alert struct {
				Metadata map[string][]string `json:"metadata"`
			} `json:"alert"`
		}
		if err := json.Unmarshal(e, &m); err != nil {
			t.Fatal(err)
		}
		if m.EventType != "alert" || !strings.HasSuffix(m.TLS.SNI, ".ksn.kaspersky-labs.com") || m.Alert.Metadata["source"][0] != "phonehome" {
			t.Errorf("not an EVE alert: %s", e)
		}
	}
}

// TestStatus checks which answers are retried and which are permanent.
func TestStatus(t *testing.T) {
	t.Setenv(SecretEnv, "")
	rc := &receiver{t: t}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	s := newSink(t, webhookURL(srv, "/", ""))
	for _, tc := range []struct {
		status    int
		ok, perma bool
	}{
		{200, true, false}, {202, true, false}, {204, true, false},
		{500, false, false}, {502, false, false}, {503, false, false}, {408, false, false}, {429, false, false},
		{400, false, true}, {401, false, true}, {403, false, true}, {404, false, true}, {413, false, true}, {422, false, true},
		{301, false, true}, {307, false, true},
	} {
		rc.status.Store(int32(tc.status))
		err := s.Send(context.Background(), records(1))
		switch {
		case tc.ok && err != nil:
			t.Errorf("%d: %v", tc.status, err)
		case !tc.ok && err == nil:
			t.Errorf("%d: no error", tc.status)
		case !tc.ok && alert.IsPermanent(err) != tc.perma:
			t.Errorf("%d: permanent %v, want %v (%v)", tc.status, alert.IsPermanent(err), tc.perma, err)
		case err != nil && (!strings.Contains(err.Error(), fmt.Sprint(tc.status)) || strings.Contains(err.Error(), "\n")):
			t.Errorf("%d: error does not say the status on one line: %q", tc.status, err)
		}
	}
}

// TestRetriedThroughOutputs runs the sink under the output framework: a
// receiver failing twice with 503 gets every event once it recovers.
func TestRetriedThroughOutputs(t *testing.T) {
	t.Setenv(SecretEnv, "")
	rc := &receiver{t: t}
	var fails atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fails.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		rc.ServeHTTP(w, r)
	}))
	defer srv.Close()
	spec, err := alert.ParseSpec(webhookURL(srv, "/", "batch=10"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(spec)
	if err != nil {
		t.Fatal(err)
	}
	cfg := spec.Config
	cfg.RetryMin, cfg.RetryMax = time.Millisecond, 10*time.Millisecond
	outs := alert.NewOutputs(nil)
	out := outs.Add(cfg, s)
	for i := range 25 {
		outs.Emit(event(i, "x.kaspersky-labs.com"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := outs.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st := out.Stats()
	if st.Sent != 25 || st.Failed != 0 || st.Retried == 0 {
		t.Errorf("stats %+v: want 25 sent, none failed, some retried", st)
	}
	if n := len(rc.events()); n != 25 {
		t.Errorf("receiver got %d events", n)
	}
}

// TestServerDown: a refused connection and a receiver that never answers
// both end in a retryable error, within the timeout.
func TestServerDown(t *testing.T) {
	t.Setenv(SecretEnv, "")
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := webhookURL(down, "/", "timeout=500ms")
	down.Close()

	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)

	for name, raw := range map[string]string{"refused": downURL, "hanging": webhookURL(hang, "/", "timeout=300ms")} {
		s := newSink(t, raw)
		start := time.Now()
		err := s.Send(context.Background(), records(1))
		if err == nil || alert.IsPermanent(err) {
			t.Errorf("%s: err = %v, want a retryable error", name, err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s: Send took %s", name, d)
		}
	}

	// Cancelling the context (shutdown) ends a send at once too.
	s := newSink(t, webhookURL(hang, "/", "timeout=1m"))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Send(ctx, records(1)); err == nil {
		t.Error("no error after the context ended")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("cancelled Send took %s", d)
	}
}

// TestTLSVerification: the test server's certificate is trusted only with
// ca= or insecure-skip-verify=true.
func TestTLSVerification(t *testing.T) {
	t.Setenv(SecretEnv, "")
	rc := &receiver{t: t}
	srv := httptest.NewUnstartedServer(rc)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	srv.StartTLS()
	defer srv.Close()
	s := newSink(t, webhookURL(srv, "/", ""))
	err := s.Send(context.Background(), records(1))
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted certificate accepted: %v", err)
	}
	s = newSink(t, webhookURL(srv, "/", "insecure-skip-verify=true"))
	if err := s.Send(context.Background(), records(1)); err != nil {
		t.Errorf("insecure-skip-verify=true: %v", err)
	}
	// Every httptest server has the same certificate: another CA is made here.
	other := testsvc.Certs(t, t.TempDir()).CA
	s = newSink(t, webhookURL(srv, "/", "ca="+other))
	if err := s.Send(context.Background(), records(1)); err == nil {
		t.Error("certificate accepted with another CA")
	}
}

// TestHostile: wire strings that would break a log line, a header or a
// page arrive as valid JSON that decodes to the same text.
func TestHostile(t *testing.T) {
	t.Setenv(SecretEnv, "")
	rc := &receiver{t: t, secret: []byte("k")}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	s := newSink(t, webhookURL(srv, "/", "secret-file="+writeFile(t, "k", "k")))
	hostile := []string{
		"a\r\nX-Injected: 1\r\n\r\n.example", "<script>alert(1)</script>", "\x1b[31mred\x1b[0m", "bad\xff\xfe",
		`"}],"events":[{"forged":true}]}`, strings.Repeat("L", 64<<10),
	}
	var recs []*alert.Record
	for i, h := range hostile {
		recs = append(recs, alert.NewRecord(event(i, h)))
	}
	if err := s.Send(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if rc.hdrs[0].Get("X-Injected") != "" {
		t.Error("header injected")
	}
	body := rc.bodies[0]
	for _, raw := range []string{"<script", "\x1b", "\r", "\n"} {
		if bytes.Contains(body, []byte(raw)) {
			t.Errorf("raw %q in the body", raw)
		}
	}
	evs := rc.events()
	if len(evs) != len(hostile) {
		t.Fatalf("%d events arrived, want %d", len(evs), len(hostile))
	}
	for i, e := range evs {
		var ev alert.Event
		if err := json.Unmarshal(e, &ev); err != nil {
			t.Fatal(err)
		}
		if want := string([]rune(hostile[i])); ev.TLS.Client.ServerName != want {
			t.Errorf("event %d: sni %.50q, want %.50q", i, ev.TLS.Client.ServerName, want)
		}
	}
}

func TestVerify(t *testing.T) {
	secret := []byte("secret")
	body := []byte(`{"events":[{"a":1}]}`)
	now := time.Unix(1_800_000_000, 0)
	ts := "1800000000"
	sig := Sign(secret, ts, body)
	for _, tc := range []struct {
		name      string
		secret    []byte
		ts, sig   string
		body      []byte
		maxAge    time.Duration
		now       time.Time
		wantErr   error
		wantMatch string
	}{
		{name: "valid", secret: secret, ts: ts, sig: sig, body: body, now: now},
		{name: "valid, 4 minutes old, default window", secret: secret, ts: ts, sig: sig, body: body, now: now.Add(4 * time.Minute)},
		{name: "tampered body", secret: secret, ts: ts, sig: sig, body: []byte(`{"events":[{"a":2}]}`), now: now, wantErr: ErrSignature},
		{name: "body with a byte more", secret: secret, ts: ts, sig: sig, body: append(append([]byte(nil), body...), ' '), now: now, wantErr: ErrSignature},
		{name: "other secret", secret: []byte("secreT"), ts: ts, sig: sig, body: body, now: now, wantErr: ErrSignature},
		{name: "timestamp changed to renew a replay", secret: secret, ts: "1800000100", sig: sig, body: body, now: now.Add(100 * time.Second), wantErr: ErrSignature},
		{name: "old timestamp (replay)", secret: secret, ts: ts, sig: sig, body: body, maxAge: time.Minute, now: now.Add(61 * time.Second), wantErr: ErrTimestamp},
		{name: "future timestamp", secret: secret, ts: ts, sig: sig, body: body, maxAge: time.Minute, now: now.Add(-2 * time.Minute), wantErr: ErrTimestamp},
		{name: "no timestamp", secret: secret, ts: "", sig: sig, body: body, now: now, wantErr: ErrTimestamp},
		{name: "bad timestamp", secret: secret, ts: "1800000000.5", sig: sig, body: body, now: now, wantErr: ErrTimestamp},
		{name: "no signature", secret: secret, ts: ts, sig: "", body: body, now: now, wantErr: ErrSignature},
		{name: "other scheme", secret: secret, ts: ts, sig: "sha1=" + strings.TrimPrefix(sig, "sha256="), body: body, now: now, wantErr: ErrSignature},
		{name: "not hex", secret: secret, ts: ts, sig: "sha256=zz", body: body, now: now, wantErr: ErrSignature},
		{name: "truncated", secret: secret, ts: ts, sig: sig[:len(sig)-2], body: body, now: now, wantErr: ErrSignature},
	} {
		err := Verify(tc.secret, tc.ts, tc.sig, tc.body, tc.maxAge, tc.now)
		if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.wantErr)
		}
	}
	// The signature is HMAC-SHA256 over "timestamp.body", as documented
	// (value computed with: printf '1800000000.{"events":[{"a":1}]}' | openssl dgst -sha256 -hmac secret).
	if want := "sha256=" + knownHMAC; sig != want {
		t.Errorf("Sign = %s, want %s", sig, want)
	}
}

const knownHMAC = "fa2c09267f2df0c28992b892c979b721f2f29b257ec88eff8b071183d41bf481"

func TestOptionErrors(t *testing.T) {
	t.Setenv(SecretEnv, "")
	empty := writeFile(t, "empty", "\n")
	notPEM := writeFile(t, "ca.txt", "not a certificate")
	for _, tc := range []struct{ spec, want string }{
		{"webhook+https://h.example/x?secret=hunter2", "secret= refused"},
		{"webhook+https://h.example/x?bogus=1", `unknown option "bogus"`},
		{"webhook+https://h.example/x?timeout=soon", "timeout"},
		{"webhook+https://h.example/x?timeout=-1s", "timeout"},
		{"webhook+https://h.example/x?timeout=1s&timeout=2s", "given 2 times"},
		{"webhook+https://h.example/x?header=X-A:1%0D%0AX-B:2", "control character"},
		{"webhook+https://h.example/x?header=X-A:1%0AX-B:2", "control character"},
		{"webhook+https://h.example/x?header=NoColon", "Name:Value"},
		{"webhook+https://h.example/x?header=Bad%20Name:v", "Name:Value"},
		{"webhook+https://h.example/x?header=Content-Type:text/plain", "set by the sink"},
		{"webhook+https://h.example/x?header=x-phonehome-signature:sha256=00", "set by the sink"},
		{"webhook+https://h.example/x?format=xml", "format"},
		{"webhook+https://h.example/x?insecure-skip-verify=maybe", "insecure-skip-verify"},
		{"webhook+https://h.example/x?ca=/nonexistent/ca.pem", "no such file"},
		{"webhook+https://h.example/x?ca=" + notPEM, "no PEM certificate"},
		{"webhook+http://h.example/x?insecure-skip-verify=true", "webhook+https only"},
		{"webhook+https://h.example/x?secret-file=/nonexistent/secret", "no such file"},
		{"webhook+https://h.example/x?secret-file=" + empty, "is empty"},
		{"webhook+https://h.example/x?secret-file=", "needs a file name"},
		{"webhook+ftp://h.example/x", "want webhook+https or webhook+http"},
		{"syslog+tcp://h.example:514", "want webhook+https or webhook+http"},
	} {
		spec, err := alert.ParseSpec(tc.spec)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		_, err = New(spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.spec, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "1%0D%0A")) {
			t.Errorf("%s: error repeats a value that may be secret: %v", tc.spec, err)
		}
	}
}

// TestTarget: the request goes to the URL without webhook+ and without the
// options, to the path given.
func TestTarget(t *testing.T) {
	t.Setenv(SecretEnv, "")
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.RequestURI()
	}))
	defer srv.Close()
	s := newSink(t, webhookURL(srv, "/a/b%20c", "timeout=2s&observations=1&format=ecs"))
	if err := s.Send(context.Background(), records(1)); err != nil {
		t.Fatal(err)
	}
	if got != "/a/b%20c" {
		t.Errorf("request went to %q", got)
	}
	if want := srv.URL + "/a/b%20c"; s.target != want {
		t.Errorf("target %q, want %q", s.target, want)
	}
}

func BenchmarkSend(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	defer srv.Close()
	b.Setenv(SecretEnv, "bench")
	spec, _ := alert.ParseSpec(webhookURL(srv, "/", ""))
	s, err := New(spec)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	recs := records(256)
	for _, r := range recs {
		r.ECSJSON()
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Send(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
	}
}
