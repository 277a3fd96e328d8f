package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// realDir holds captures of real clients (Go crypto/tls with post-quantum
// key shares, quic-go, Chromium, curl, openssl s_client, dig) made in
// network namespaces by testdata/real/make-captures.sh, with what tshark
// reports about each in expected.json. See testdata/real/README.md.
const realDir = "testdata/real"

type realExpected struct {
	Files []struct {
		File  string  `json:"file"`
		TLS   [][]any `json:"tls"`
		QUIC  [][]any `json:"quic"`
		HTTP  [][]any `json:"http"`
		DNS   [][]any `json:"dns"`
		Notes string  `json:"notes"`
	} `json:"files"`
}

// TestRealClients: phonehome reports, from each real capture, every
// ClientHello (TLS and QUIC: client, server, port, SNI, ALPN), request
// (client, Host, User-Agent, method) and DNS query that tshark reports,
// and nothing else of those kinds.
func TestRealClients(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(realDir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var exp realExpected
	if err := json.Unmarshal(data, &exp); err != nil {
		t.Fatal(err)
	}
	if len(exp.Files) < 10 {
		t.Fatalf("expected.json lists %d captures", len(exp.Files))
	}
	for _, f := range exp.Files {
		t.Run(f.File, func(t *testing.T) {
			want := map[string]bool{}
			for _, e := range f.TLS {
				want[fmt.Sprintf("tls %s %s %v %s [%s]", e[0], e[1], e[2], e[3], e[4])] = true
			}
			for _, e := range f.QUIC {
				want[fmt.Sprintf("quic %s %s %v %s [%s]", e[0], e[1], e[2], e[3], e[4])] = true
			}
			for _, e := range f.HTTP {
				want[fmt.Sprintf("http %s %s %s %s", e[0], hostOnlyText(str(e[1])), e[2], e[3])] = true
			}
			for _, e := range f.DNS {
				want[fmt.Sprintf("dns %s %s", e[0], e[3])] = true
			}
			got := map[string]bool{}
			for _, ev := range inspectEvents(t, filepath.Join(realDir, f.File)) {
				src := str(field(ev, "source.ip"))
				switch proto := str(field(ev, "network.protocol")); proto {
				case "tls", "quic":
					var alpn []string
					if l, ok := field(ev, "tls.client.supported_alpn").([]any); ok {
						for _, a := range l {
							alpn = append(alpn, str(a))
						}
					}
					got[fmt.Sprintf("%s %s %s %s %s [%s]", proto, src, str(field(ev, "destination.ip")), str(field(ev, "destination.port")),
						str(field(ev, "tls.client.server_name")), strings.Join(alpn, ","))] = true
					if ja4 := str(field(ev, "tls.client.ja4")); !strings.HasPrefix(ja4, proto[:1]+"13d") {
						t.Errorf("%s hello JA4 %q", proto, ja4)
					}
				case "http":
					got[fmt.Sprintf("http %s %s %s %s", src, str(field(ev, "url.domain")), str(field(ev, "user_agent.original")), str(field(ev, "http.request.method")))] = true
				case "dns":
					if field(ev, "dns.type") == "query" {
						got[fmt.Sprintf("dns %s %s", src, str(field(ev, "dns.question.name")))] = true
					}
				}
			}
			for k := range want {
				if !got[k] {
					t.Errorf("not reported: %s", k)
				}
			}
			for k := range got {
				if !want[k] {
					t.Errorf("reported, tshark does not: %s", k)
				}
			}
		})
	}
}

// TestRealHelloCap: with a cap below its size, Go's post-quantum
// ClientHello (2 segments) is not gathered, and its name is counted as
// unseen for that reason rather than lost silently.
func TestRealHelloCap(t *testing.T) {
	file := filepath.Join(realDir, "go-tls-pq.pcap")
	for _, tt := range []struct {
		cap     string
		reports bool
		summary string
	}{
		{"16KiB", true, "names unseen TLS none; QUIC none"},
		{"1KiB", false, "names unseen TLS 1 buffer_cap; QUIC none"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"inspect", "-r", file, "--reassembly.hello-max", tt.cap}, &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		if got := strings.Contains(stdout.String(), `"go-pq.phonehome.example"`); got != tt.reports {
			t.Errorf("cap %s: hello reported %v, want %v", tt.cap, got, tt.reports)
		}
		if summary := runSummary(t, file, "--reassembly.hello-max", tt.cap); !strings.Contains(squash(summary), tt.summary) {
			t.Errorf("cap %s: summary lacks %q:\n%s", tt.cap, tt.summary, summary)
		}
	}
}

// TestRealQUICCounters: the QUIC captures' hellos are read from several
// Initials, after a Retry too, and Chromium's ECH GREASE is not taken
// for real ECH (its outer name is the real one).
func TestRealQUICCounters(t *testing.T) {
	for _, f := range []string{"quic-go.pcap", "quic-go-retry.pcap", "chromium-quic.pcap"} {
		lines := strings.Split(runSummary(t, filepath.Join(realDir, f)), "\n")
		i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), "QUIC ") })
		if i < 0 || strings.Contains(lines[i], " 0 ClientHellos") || !strings.Contains(lines[i], "0 datagrams undecryptable") {
			t.Errorf("%s: QUIC line %q", f, lines[max(i, 0)])
		}
	}
}

// runSummary runs `phonehome run` over file and returns its summary.
func runSummary(t *testing.T, file string, flags ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(append([]string{"run", "-r", file}, flags...), &stdout, &stderr); code != 0 {
		t.Fatalf("run %s: exit %d: %s", file, code, stderr.String())
	}
	return stderr.String()
}

// TestRealECHGrease: Chromium sends an encrypted_client_hello extension
// in every hello (GREASE when it has no ECH config), with the real name
// in server_name: that name is matched, and the hello is not counted as
// hiding its name. A hello whose outer name is a known ECH public name
// (Cloudflare's, in Zeek's capture of 2 connections) is counted as encrypted.
func TestRealECHGrease(t *testing.T) {
	for _, f := range []string{"chromium-tls.pcap", "chromium-quic.pcap"} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"run", "-r", filepath.Join(realDir, f), "--rules.no-builtin", "--rules", "testdata/phonehome-example.yaml"}, &stdout, &stderr); code != 0 {
			t.Fatalf("%s: exit %d: %s", f, code, stderr.String())
		}
		if !strings.Contains(stdout.String(), `"ech":true`) || !strings.Contains(stdout.String(), `"event":{"kind":"alert"`) || strings.Contains(stdout.String(), `"ech_outer":true`) {
			t.Errorf("%s: no alert for the ECH GREASE hello's name:\n%s", f, stdout.String())
		}
		if !strings.Contains(squash(stderr.String()), "names unseen TLS none; QUIC none") {
			t.Errorf("%s: summary:\n%s", f, stderr.String())
		}
	}
	ech := filepath.Join(sharedPcaps, "zeek", "tls", "tls13-ech.pcap")
	if _, err := os.Stat(ech); err != nil {
		t.Skipf("shared capture corpus not available (%v)", err)
	}
	if s := runSummary(t, ech); !strings.Contains(squash(s), "names unseen TLS 2 encrypted") {
		t.Errorf("real ECH hello not counted as encrypted:\n%s", s)
	}
}

// squash collapses runs of spaces, so that checks of the summary do not
// depend on its column widths.
func squash(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == ' ' }), " ")
}
