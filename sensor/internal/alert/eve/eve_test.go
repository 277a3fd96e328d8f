package eve

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/phonehome-sensor/phonehome/sensor/internal/alert"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

var observer = alert.Observer{Hostname: "sensor-test", Type: "sensor", Product: "phonehome", Version: "test"}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// base returns an event as the pipeline's baseEvent builds it.
func base(t, proto, transport, src string, sport uint16, dst string, dport uint16) *alert.Event {
	typ := "ipv4"
	if strings.Contains(src, ":") {
		typ = "ipv6"
	}
	ds := proto
	if ds == "" {
		ds = "flow"
	}
	return &alert.Event{
		Timestamp:   ts(t),
		ECS:         alert.ECS{Version: alert.ECSVersion},
		Event:       alert.EventMeta{Kind: alert.KindEvent, Category: []string{"network"}, Type: []string{"protocol"}, Dataset: "phonehome." + ds, Module: "phonehome"},
		Network:     alert.Network{Protocol: proto, Transport: transport, Type: typ},
		Source:      alert.Endpoint{IP: src, Port: sport},
		Destination: alert.Endpoint{IP: dst, Port: dport},
		Observer:    observer,
	}
}

// alertOf turns an observation into an alert the way the pipeline's
// output stage does.
func alertOf(e *alert.Event, severity int, ruleID, name, category, confidence, reason, atomic, field, host string) *alert.Event {
	e.Event.Kind = alert.KindAlert
	e.Event.Severity = severity
	e.Event.Reason = reason
	e.Rule = &alert.Rule{ID: ruleID, Name: name, Category: category, Ruleset: "kaspersky", Version: "2026.11.28.2",
		Reference: "https://support.kaspersky.com/KESWin/11.6.0/de-DE/202507.htm", Description: reason}
	typ := "domain-name"
	switch {
	case strings.HasPrefix(field, "destination.port"):
		typ = "port"
	case field == "destination.ip":
		typ = "ipv4-addr"
	}
	e.Threat = &alert.Threat{Enrichments: []alert.Enrichment{{
		Indicator: alert.Indicator{Type: typ, Description: reason, Provider: "kaspersky", Confidence: confidence},
		Matched:   alert.Matched{Atomic: atomic, Field: field, ID: ruleID, Type: "indicator_match_rule"},
	}}}
	ph := &alert.PhonehomeExt{Host: host, Category: []string{category}}
	if e.Phonehome != nil {
		ph.Partial = e.Phonehome.Partial
		ph.QUICVersion = e.Phonehome.QUICVersion
	}
	e.Phonehome = ph
	return e
}

