package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// sharedGen is the benchmark capture generator beside the repository.
var sharedGen = filepath.Join("..", "..", "shared", "bench", "gen")

// genTruth is the part of the generator's truth file the test reads.
type genTruth struct {
	Matches struct {
		DNSQueries        int                       `json:"dns_queries"`
		TLSSNI            int                       `json:"tls_sni"`
		DecoyDNSQueries   int                       `json:"decoy_dns_queries"`
		DecoySNI          int                       `json:"decoy_sni"`
		QUICOnlyClientIPs int                       `json:"quic_only_client_ips"`
		ClientIPList      []string                  `json:"client_ip_list"`
		ByName            map[string]map[string]int `json:"by_name"`
	} `json:"matches"`
}

// TestGeneratedCapture runs `phonehome run` over a capture made by
// ../shared/bench/gen and checks that it reports exactly the matching
// hosts and names of the generator's ground truth, and no decoy.
func TestGeneratedCapture(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the generator and writes a 150 MB capture")
	}
	if _, err := os.Stat(filepath.Join(sharedGen, "main.go")); err != nil {
		t.Skipf("generator not available (%v): this test runs where ../shared/bench/gen exists", err)
	}
	dir := t.TempDir()
	gen := filepath.Join(dir, "gen")
	build := exec.Command("go", "build", "-o", gen, ".")
	build.Dir = sharedGen
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the generator: %v\n%s", err, out)
	}
	pcap := filepath.Join(dir, "gen.pcap")
	if out, err := exec.Command(gen, "-packets", "200000", "-seed", "1", "-o", pcap).CombinedOutput(); err != nil {
		t.Fatalf("generating: %v\n%s", err, out)
	}
	var truth genTruth
	data, err := os.ReadFile(filepath.Join(dir, "gen.truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &truth); err != nil {
		t.Fatal(err)
	}
	m := truth.Matches
	if m.DecoyDNSQueries+m.DecoySNI == 0 || len(m.ClientIPList) == 0 {
		t.Fatalf("the capture has no decoys or no matches: the test would prove nothing (truth %+v)", m)
	}

	for _, workers := range []string{"1", "2"} {
		t.Run("workers="+workers, func(t *testing.T) {
			alerts := filepath.Join(dir, "alerts-"+workers+".json")
			// The generator numbers clients in 10.20.0.0/16 and 2001:db8:4000::/48
			// (documentation space, so not a default home net).
			a := args{files: []string{pcap}, workers: 1, homeNets: []string{"10.0.0.0/8", "2001:db8:4000::/48"}, flowMax: 262144, alertsOut: alerts, dedupWindow: 24 * 3600e9,
				// The generator's server addresses are drawn at random, some
				// from Russian networks; its truth is about Kaspersky names,
				// so the policy profile for Russian-hosted endpoints is off.
				disabledProfiles: []string{"russian-hosted"}}
			if workers == "2" {
				a.workers = 2
			}
			st, inv, err := sense(&a, false, os.Stdout, newLogger(os.Stderr, "warn"))
			if err != nil {
				t.Fatal(err)
			}
			// Hosts: the truth lists every client that matched, QUIC-only
			// ones included; QUIC decryption is a later issue.
			var got []string
			names := map[string]bool{}
			for _, h := range inv.Hosts() {
				got = append(got, h.IP.String())
				for _, n := range h.Names {
					names[n] = true
				}
			}
			slices.Sort(got)
			want := slices.Clone(m.ClientIPList)
			slices.Sort(want)
			for _, ip := range got {
				if !slices.Contains(want, ip) {
					t.Errorf("host %s reported but not in the truth", ip)
				}
			}
			if missing := len(want) - len(got); missing != m.QUICOnlyClientIPs {
				t.Errorf("hosts: got %d, truth %d of which %d QUIC-only: %d missing\ngot  %v\nwant %v", len(got), len(want), m.QUICOnlyClientIPs, missing, got, want)
			}
			// Names: every truth name seen in DNS or TLS over TCP.
			for name, c := range m.ByName {
				if c["dns_queries"]+c["dns_responses"]+c["tls_sni"] == 0 {
					continue
				}
				if !names[name] {
					t.Errorf("name %s in the truth, not reported", name)
				}
			}
			for name := range names {
				if _, ok := m.ByName[name]; !ok {
					t.Errorf("name %s reported, not in the truth (decoy?)", name)
				}
			}
			// Every alert names a truth name: no decoy ever alerts.
			f, err := os.Open(alerts)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			sc := bufio.NewScanner(f)
			n := 0
			for sc.Scan() {
				var ev struct {
					Threat struct {
						Enrichments []struct {
							Matched struct{ Atomic string } `json:"matched"`
						} `json:"enrichments"`
					} `json:"threat"`
				}
				if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
					t.Fatal(err)
				}
				for _, e := range ev.Threat.Enrichments {
					if _, ok := m.ByName[strings.ToLower(e.Matched.Atomic)]; !ok {
						t.Errorf("alert on %q, not a truth name", e.Matched.Atomic)
					}
				}
				n++
			}
			if n == 0 || uint64(n) != st.Alerts {
				t.Errorf("alerts file has %d events, run counted %d", n, st.Alerts)
			}
			t.Logf("%d packets, %d hosts, %d names, %d alerts", st.Packets, len(got), len(names), n)
		})
	}
}
