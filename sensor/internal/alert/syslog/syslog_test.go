package syslog

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/phonehome-sensor/phonehome/sensor/internal/alert"
	"github.com/phonehome-sensor/phonehome/sensor/internal/testsvc"
)

// hostileSNI is a server name as a hostile client could send it, had the
// extractor not escaped it: line breaks with a forged syslog message,
// HTML, an ANSI colour escape and invalid UTF-8.
const hostileSNI = "evil.example\r\n<134>1 2024-01-01T00:00:00Z forged phonehome 1 alert - {}\n<script>alert(1)</script>\x1b[31mred\x00\xff\xfe\xc3"

// longName is as long as a DNS name gets.
var longName = strings.Repeat(strings.Repeat("k", 62)+".", 4) + "a"

var testTime = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)

// testEvent is an event shaped as the pipeline makes them.
func testEvent(kind string, severity int, sni, observer string) *alert.Event {
	e := &alert.Event{
		Timestamp: testTime,
		ECS:       alert.ECS{Version: alert.ECSVersion},
		Event: alert.EventMeta{Kind: kind, Category: []string{"network"}, Type: []string{"connection"},
			Dataset: "phonehome.tls", Module: "phonehome", Severity: severity},
		Network:     alert.Network{Protocol: "tls", Transport: "tcp", Type: "ipv4"},
		Source:      alert.Endpoint{IP: "10.0.0.5", Port: 51234},
		Destination: alert.Endpoint{IP: "203.0.113.7", Port: 443},
		TLS:         &alert.TLS{Client: alert.TLSClient{ServerName: sni, JA4: "t13d1516h2_8daaf6152771_02713d6af862"}, Version: "1.3", VersionProtocol: "tls"},
		Observer:    alert.Observer{Hostname: observer, Type: "sensor", Product: "phonehome", Version: "test"},
	}
	if kind == alert.KindAlert {
		e.Event.Reason = "TLS server name " + sni + " matches *.kaspersky-labs.com"
		e.Rule = &alert.Rule{ID: "kaspersky-tls-sni", Name: "Kaspersky update and telemetry servers", Category: "av-vendor",
			Ruleset: "bsi-kaspersky", Version: "2024.1", Reference: "https://example.org/advisory", Description: e.Event.Reason}
		e.Threat = &alert.Threat{Enrichments: []alert.Enrichment{{
			Indicator: alert.Indicator{Type: "domain-name", Description: "Kaspersky infrastructure", Provider: "phonehome", Confidence: "High"},
			Matched:   alert.Matched{Atomic: sni, Field: "tls.client.server_name", ID: "kaspersky-tls-sni", Type: "indicator_match_rule"},
		}}}
		e.Phonehome = &alert.PhonehomeExt{Host: "10.0.0.5", Category: []string{"av-vendor"}}
	}
	return e
}

// sent is an event sent and what its syslog header must say.
type sent struct {
	event    *alert.Event
	severity uint8
	hostname string
}

// testEvents covers every severity, both kinds and the hostile strings.
func testEvents() []sent {
	return []sent{
		{testEvent(alert.KindAlert, 99, "ksn-a.kaspersky-labs.com", "sensor-1"), 2, "sensor-1"},
		{testEvent(alert.KindAlert, 73, "dnl-01.geo.kaspersky.com", "sensor-1"), 3, "sensor-1"},
		{testEvent(alert.KindAlert, 47, "ds.kaspersky.com", "sensor-1"), 4, "sensor-1"},
		{testEvent(alert.KindAlert, 1, "ds.kaspersky.com", "sensor-1"), 4, "sensor-1"},
		{testEvent(alert.KindEvent, 0, "www.example.org", "sensor-1"), 6, "sensor-1"},
		{testEvent(alert.KindAlert, 99, hostileSNI, "sensor-1"), 2, "sensor-1"},
		// A 253-character name: the alert is over 2048 bytes, and the UDP
		// default takes it.
		{testEvent(alert.KindAlert, 73, longName, "sensor-1"), 3, "sensor-1"},
		{testEvent(alert.KindEvent, 0, "x.example", "bad host\n<b>\x1b[0m\xff"), 6, "bad_host__b___0m_"},
	}
}