func cases() []struct {
	name string
	ev   *alert.Event
} {
	dnsQuery := base("2026-11-02T09:00:03Z", "dns", "udp", "10.20.1.15", 49154, "10.20.0.53", 53)
	dnsQuery.Source.MAC = "A4-BB-6D-14-01-0F"
	dnsQuery.DNS = &alert.DNS{Type: "query", ID: 43995, HeaderFlags: []string{"RD"},
		Question: alert.DNSQuestion{Name: "dnl-03.geo.kaspersky.com", Type: "A", Class: "IN"}}
	alertOf(dnsQuery, 73, "kaspersky-update-geo", "Kaspersky geo-balanced update servers", "update", "community",
		`domain suffix "geo.kaspersky.com"`, "dnl-03.geo.kaspersky.com", "dns.question.name", "10.20.1.15")

	dnsAnswer := base("2026-11-02T09:00:03.0012Z", "dns", "udp", "fd00:20::53", 53, "fd00:20::1a", 49166)
	dnsAnswer.DNS = &alert.DNS{Type: "answer", ID: 51186, ResponseCode: "NOERROR", HeaderFlags: []string{"RD", "RA"},
		Question: alert.DNSQuestion{Name: "s12.upd.kaspersky.com", Type: "AAAA", Class: "IN"},
		Answers: []alert.DNSAnswer{
			{Name: "s12.upd.kaspersky.com", Type: "CNAME", Data: "s12.upd.geo.kaspersky.com", TTL: 300},
			{Name: "s12.upd.geo.kaspersky.com", Type: "AAAA", Data: "2001:db8:100::12", TTL: 60},
		},
		ResolvedIP: []string{"2001:db8:100::12"}}
	alertOf(dnsAnswer, 99, "kaspersky-update", "Kaspersky update servers", "update", "official",
		`domain suffix "upd.kaspersky.com"`, "s12.upd.kaspersky.com", "dns.question.name", "fd00:20::1a")
	dnsAnswer.Phonehome.Status = "still-phoning-home"
	dnsAnswer.Phonehome.Deadline = "2026-10-31"

	tls := base("2026-11-02T09:00:55.0021Z", "tls", "tcp", "10.20.7.42", 49165, "198.51.100.40", 443)
	tls.Source.MAC = "3C-52-82-07-00-2A"
	tls.TLS = &alert.TLS{Client: alert.TLSClient{ServerName: "dc1-file.ksn.kaspersky-labs.com",
		JA4: "t13d131100_f57a46bbacb6_ab7e3b40a677", ALPN: []string{"h2", "http/1.1"}}, Version: "1.3", VersionProtocol: "tls"}
	tls.Destination.Geo = &alert.Geo{CountryISOCode: "RU"}
	tls.Destination.AS = &alert.AS{Number: 200107}
	alertOf(tls, 73, "kaspersky-ksn", "Kaspersky Security Network (reputation look-ups and telemetry)", "ksn-telemetry", "community",
		`domain suffix "ksn.kaspersky-labs.com"`, "dc1-file.ksn.kaspersky-labs.com", "tls.client.server_name", "10.20.7.42")

	quic := base("2026-11-02T09:01:30.5Z", "quic", "udp", "10.20.1.15", 50123, "198.51.100.41", 443)
	quic.TLS = &alert.TLS{Client: alert.TLSClient{ServerName: "ksn-stat-geo.kaspersky-labs.com",
		JA4: "q13d0310h3_55b375c5d22e_cd85d2d88918", ALPN: []string{"h3"}}, Version: "1.3", VersionProtocol: "tls"}
	quic.Phonehome = &alert.PhonehomeExt{QUICVersion: "1"}
	alertOf(quic, 47, "kaspersky-ksn", "Kaspersky Security Network (reputation look-ups and telemetry)", "ksn-telemetry", "community",
		`name pattern "ksn-*.kaspersky-labs.com"`, "ksn-stat-geo.kaspersky-labs.com", "tls.client.server_name", "10.20.1.15")

	http := base("2026-11-02T09:02:47.0021Z", "http", "tcp", "10.20.7.42", 49181, "198.51.100.16", 80)
	http.HTTP = &alert.HTTP{Version: "1.1", Request: alert.HTTPRequest{Method: "GET"}}
	http.URL = &alert.URL{Domain: "dnl-16.geo.kaspersky.com", Original: "/index/u0607g.xml.dif?a=1&b=<2>"}
	http.UserAgent = &alert.UserAgent{Original: "KasperskyLab_Updater/12.3.0.493 (Windows NT 10.0; x64) Kaspersky Endpoint Security for Windows"}
	alertOf(http, 73, "kaspersky-update-geo", "Kaspersky geo-balanced update servers", "update", "community",
		`domain suffix "geo.kaspersky.com"`, "dnl-16.geo.kaspersky.com", "url.domain", "10.20.7.42")

	port := base("2026-11-02T09:03:10.25Z", "", "tcp", "10.20.1.15", 49190, "203.0.113.7", 13000)
	port.Destination.Domain = "ksc.example.internal"
	alertOf(port, 21, "kaspersky-ksc-agent-ports", "Kaspersky Security Center agent ports", "management", "official",
		"port 13000/tcp", "13000", "destination.port", "10.20.1.15")

	obs := base("2026-11-02T09:04:00.000123Z", "dns", "udp", "10.20.2.21", 53000, "10.20.0.53", 53)
	obs.DNS = &alert.DNS{Type: "query", ID: 1, HeaderFlags: []string{"RD", "AD"},
		Question: alert.DNSQuestion{Name: "www.example.org", Type: "HTTPS", Class: "IN"}}

	flowEnd := base("2026-11-02T09:04:12Z", "", "tcp", "10.20.1.15", 49155, "198.51.100.3", 443)
	flowEnd.Event.Type = []string{"end"}
	start, end := ts("2026-11-02T09:00:03.0194Z"), ts("2026-11-02T09:04:12Z")
	flowEnd.Event.Start, flowEnd.Event.End = &start, &end
	flowEnd.Source.Bytes, flowEnd.Source.Packets = 1843, 12
	flowEnd.Destination.Bytes, flowEnd.Destination.Packets = 48211, 40

	return []struct {
		name string
		ev   *alert.Event
	}{
		{"dns-query-alert", dnsQuery},
		{"dns-answer-alert", dnsAnswer},
		{"tls-alert", tls},
		{"quic-alert", quic},
		{"http-alert", http},
		{"port-alert", port},
		{"dns-observation", obs},
		{"flow-observation", flowEnd},
	}
}

