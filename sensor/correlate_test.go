package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/phonehome-sensor/phonehome/sensor/internal/testcap"
)

// correlationCapture: a host resolves dnl-05.geo.kaspersky.com, connects
// to the answer's address with no name on the connection (a TLS hello
// without SNI), later opens a second connection to it, and then connects
// to a Russian-hosted address (77.88.8.8, Yandex DNS: RU in the embedded
// country database).
func correlationCapture(t *testing.T) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := testcap.NewWriter(&buf, time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	host := testcap.NewHost("10.30.0.7", 0)
	resolver := testcap.NewHost("10.30.0.53", 0)
	update := testcap.NewHost("203.0.113.77", 0)
	q := testcap.Query("dnl-05.geo.kaspersky.com", dns.TypeA, 0x5005)
	noSNI, err := testcap.ClientHello("")
	if err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error {
			return w.DNS(host, resolver, q, testcap.Reply(q, testcap.A("dnl-05.geo.kaspersky.com", "203.0.113.77", 300)))
		},
		func() error {
			return w.TCPSession(host, update, 0, 443, [][]byte{noSNI}, []byte("\x16\x03\x03\x00\x04server"))
		},
		func() error { return w.TCPSession(host, update, 0, 443, [][]byte{noSNI}, nil) },
		func() error { return w.TCPSession(host, testcap.NewHost("77.88.8.8", 0), 0, 443, [][]byte{noSNI}, nil) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "correlate.pcap")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDNSLearnedContact: the look-up alerts for its name, the first
// connection alerts as dns-learned with the name, the second is a repeat,
// the connection to the Russian-hosted address alerts as country: three
// alerts, with reasons domain, dns-learned and country. The host's record
// counts the bytes of the connections.
func TestDNSLearnedContact(t *testing.T) {
	path := correlationCapture(t)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"run", "-r", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var kinds []string
	sc := bufio.NewScanner(&stdout)
	var learned map[string]any
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		en := field(ev, "threat").(map[string]any)["enrichments"].([]any)[0].(map[string]any)
		kinds = append(kinds, str(field(ev, "event.dataset"))+" "+str(en["indicator"].(map[string]any)["description"]))
		if field(ev, "event.dataset") == "phonehome.flow" && learned == nil {
			learned = ev
		}
		if field(ev, "rule.id") == "russian-hosted-endpoint" && (field(ev, "destination.geo.country_iso_code") != "RU" || field(ev, "destination.ip") != "77.88.8.8") {
			t.Errorf("country alert: %v", ev)
		}
	}
	want := []string{
		`phonehome.dns domain suffix "geo.kaspersky.com"`,
		`phonehome.flow dns-learned "dnl-05.geo.kaspersky.com"`,
		`phonehome.flow country "RU"`,
	}
	if !slices.Equal(kinds, want) {
		t.Fatalf("alerts:\n%s\nwant:\n%s", strings.Join(kinds, "\n"), strings.Join(want, "\n"))
	}
	if field(learned, "destination.ip") != "203.0.113.77" || field(learned, "destination.domain") != "dnl-05.geo.kaspersky.com" || field(learned, "source.ip") != "10.30.0.7" {
		t.Errorf("dns-learned alert: %v", learned)
	}
	// Two connections to the learned address, bytes counted.
	if !strings.Contains(squash(stderr.String()), "flow contacts 3 flows") {
		t.Errorf("summary:\n%s", stderr.String())
	}
	line := ""
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.HasPrefix(l, "10.30.0.7 ") {
			line = l
		}
	}
	if f := strings.Fields(line); len(f) < 8 || f[5]+" "+f[6] == "0 B" {
		t.Errorf("host line without bytes sent: %q", line)
	}
}