func records(evs []sent) []*alert.Record {
	rs := make([]*alert.Record, len(evs))
	for i, s := range evs {
		rs[i] = alert.NewRecord(s.event)
	}
	return rs
}

func newSink(t *testing.T, raw string) *Sink {
	t.Helper()
	spec, err := alert.ParseSpec(raw)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(spec)
	if err != nil {
		t.Fatalf("New(%q): %v", raw, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// checkLines parses every line rsyslogd wrote as RFC 5424 and checks it
// against the events sent, whatever their order.
func checkLines(t *testing.T, lines []string, want []sent, facility uint8) {
	t.Helper()
	byMsg := map[string]sent{}
	for _, w := range want {
		js, err := alert.MarshalECS(w.event)
		if err != nil {
			t.Fatal(err)
		}
		byMsg[string(js)] = w
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d", len(lines), len(want))
	}
	p := rfc5424.NewParser()
	for i, line := range lines {
		m, err := p.Parse([]byte(line))
		if err != nil {
			t.Fatalf("line %d: not RFC 5424: %v\n%q", i, err, line)
		}
		sm := m.(*rfc5424.SyslogMessage)
		if sm.Message == nil {
			t.Fatalf("line %d: no MSG: %q", i, line)
		}
		w, ok := byMsg[*sm.Message]
		if !ok {
			t.Fatalf("line %d: MSG is not the ECS JSON of any event sent:\n%q", i, *sm.Message)
		}
		delete(byMsg, *sm.Message)
		if !json.Valid([]byte(*sm.Message)) {
			t.Errorf("line %d: MSG is not valid JSON: %q", i, *sm.Message)
		}
		msgID := "event"
		if w.event.Event.Kind == alert.KindAlert {
			msgID = "alert"
		}
		for _, c := range []struct {
			field     string
			got, want any
		}{
			{"facility", deref(sm.Facility), facility},
			{"severity", deref(sm.Severity), w.severity},
			{"hostname", deref(sm.Hostname), w.hostname},
			{"appname", deref(sm.Appname), "phonehome"},
			{"procid", deref(sm.ProcID), strconv.Itoa(os.Getpid())},
			{"msgid", deref(sm.MsgID), msgID},
			{"version", sm.Version, uint16(1)},
		} {
			if c.got != c.want {
				t.Errorf("line %d: %s = %v, want %v", i, c.field, c.got, c.want)
			}
		}
		if sm.Timestamp == nil || !sm.Timestamp.Equal(w.event.Timestamp.Truncate(time.Microsecond)) {
			t.Errorf("line %d: timestamp %v, want %v", i, sm.Timestamp, w.event.Timestamp.Truncate(time.Microsecond))
		}
		if !strings.Contains(line, "2024-05-06T07:08:09.123456Z") {
			t.Errorf("line %d: timestamp not RFC 3339 with microseconds: %q", i, line)
		}
		if sni := w.event.TLS.Client.ServerName; sni == hostileSNI {
			checkHostile(t, line, *sm.Message)
		}
	}
}

// checkHostile checks that the hostile server name arrived as one line of
// inert JSON that decodes to what json.Marshal made of it.
func checkHostile(t *testing.T, line, msg string) {
	t.Helper()
	if strings.ContainsAny(line, "\r\n\x1b\x00") || strings.ContainsAny(msg, "<>") {
		t.Errorf("raw control or HTML characters reached the receiver: %q", line)
	}
	var got, want alert.Event
	if err := json.Unmarshal([]byte(msg), &got); err != nil {
		t.Fatalf("hostile event: %v", err)
	}
	js, _ := json.Marshal(testEvent(alert.KindAlert, 99, hostileSNI, "sensor-1"))
	if err := json.Unmarshal(js, &want); err != nil {
		t.Fatal(err)
	}
	if got.TLS.Client.ServerName != want.TLS.Client.ServerName {
		t.Errorf("server name decodes to %q, want %q", got.TLS.Client.ServerName, want.TLS.Client.ServerName)
	}
	if !strings.HasPrefix(got.TLS.Client.ServerName, "evil.example\r\n<134>1") {
		t.Errorf("server name lost its content: %q", got.TLS.Client.ServerName)
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestRsyslog sends every kind of event to a real rsyslogd over UDP and
// TCP, in two batches on one connection, and reads back what it got.
func TestRsyslog(t *testing.T) {
	testsvc.NeedRsyslog(t)
	for _, tc := range []struct {
		scheme, query string
		facility      uint8
	}{
		{"udp", "", 16},
		{"tcp", "", 16},
		{"tcp", "?facility=auth", 4},
		{"udp", "?facility=23", 23},
	} {
		t.Run(tc.scheme+tc.query, func(t *testing.T) {
			cfg := testsvc.RsyslogOptions{}
			if tc.scheme == "udp" {
				cfg.UDPPort = testsvc.FreePort(t, "udp")
			} else {
				cfg.TCPPort = testsvc.FreePort(t, "tcp")
			}
			r := newReceiver(t, cfg)
			s := newSink(t, fmt.Sprintf("syslog+%s://127.0.0.1:%d%s", tc.scheme, cfg.UDPPort+cfg.TCPPort, tc.query))
			evs := testEvents()
			if msg, _ := s.appendMessage(nil, alert.NewRecord(evs[len(evs)-2].event)); len(msg) <= 2048 {
				t.Fatalf("the long-name alert is %d bytes: it should be over 2048", len(msg))
			}
			if err := s.Send(ctx(t), records(evs[:4])); err != nil {
				t.Fatal(err)
			}
			if err := s.Send(ctx(t), records(evs[4:])); err != nil {
				t.Fatal(err)
			}
			checkLines(t, r.lines(len(evs)), evs, tc.facility)
		})
	}
}

// gnutls skips the test when rsyslog's TLS driver is not installed.
func gnutls(t *testing.T) {
	t.Helper()
	testsvc.NeedRsyslog(t)
	for _, dir := range []string{"/usr/lib/*/rsyslog", "/usr/lib/rsyslog", "/usr/lib64/rsyslog"} {
		if m, _ := filepath.Glob(filepath.Join(dir, "lmnsd_gtls.so")); len(m) > 0 {
			return
		}
	}
	t.Skip("rsyslog's GnuTLS driver lmnsd_gtls.so not installed (Debian package rsyslog-gnutls)")
}

// TestTLS sends over TLS to rsyslogd, which requires a client
// certificate, and checks that the server's certificate is verified.
func TestTLS(t *testing.T) {
	gnutls(t)
	f := testsvc.Certs(t, t.TempDir())
	cfg := testsvc.RsyslogOptions{TCPPort: testsvc.FreePort(t, "tcp"), TLS: f}
	r := newReceiver(t, cfg)
	client := "cert=" + f.ClientCert + "&key=" + f.ClientKey
	var want []sent
	for _, tc := range []struct {
		name, host, query, wantErr string
	}{
		{"ca", "127.0.0.1", "ca=" + f.CA + "&" + client, ""},
		{"server-name", "127.0.0.1", "ca=" + f.CA + "&server-name=localhost&" + client, ""},
		{"by name", "localhost", "ca=" + f.CA + "&" + client, ""},
		{"insecure", "127.0.0.1", "insecure-skip-verify=true&" + client, ""},
		{"wrong name", "127.0.0.1", "ca=" + f.CA + "&server-name=other.example&" + client, "certificate"},
		{"system roots", "127.0.0.1", client, "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSink(t, fmt.Sprintf("syslog+tls://%s:%d?%s", tc.host, cfg.TCPPort, tc.query))
			evs := []sent{{testEvent(alert.KindAlert, 73, tc.name+".kaspersky.com", "sensor-1"), 3, "sensor-1"}}
			err := s.Send(ctx(t), records(evs))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Send = %v, want an error about %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, evs...)
			checkLines(t, r.lines(len(want)), want, 16)
		})
	}
}

// TestReconnect: with the receiver down, Send fails at once; once it is
// up, the next Send delivers; and after the receiver restarts, the next
// Send is not lost on the dead connection.
func TestReconnect(t *testing.T) {
	testsvc.NeedRsyslog(t)
	for _, scheme := range []string{"tcp", "tls"} {
		t.Run(scheme, func(t *testing.T) {
			cfg := testsvc.RsyslogOptions{TCPPort: testsvc.FreePort(t, "tcp")}
			raw := fmt.Sprintf("syslog+tcp://127.0.0.1:%d", cfg.TCPPort)
			if scheme == "tls" {
				gnutls(t)
				cfg.TLS = testsvc.Certs(t, t.TempDir())
				raw = fmt.Sprintf("syslog+tls://127.0.0.1:%d?ca=%s&cert=%s&key=%s", cfg.TCPPort, cfg.TLS.CA, cfg.TLS.ClientCert, cfg.TLS.ClientKey)
			}
			s := newSink(t, raw)
			ev := func(i int) []sent {
				return []sent{{testEvent(alert.KindAlert, 99, fmt.Sprintf("n%d.kaspersky.com", i), "sensor-1"), 2, "sensor-1"}}
			}
			start := time.Now()
			err := s.Send(ctx(t), records(ev(0)))
			if err == nil || alert.IsPermanent(err) || !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("Send with no receiver = %v, want a retryable connection refused", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("Send with no receiver took %v", d)
			}

			r := newReceiver(t, cfg)
			want := ev(1)
			if err := s.Send(ctx(t), records(want)); err != nil {
				t.Fatalf("Send once the receiver is up: %v", err)
			}
			checkLines(t, r.lines(1), want, 16)

			r.Stop()
			r.Start(t)
			want = append(want, ev(2)...)
			if err := s.Send(ctx(t), records(want[1:])); err != nil {
				t.Fatalf("Send after the receiver restarted: %v", err)
			}
			checkLines(t, r.lines(2), want, 16)
		})
	}
}

// TestUDPReceiverDown: UDP learns of a missing receiver only from the
// ICMP error a datagram brings back, which fails the next Send; the one
// after reconnects.
func TestUDPReceiverDown(t *testing.T) {
	testsvc.NeedRsyslog(t)
	cfg := testsvc.RsyslogOptions{UDPPort: testsvc.FreePort(t, "udp")}
	s := newSink(t, fmt.Sprintf("syslog+udp://127.0.0.1:%d", cfg.UDPPort))
	evs := testEvents()
	if err := s.Send(ctx(t), records(evs[:1])); err != nil {
		t.Fatalf("first datagram: %v", err)
	}
	err := s.Send(ctx(t), records(evs[1:2]))
	if !errors.Is(err, syscall.ECONNREFUSED) || alert.IsPermanent(err) {
		t.Fatalf("Send after an ICMP port unreachable = %v, want a retryable connection refused", err)
	}
	r := newReceiver(t, cfg)
	if err := s.Send(ctx(t), records(evs[2:3])); err != nil {
		t.Fatalf("Send once the receiver is up: %v", err)
	}
	checkLines(t, r.lines(1), evs[2:3], 16)
}

// TestMaxSize: an event too long for max-size, or that cannot be
// encoded, is skipped, the others delivered, and a Permanent error counts
// what was skipped.
func TestMaxSize(t *testing.T) {
	testsvc.NeedRsyslog(t)
	long := testEvent(alert.KindEvent, 0, strings.Repeat("a", 2000)+".kaspersky.com", "sensor-1")
	broken := testEvent(alert.KindEvent, 0, "y10k.example", "sensor-1")
	broken.Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) // JSON cannot encode it
	for _, scheme := range []string{"udp", "tcp"} {
		t.Run(scheme, func(t *testing.T) {
			cfg := testsvc.RsyslogOptions{}
			if scheme == "udp" {
				cfg.UDPPort = testsvc.FreePort(t, "udp")
			} else {
				cfg.TCPPort = testsvc.FreePort(t, "tcp")
			}
			r := newReceiver(t, cfg)
			s := newSink(t, fmt.Sprintf("syslog+%s://127.0.0.1:%d?max-size=2048", scheme, cfg.UDPPort+cfg.TCPPort))
			evs := testEvents()
			short := []sent{evs[0], evs[4]}
			err := s.Send(ctx(t), []*alert.Record{alert.NewRecord(short[0].event), alert.NewRecord(long), alert.NewRecord(broken), alert.NewRecord(short[1].event)})
			if !alert.IsPermanent(err) || !strings.Contains(err.Error(), "1 of 4 events longer than max-size 2048") ||
				!strings.Contains(err.Error(), "1 of 4 events could not be encoded") {
				t.Fatalf("Send = %v, want a Permanent error for 1 of 4 too long and 1 of 4 not encoded", err)
			}
			checkLines(t, r.lines(2), short, 16)
		})
	}
}

// TestStalledReceiver: a receiver that stops reading (rsyslogd stopped
// with SIGSTOP) makes Send fail when the context ends, not hang.
func TestStalledReceiver(t *testing.T) {
	testsvc.NeedRsyslog(t)
	cfg := testsvc.RsyslogOptions{TCPPort: testsvc.FreePort(t, "tcp")}
	r := newReceiver(t, cfg)
	s := newSink(t, fmt.Sprintf("syslog+tcp://127.0.0.1:%d", cfg.TCPPort))
	if err := r.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer r.Signal(syscall.SIGCONT)
	// 200 events of 60 KB: more than the loopback socket buffers hold.
	big := testEvent(alert.KindEvent, 0, strings.Repeat("b", 60000), "sensor-1")
	batch := make([]*alert.Record, 200)
	for i := range batch {
		batch[i] = alert.NewRecord(big)
	}
	c, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Send(c, batch)
	if err == nil || alert.IsPermanent(err) {
		t.Fatalf("Send to a stalled receiver = %v, want a retryable error", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Send to a stalled receiver returned after %v", d)
	}
	if s.conn != nil {
		t.Errorf("connection kept after a failed write: %v", err)
	}
}

// TestTLSPeerClosed runs against Go's TLS server, which unlike rsyslogd
// sends TLS 1.3 session tickets after the handshake: when the receiver
// then closes the connection, the tickets sit unread in front of its
// close, and Send must still see the connection is gone and reconnect
// rather than lose the next batch. It also checks the octet-counted
// framing byte for byte.
func TestTLSPeerClosed(t *testing.T) {
	f := testsvc.Certs(t, t.TempDir())
	cert := f.ServerCert(t)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	frames := make(chan string, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			// One frame per connection, then close: the receiver restarted.
			br := bufio.NewReader(c)
			n, err := br.ReadString(' ')
			if err == nil {
				size, _ := strconv.Atoi(strings.TrimSuffix(n, " "))
				b := make([]byte, size)
				if _, err = io.ReadFull(br, b); err == nil {
					frames <- n + string(b)
				}
			}
			c.Close()
		}
	}()
	s := newSink(t, fmt.Sprintf("syslog+tls://%s?ca=%s", l.Addr(), f.CA))
	for i := range 2 {
		e := testEvent(alert.KindAlert, 99, fmt.Sprintf("n%d.kaspersky.com", i), "sensor-1")
		if err := s.Send(ctx(t), []*alert.Record{alert.NewRecord(e)}); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		msg, err := s.appendMessage(nil, alert.NewRecord(e))
		if err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-frames:
			if want := strconv.Itoa(len(msg)) + " " + string(msg); got != want {
				t.Fatalf("frame %d:\n got %q\nwant %q", i, got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("frame %d lost", i)
		}
		// Let the close (and the tickets before it) reach the sink.
		time.Sleep(20 * time.Millisecond)
	}
}