func TestGolden(t *testing.T) {
	for _, tc := range cases() {
		t.Run(tc.name, func(t *testing.T) {
			before, err := alert.MarshalECS(tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Format(alert.NewRecord(tc.ev))
			if err != nil {
				t.Fatal(err)
			}
			after, _ := alert.MarshalECS(tc.ev)
			if !bytes.Equal(before, after) {
				t.Fatalf("Format changed the event:\n%s\n%s", before, after)
			}
			checkLine(t, got)
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(append(got, '\n'), want) {
				t.Errorf("EVE output differs from %s (go test -update rewrites it):\ngot  %s\nwant %s", path, got, want)
			}
		})
	}
}

// suricataTime is the pattern of Suricata's schema for timestamp.
var suricataTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+[+\-]\d+$`)

// Keys Suricata 7's EVE schema (etc/schema.json) knows, per object; the
// phonehome object is ours.
var knownKeys = map[string][]string{
	"": {"timestamp", "flow_id", "event_type", "src_ip", "src_port", "dest_ip", "dest_port", "proto", "app_proto",
		"host", "community_id", "ether", "alert", "dns", "tls", "quic", "http", "flow", "phonehome"},
	"alert": {"action", "gid", "signature_id", "rev", "signature", "category", "severity", "metadata"},
	"dns":   {"version", "type", "id", "qr", "aa", "tc", "rd", "ra", "rrname", "rrtype", "rcode", "answers"},
	"tls":   {"sni", "version", "ja4"},
	"quic":  {"version", "sni", "ja4"},
	"http":  {"hostname", "url", "http_user_agent", "http_method", "protocol"},
	"flow":  {"pkts_toserver", "pkts_toclient", "bytes_toserver", "bytes_toclient", "start", "end"},
	"ether": {"src_mac"},
}

// checkLine checks what every EVE line must be: one line of valid JSON
// whose header is there and well formed, with only keys Suricata knows.
func checkLine(t *testing.T, line []byte) map[string]any {
	t.Helper()
	if bytes.ContainsAny(line, "\n\r") {
		t.Fatalf("not one line: %q", line)
	}
	if !json.Valid(line) {
		t.Fatalf("invalid JSON: %s", line)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatal(err)
	}
	for obj, keys := range knownKeys {
		o := m
		if obj != "" {
			v, ok := m[obj].(map[string]any)
			if !ok {
				continue
			}
			o = v
		}
		for k := range o {
			if !slices.Contains(keys, k) {
				t.Errorf("%s: key %q is not in Suricata's EVE schema", obj, k)
			}
		}
	}
	if s, _ := m["timestamp"].(string); !suricataTime.MatchString(s) {
		t.Errorf("timestamp %q does not match Suricata's pattern", s)
	}
	for _, k := range []string{"event_type", "src_ip", "dest_ip", "proto", "phonehome"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %s", k)
		}
	}
	if p, _ := m["proto"].(string); p != strings.ToUpper(p) {
		t.Errorf("proto %q not upper case", p)
	}
	if a, ok := m["alert"].(map[string]any); ok {
		md, _ := a["metadata"].(map[string]any)
		if src, _ := md["source"].([]any); len(src) != 1 || src[0] != "phonehome" {
			t.Errorf("alert.metadata.source = %v, want [phonehome]", md["source"])
		}
		if sid, _ := a["signature_id"].(float64); sid < SIDBase || sid >= SIDBase+SIDCount {
			t.Errorf("signature_id %v outside %d+%d", sid, SIDBase, SIDCount)
		}
	}
	return m
}

func TestEventTypes(t *testing.T) {
	want := map[string]string{
		"dns-query-alert": "alert", "dns-answer-alert": "alert", "tls-alert": "alert", "quic-alert": "alert",
		"http-alert": "alert", "port-alert": "alert", "dns-observation": "dns", "flow-observation": "flow",
	}
	for _, tc := range cases() {
		line, err := Format(alert.NewRecord(tc.ev))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatal(err)
		}
		if m["event_type"] != want[tc.name] {
			t.Errorf("%s: event_type %v, want %s", tc.name, m["event_type"], want[tc.name])
		}
		if tc.ev.Network.Protocol != "" && m["app_proto"] != tc.ev.Network.Protocol {
			t.Errorf("%s: app_proto %v", tc.name, m["app_proto"])
		}
		if tc.ev.Network.Protocol != "" && tc.ev.Network.Protocol != "quic" && m[tc.ev.Network.Protocol] == nil {
			t.Errorf("%s: no %s object", tc.name, tc.ev.Network.Protocol)
		}
		if m["host"] != "sensor-test" {
			t.Errorf("%s: host %v", tc.name, m["host"])
		}
	}
}

// TestCommunityID checks the hash against the Community ID spec's own
// examples, in both directions.
func TestCommunityID(t *testing.T) {
	for _, tc := range []struct {
		transport string
		src       string
		sport     uint16
		dst       string
		dport     uint16
		want      string
	}{
		{"tcp", "128.232.110.120", 34855, "66.35.250.204", 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
		{"udp", "192.168.1.52", 54585, "8.8.8.8", 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="},
	} {
		fwd := base("2026-11-02T09:00:00Z", "", tc.transport, tc.src, tc.sport, tc.dst, tc.dport)
		rev := base("2026-11-02T09:00:00Z", "", tc.transport, tc.dst, tc.dport, tc.src, tc.sport)
		id1, c1 := flowIDs(fwd)
		id2, c2 := flowIDs(rev)
		if c1 != tc.want || c2 != tc.want {
			t.Errorf("%s %s:%d > %s:%d: community_id %q / %q, want %q", tc.transport, tc.src, tc.sport, tc.dst, tc.dport, c1, c2, tc.want)
		}
		if id1 != id2 || id1 == 0 || id1 >= 1<<53 {
			t.Errorf("flow_id %d / %d: want equal, non-zero, below 2^53", id1, id2)
		}
	}
	// Another port, another flow.
	a, _ := flowIDs(base("2026-11-02T09:00:00Z", "", "tcp", "10.0.0.1", 1000, "10.0.0.2", 443))
	b, _ := flowIDs(base("2026-11-02T09:00:00Z", "", "tcp", "10.0.0.1", 1001, "10.0.0.2", 443))
	if a == b {
		t.Errorf("flow_id the same for two flows: %d", a)
	}
	// No hash for what is not an address.
	if id, c := flowIDs(base("2026-11-02T09:00:00Z", "", "tcp", "not-an-ip", 1, "10.0.0.2", 2)); id != 0 || c != "" {
		t.Errorf("flow_id %d community_id %q for a bad address", id, c)
	}
}

// TestSeverity checks the mapping of every score the pipeline gives
// (severityScore) to Suricata's severity.
func TestSeverity(t *testing.T) {
	for _, tc := range []struct {
		score, want int
		name        string
	}{
		{99, 1, "critical"}, {73, 1, "high"}, {47, 2, "medium"}, {21, 3, "low"}, {1, 4, "info"}, {0, 4, "info"},
	} {
		if got := Severity(tc.score); got != tc.want {
			t.Errorf("Severity(%d) = %d, want %d", tc.score, got, tc.want)
		}
		if got := severityName(tc.score); got != tc.name {
			t.Errorf("severityName(%d) = %q, want %q", tc.score, got, tc.name)
		}
	}
}

func TestSignatureID(t *testing.T) {
	seen := map[uint32]string{}
	for _, id := range []string{"kaspersky-update", "kaspersky-update-geo", "kaspersky-ksn", "kaspersky-activation", "kaspersky-ksc-agent-ports", ""} {
		sid := SignatureID(id)
		if sid < SIDBase || sid >= SIDBase+SIDCount {
			t.Errorf("SignatureID(%q) = %d outside the range", id, sid)
		}
		if other, ok := seen[sid]; ok {
			t.Errorf("SignatureID(%q) = SignatureID(%q) = %d", id, other, sid)
		}
		seen[sid] = id
		if SignatureID(id) != sid {
			t.Errorf("SignatureID(%q) not stable", id)
		}
	}
}

func TestTLSVersion(t *testing.T) {
	for _, tc := range []struct{ proto, version, want string }{
		{"tls", "1.3", "TLS 1.3"}, {"tls", "1.2", "TLS 1.2"}, {"tls", "1.1", "TLS 1.1"}, {"tls", "1.0", "TLSv1"},
		{"tls", "3.0", "SSLv3"}, {"ssl", "2.0", "SSLv2"}, {"tls", "", ""}, {"tls", "7.7", "TLS 7.7"},
	} {
		if got := tlsVersion(tc.proto, tc.version); got != tc.want {
			t.Errorf("tlsVersion(%q, %q) = %q, want %q", tc.proto, tc.version, got, tc.want)
		}
	}
}

// TestHostile feeds wire strings that would break a line-oriented reader
// or a web page into every string field EVE shows: each comes out as one
// valid JSON line that decodes to the same text (invalid UTF-8 replaced).
func TestHostile(t *testing.T) {
	long := strings.Repeat("A", 64<<10)
	for _, hostile := range []string{
		"evil.example\nfake\", \"event_type\": \"x",
		"<script>alert(1)</script>.example",
		"\x1b[31mred\x1b[0m.example",
		"bad\xff\xfeutf8.example",
		"nul\x00byte.example\r\n",
		long,
	} {
		e := cases()[2].ev // TLS alert
		e.TLS.Client.ServerName = hostile
		e.Threat.Enrichments[0].Matched.Atomic = hostile
		e.Rule.Name = hostile
		e.Observer.Hostname = hostile
		line, err := Format(alert.NewRecord(e))
		if err != nil {
			t.Fatal(err)
		}
		m := checkLine(t, line)
		for _, bad := range []string{"<", ">", "\x1b", "\x00", "\xff"} {
			if bytes.Contains(line, []byte(bad)) {
				t.Errorf("raw %q in the output", bad)
			}
		}
		want := string([]rune(hostile)) // each invalid byte becomes U+FFFD, as encoding/json does
		if sni := m["tls"].(map[string]any)["sni"]; sni != want {
			t.Errorf("sni decodes to %.60q, want %.60q", sni, want)
		}
		if !utf8.Valid(line) {
			t.Error("output is not UTF-8")
		}
		if len(hostile) == len(long) && len(line) < len(long) {
			t.Errorf("long SNI cut: line of %d bytes", len(line))
		}
	}
}

func TestNoEvent(t *testing.T) {
	if _, err := Format(&alert.Record{}); err == nil {
		t.Error("no error for a record without an event")
	}
}

func BenchmarkFormat(b *testing.B) {
	cs := cases()
	recs := make([]*alert.Event, len(cs))
	for i, c := range cs {
		recs[i] = c.ev
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := Format(alert.NewRecord(recs[i%len(recs)])); err != nil {
			b.Fatal(err)
		}
	}
}
